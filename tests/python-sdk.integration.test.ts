/**
 * The Python SDK's unittest suite (sdk/python/tests) against a real daemon with real VMs: one
 * daemon on TCP with a bearer token (auth, TCP), whose Unix socket the suite also uses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestDaemon } from '@forkd/daemon/testing';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SDK = path.join(ROOT, 'sdk', 'python');

function runPython(args: string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; signal: string | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    p.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

test('python SDK unittest suite against a real daemon (TCP + token, and its Unix socket)', { timeout: 900_000 }, async (t) => {
  const d = await startTestDaemon({ tcp: true, token: true });
  try {
    assert.ok(d.url?.startsWith('http://127.0.0.1:'), `daemon TCP URL: ${d.url}`);
    assert.ok(d.token, 'daemon token');
    const env: Record<string, string> = {
      ...d.env,
      FORKD_TEST_TAG: d.tag,
      FORKD_TEST_UNIX_URL: `unix:${d.socketPath}`,
      PYTHONPATH: SDK,
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
    };
    delete (env as Record<string, string | undefined>).FORKD_TAG;
    const r = await runPython(['-m', 'unittest', 'discover', '-s', 'sdk/python/tests', '-v'], env, 840_000);
    const summary = /Ran (\d+) tests? in [\d.]+s\s+(OK.*|FAILED.*)/.exec(r.output);
    assert.ok(r.code === 0 && summary && summary[2]!.startsWith('OK'), `python SDK tests failed (exit ${r.code}${r.signal ? `, ${r.signal}` : ''}):\n${r.output}`);
    assert.doesNotMatch(summary![2]!, /skipped/, `no python test may be skipped:\n${r.output}`);
    t.diagnostic(`python SDK: ${summary![1]} tests, ${summary![2]}`);
  } finally {
    await d.stop();
  }
});
