import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LIMITS, type EvalLanguageT } from '@forkd/protocol';
import { AgentClient } from '../agent-client/index.js';
import { startTestAgent, type TestAgent } from '../agent-client/test-agent.js';
import { Sandbox } from './sandbox.js';
import type { Vm } from '../vm/vm.js';

const isCode = (code: string) => (e: { code?: string }) => e.code === code;
const timings = { spawn_to_running_ms: 0, spawn_to_ready_ms: 0, phases: { launch_ms: 0, migrate_ms: 0, cont_ms: 0, restore_ms: 0 }, clock_skew_ms: 0 };

/** A Sandbox over a real agent (run on the host) instead of a VM: only the agent is reached. */
function sandboxOn(agent: AgentClient, language: EvalLanguageT, id: string, envs: Record<string, string> = {}): Sandbox {
  const vm = { id, agent, pid: 0, dir: '', alive: true } as unknown as Vm;
  return new Sandbox(vm, 'test', timings, language, new Date(), envs);
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

describe('Sandbox over a real agent (--listen)', () => {
  let agent: TestAgent;
  let client: AgentClient;
  let dir: string;
  before(async () => {
    agent = await startTestAgent();
    client = await AgentClient.connect(agent.socketPath, { connectTimeoutMs: 10_000 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-sandbox-'));
  });
  after(async () => {
    client?.close();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('setEnvs reaches the interpreter and every later command, under the command\'s own env', async () => {
    const sb = sandboxOn(client, 'python', '0000000000000001');
    await sb.setEnvs({ FORKD_T_A: 'alpha', FORKD_T_B: 'beta' });
    assert.deepEqual(sb.envs, { FORKD_T_A: 'alpha', FORKD_T_B: 'beta' });
    const r = await sb.commands.exec({ shell: 'echo "$FORKD_T_A $FORKD_T_B"', env: { FORKD_T_B: 'own' } });
    assert.equal(r.stdout, 'alpha own\n');
    const e = await sb.eval('python', 'import os\nos.environ.get("FORKD_T_A")');
    assert.equal(e.json, 'alpha');
    const started = await sb.commands.start({ shell: 'echo "$FORKD_T_A"' });
    assert.ok('handle' in started, JSON.stringify(started));
    assert.equal((await sb.commands.wait(started.handle, 10_000)).stdout, 'alpha\n');
  });

  it('setEnvs in a js sandbox sets process.env; an adopted sandbox keeps the envs it is given', async () => {
    const sb = sandboxOn(client, 'js', '0000000000000002');
    await sb.setEnvs({ FORKD_T_JS: 'gamma' });
    assert.equal((await sb.eval('js', 'process.env.FORKD_T_JS')).json, 'gamma');
    const adopted = sandboxOn(client, 'python', '0000000000000003', { FORKD_T_KEPT: 'kept' });
    assert.equal((await adopted.commands.exec({ argv: ['printenv', 'FORKD_T_KEPT'] })).stdout, 'kept\n');
  });

  it('eval takes the guest timeout: a slow eval times out in the guest, not the host', async () => {
    const sb = sandboxOn(client, 'python', '0000000000000004');
    const r = await sb.eval('python', 'import time\ntime.sleep(3)', { timeoutMs: 500 });
    assert.equal(r.ok, false);
    assert.match(r.error?.type ?? '', /Timeout/i);
  });

  it('files.readStream reads the first chunk up front and streams a multi-chunk file', async () => {
    const sb = sandboxOn(client, 'python', '0000000000000005');
    const data = crypto.randomBytes(LIMITS.maxFileChunkBytes * 2 + 12345);
    fs.writeFileSync(`${dir}/big.bin`, data);
    const file = await sb.files.readStream(`${dir}/big.bin`);
    assert.equal(file.size, data.length);
    const chunks = await collect(file.chunks);
    assert.equal(chunks.length, 3);
    assert.ok(Buffer.concat(chunks).equals(data), 'streamed bytes match');
    await assert.rejects(sb.files.readStream(`${dir}/big.bin`, { maxBytes: 1024 }), isCode('FORKD_E_PAYLOAD_TOO_LARGE'));
    await assert.rejects(sb.files.readStream(dir), isCode('FORKD_E_INVALID_ARGUMENT'));
    await assert.rejects(sb.files.readStream(`${dir}/missing`), isCode('FORKD_E_FILE_NOT_FOUND'));
    assert.deepEqual(await collect((await sb.files.readStream('/proc/version')).chunks), [fs.readFileSync('/proc/version')]);
  });

  it('files.readStream stops at once when its signal aborts, with the abort as the error (never a short file that looks whole)', async () => {
    const sb = sandboxOn(client, 'python', '0000000000000007');
    fs.writeFileSync(`${dir}/abort.bin`, crypto.randomBytes(LIMITS.maxFileChunkBytes * 3));
    const ac = new AbortController();
    const file = await sb.files.readStream(`${dir}/abort.bin`, { signal: ac.signal });
    const got: Buffer[] = [];
    await assert.rejects((async () => {
      for await (const c of file.chunks) {
        got.push(c);
        ac.abort(new Error('client went away'));
      }
    })(), /client went away/);
    assert.equal(got.length, 1, 'no chunk was read after the abort');
  });

  it('files.write streams chunks into place through a temporary file, and an oversized write leaves nothing', async () => {
    const sb = sandboxOn(client, 'python', '0000000000000006');
    const parts = [crypto.randomBytes(LIMITS.maxFileChunkBytes - 1), crypto.randomBytes(LIMITS.maxFileChunkBytes + 7), crypto.randomBytes(99)];
    async function* source(): AsyncGenerator<Buffer> {
      yield* parts;
    }
    const w = await sb.files.write(`${dir}/up/file.bin`, source(), { mode: 0o640 });
    assert.deepEqual(w, { path: `${dir}/up/file.bin`, size: parts.reduce((n, p) => n + p.length, 0) });
    assert.ok(fs.readFileSync(`${dir}/up/file.bin`).equals(Buffer.concat(parts)));
    assert.equal((await sb.files.stat(`${dir}/up/file.bin`)).mode, 0o640);
    assert.deepEqual(fs.readdirSync(`${dir}/up`), ['file.bin']);
    await assert.rejects(sb.files.write(`${dir}/up/file.bin`, source(), { maxBytes: LIMITS.maxFileChunkBytes }), isCode('FORKD_E_PAYLOAD_TOO_LARGE'));
    assert.ok(fs.readFileSync(`${dir}/up/file.bin`).equals(Buffer.concat(parts)), 'the target is untouched');
    assert.deepEqual(fs.readdirSync(`${dir}/up`), ['file.bin'], 'no temporary file left');
    const empty = await sb.files.write(`${dir}/up/empty`, []);
    assert.equal(empty.size, 0);
    assert.equal(fs.readFileSync(`${dir}/up/empty`).length, 0);
  });
});
