import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIMITS } from '@forkd/protocol';
import { AgentClient } from './client.js';
import { startTestAgent, type TestAgent } from './test-agent.js';

const SPAWN_HELPER_SOURCE = fileURLToPath(new URL('../../../agent/src/spawn-helper.c', import.meta.url));

/** forkd-spawn compiled as the image builder does (with -Wall -Werror on top). */
function compileSpawnHelper(dir: string): string {
  const out = path.join(dir, 'forkd-spawn');
  const cc = spawnSync('gcc', ['-static', '-Os', '-s', '-Wall', '-Wextra', '-Werror', '-o', out, SPAWN_HELPER_SOURCE], { encoding: 'utf8' });
  assert.equal(cc.status, 0, `gcc (apt-get install gcc libc6-dev): ${cc.error?.message ?? cc.stderr}`);
  return out;
}

// Every exec behaviour holds for both ways of starting a command: Node's spawn (a fork of the
// agent) and forkd-spawn (posix_spawn from a small helper, what images use).
for (const mode of ['node spawn', 'forkd-spawn'] as const) describe(`agent exec (real agent over --listen, ${mode})`, () => {
  let agent: TestAgent;
  let c: AgentClient;
  let helperDir = '';
  before(async () => {
    helperDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-spawn-test-'));
    agent = await startTestAgent(mode === 'forkd-spawn' ? { extraArgs: ['--spawn-helper', compileSpawnHelper(helperDir)] } : {});
    c = await AgentClient.connect(agent.socketPath, { connectTimeoutMs: 10_000 });
  });
  after(async () => {
    c?.close();
    await agent?.stop();
    fs.rmSync(helperDir, { recursive: true, force: true });
  });

  it(`starts commands as children of ${mode === 'forkd-spawn' ? 'forkd-spawn' : 'the agent'}`, async () => {
    const r = await c.exec({ shell: 'cat /proc/$PPID/comm' });
    assert.equal(r.stdout.trim(), mode === 'forkd-spawn' ? 'forkd-spawn' : 'node');
  });

  it('looks a bare command up in the PATH of its own env', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-path-'));
    try {
      fs.writeFileSync(path.join(dir, 'forkd-only-here'), '#!/bin/sh\necho found "$1"\n', { mode: 0o755 });
      const r = await c.exec({ argv: ['forkd-only-here', 'x'], env: { PATH: `${dir}:/usr/bin:/bin` } });
      assert.equal(r.stdout, 'found x\n');
      const missing = await c.exec({ argv: ['forkd-only-here'] });
      assert.equal(missing.exit_code, null);
      assert.match(missing.error ?? '', /ENOENT/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loses no exit of short commands run back to back and side by side', async () => {
    for (let i = 0; i < 100; i++) {
      const r = await c.exec({ argv: ['true'] }, { timeoutMs: 5000 });
      assert.equal(r.exit_code, 0);
    }
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => c.exec({ argv: ['echo', String(i)] }, { timeoutMs: 10_000 })));
    assert.deepEqual(all.map((r) => r.stdout), all.map((_, i) => `${i}\n`));
  });

  it('answers soon after the command exits even when a background grandchild keeps its output open', async () => {
    const t0 = Date.now();
    const r = await c.exec({ shell: 'sleep 20 & echo started; echo err >&2' }, { timeoutMs: 10_000 });
    assert.equal(r.exit_code, 0);
    assert.equal(r.stdout, 'started\n');
    assert.equal(r.stderr, 'err\n');
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  });

  it('keeps binary output and stdin byte for byte, and caps each stream separately', async () => {
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256));
    const echo = await c.exec({ argv: ['cat'] }, { stdin: bytes });
    assert.equal(Buffer.from(echo.stdout, 'utf8').length > 0, true);
    const b64 = await c.exec({ shell: 'base64 -w0' }, { stdin: bytes });
    assert.deepEqual(Buffer.from(b64.stdout, 'base64'), bytes);
    const capped = await c.exec({ shell: 'head -c 300000 /dev/zero | tr "\\0" a; head -c 10 /dev/zero | tr "\\0" b >&2', max_output_bytes: 100_000 });
    assert.equal(capped.stdout.length, 100_000);
    assert.equal(capped.stdout_truncated, true);
    assert.equal(capped.stderr, 'bbbbbbbbbb');
    assert.equal(capped.stderr_truncated, false);
  });

  it('reports a death by signal by name', async () => {
    const r = await c.exec({ shell: 'kill -TERM $$' });
    assert.equal(r.exit_code, null);
    assert.equal(r.signal, 'SIGTERM');
  });

  if (mode === 'forkd-spawn') {
    it('keeps running commands when the helper dies (restarted on the next command)', async () => {
      const pid = Number((await c.exec({ shell: 'echo $PPID' })).stdout.trim());
      process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      const r = await c.exec({ shell: 'echo again; cat /proc/$PPID/comm' });
      assert.equal(r.exit_code, 0);
      assert.match(r.stdout, /^again\n/);
    });
  }

  it('answers ping', async () => {
    const p = await c.ping();
    assert.equal(p.pong, true);
    assert.equal(p.warmup, 'cold');
    assert.ok(p.languages.includes('js'));
    assert.ok(p.languages.includes('python'));
  });

  it('runs argv, shell, env, cwd and stdin', async () => {
    const a = await c.exec({ argv: ['echo', 'a b', 'c'] });
    assert.equal(a.exit_code, 0);
    assert.equal(a.stdout, 'a b c\n');
    const s = await c.exec({ shell: 'echo "$FOO" "$PWD"; echo oops >&2; exit 7', env: { FOO: 'bar' }, cwd: '/tmp' });
    assert.equal(s.exit_code, 7);
    assert.equal(s.stdout, 'bar /tmp\n');
    assert.equal(s.stderr, 'oops\n');
    const i = await c.exec({ argv: ['cat'] }, { stdin: Buffer.from('from stdin\u00e9') });
    assert.equal(i.stdout, 'from stdin\u00e9');
    const p = await c.exec({ shell: 'echo $PATH' });
    assert.match(p.stdout, /\/usr\/bin/);
  });

  it('reports a missing binary as a result, not a protocol error', async () => {
    const r = await c.exec({ argv: ['/definitely/not/here'] });
    assert.equal(r.exit_code, null);
    assert.match(r.error ?? '', /ENOENT/);
    const d = await c.exec({ argv: ['true'], cwd: '/no/such/dir' });
    assert.match(d.error ?? '', /working directory does not exist/);
  });

  it('kills the whole process group on timeout', async () => {
    const t0 = Date.now();
    const r = await c.exec({ shell: 'sleep 30 & sleep 30; echo never', timeout_ms: 300 });
    assert.equal(r.timed_out, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(r.stdout, '');
  });

  it('streams output as events and still collects it', async () => {
    const chunks: string[] = [];
    const r = await c.exec({ shell: 'for i in 1 2 3; do echo line$i; sleep 0.05; done; echo e >&2' }, { onStdout: (b) => chunks.push(b.toString()), onStderr: (b) => chunks.push(`ERR:${b}`) });
    assert.equal(r.exit_code, 0);
    assert.equal(chunks.filter((x) => !x.startsWith('ERR:')).join(''), 'line1\nline2\nline3\n');
    assert.ok(chunks.includes('ERR:e\n'));
    assert.equal(r.stdout, 'line1\nline2\nline3\n');
  });

  it('streams large output in bounded chunks', async () => {
    let total = 0;
    let biggest = 0;
    const r = await c.exec({ shell: 'head -c 3000000 /dev/zero' }, {
      onStdout: (b) => {
        total += b.length;
        biggest = Math.max(biggest, b.length);
      },
    });
    assert.equal(r.exit_code, 0);
    assert.equal(total, 3_000_000);
    assert.ok(biggest <= LIMITS.streamChunkBytes);
    assert.equal(r.stdout_truncated, true); // collected copy is capped at the default 1 MiB
  });

  it('caps collected output', async () => {
    const r = await c.exec({ shell: 'head -c 5000 /dev/zero | tr "\\0" x; echo -n yy >&2', max_output_bytes: 1000 });
    assert.equal(r.stdout.length, 1000);
    assert.equal(r.stdout_truncated, true);
    assert.equal(r.stderr, 'yy');
    assert.equal(r.stderr_truncated, false);
  });

  it('runs background processes: list, wait, kill', async () => {
    const started = await c.execBackground({ shell: 'echo started; sleep 0.2; echo done' });
    assert.ok('handle' in started);
    const h = (started as { handle: string }).handle;
    const list = await c.procList();
    assert.ok(list.some((p) => p.handle === h && p.running));
    const waited = await c.procWait(h, 10_000);
    assert.equal(waited.exit_code, 0);
    assert.equal(waited.stdout, 'started\ndone\n');

    const long = (await c.execBackground({ shell: 'echo hi; exec sleep 60' })) as { handle: string; pid: number };
    const early = await c.procWait(long.handle, 200);
    assert.equal(early.timed_out, true);
    assert.equal(early.exit_code, null);
    assert.equal(await c.procKill(long.handle), true);
    const killed = await c.procWait(long.handle, 5000);
    assert.equal(killed.signal, 'SIGKILL');
    assert.equal(killed.stdout, 'hi\n');
    assert.equal(await c.procKill(long.handle), false);
    await assert.rejects(c.procWait('p999999'), (e: { code?: string }) => e.code === 'FORKD_E_NOT_FOUND');
  });

  it('a cancel (host timeout) kills an in-flight exec', async () => {
    const marker = `/tmp/forkd-cancel-${process.pid}-${Date.now()}`;
    await assert.rejects(c.exec({ shell: `sleep 2; touch ${marker}` }, { timeoutMs: 200 }), (e: { code?: string }) => e.code === 'FORKD_E_AGENT_TIMEOUT');
    await new Promise((r) => setTimeout(r, 2500));
    const st = await c.exec({ argv: ['test', '-e', marker] });
    assert.equal(st.exit_code, 1, 'the cancelled command must not have finished');
  });

  it('serves many calls concurrently', async () => {
    const t0 = Date.now();
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => c.exec({ shell: `sleep 0.3; echo ${i}` })));
    rs.forEach((r, i) => assert.equal(r.stdout, `${i}\n`));
    assert.ok(Date.now() - t0 < 5500, 'calls ran in parallel (20 x 0.3 s serially would be 6 s)');
    const pings = await Promise.all(Array.from({ length: 50 }, () => c.ping()));
    assert.equal(pings.length, 50);
  });

  it('rejects bad params and unknown methods with FORKD_E_INVALID_ARGUMENT', async () => {
    await assert.rejects(c.call('exec', { argv: ['true'], shell: 'true' } as never), (e: { code?: string; message: string }) => e.code === 'FORKD_E_INVALID_ARGUMENT' && /exactly one/.test(e.message));
    await assert.rejects(c.call('nope' as never, {} as never), (e: { code?: string }) => e.code === 'FORKD_E_INVALID_ARGUMENT');
  });
});
