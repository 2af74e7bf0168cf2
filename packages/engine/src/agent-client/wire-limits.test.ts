/**
 * Every header the guest sends is capped at LIMITS.maxFrameHeaderBytes, whatever the method:
 * large results travel in the payload. Results the REST layer could not serve (an odd process
 * handle, an eval value nested too deep) are stopped here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LIMITS, encodeFrame, encodeResultFrame } from '@forkd/protocol';
import { AgentClient } from './client.js';
import { startTestAgent, type TestAgent } from './test-agent.js';

const isCode = (code: string) => (e: { code?: string }) => e.code === code;
const execResult = (stdout: string) => ({ exit_code: 0, signal: null, timed_out: false, stdout, stderr: '', stdout_truncated: false, stderr_truncated: false, duration_ms: 1, error: null });

/** A fake agent answering each request with what reply(id, method) encodes. */
async function fakeAgent(dir: string, name: string, reply: (id: number, method: string) => Buffer): Promise<{ sock: string; close: () => void }> {
  const sock = path.join(dir, name);
  const peers: net.Socket[] = [];
  const server = net.createServer((s) => {
    peers.push(s);
    s.on('data', (d) => {
      const h = JSON.parse(d.subarray(12, 12 + d.readUInt32BE(4)).toString('utf8')) as { id: number; method: string };
      s.write(reply(h.id, h.method));
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return { sock, close: () => { for (const p of peers) p.destroy(); server.close(); } };
}

describe('large results travel in the payload (real agent)', () => {
  let agent: TestAgent;
  let c: AgentClient;
  before(async () => {
    agent = await startTestAgent();
    c = await AgentClient.connect(agent.socketPath, { connectTimeoutMs: 10_000 });
  });
  after(async () => {
    c?.close();
    await agent?.stop();
  });

  it('collected exec output far above the header cap', async () => {
    const r = await c.exec({ shell: 'head -c 3000000 /dev/zero | tr "\\0" a; echo; printf "\\033[31mé\\n"', max_output_bytes: LIMITS.maxOutputBytes });
    assert.equal(r.exit_code, 0);
    assert.equal(r.stdout.length, 3_000_000 + 1 + 5 + 2);
    assert.ok(r.stdout.endsWith('a\n\u001b[31mé\n'));
  });

  it('eval output and value, and a large file listing', async () => {
    const e = await c.eval('js', 'console.log("x".repeat(200000)); Array.from({ length: 20000 }, (_, i) => i)');
    assert.equal(e.stdout.length, 200001);
    assert.equal((e.json as number[]).length, 20000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-wire-ls-'));
    try {
      for (let i = 0; i < 1500; i++) fs.writeFileSync(path.join(dir, `file-with-a-long-name-${String(i).padStart(5, '0')}`), '');
      const l = await c.list(dir);
      assert.equal(l.entries.length, 1500);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an eval value nested deeper than LIMITS.maxResultJsonDepth is passed on as its repr only', async () => {
    const r = await c.eval('js', `let a = 1; for (let i = 0; i < ${LIMITS.maxResultJsonDepth + 50}; i++) a = [a]; a`);
    assert.equal(r.ok, true);
    assert.equal(r.json_ok, false);
    assert.equal(r.json, null);
    assert.ok(r.repr);
    const ok = await c.eval('js', 'let b = 1; for (let i = 0; i < 100; i++) b = [b]; b');
    assert.equal(ok.json_ok, true);
  });
});

describe('header cap for every method (fake agents)', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-wire-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses a result header above LIMITS.maxFrameHeaderBytes even for exec, and reads one sent in the payload', async () => {
    const big = 'o'.repeat(LIMITS.maxFrameHeaderBytes * 4);
    let n = 0;
    const f = await fakeAgent(dir, 'big.sock', (id) => (n++ === 0
      ? encodeFrame({ kind: 'res', id, ok: true, result: execResult(big) })
      : encodeResultFrame(id, execResult(big))));
    const c = await AgentClient.connect(f.sock, { firstCallId: 1 });
    await assert.rejects(c.exec({ shell: 'x' }, { timeoutMs: 5000 }), isCode('FORKD_E_PAYLOAD_TOO_LARGE'));
    assert.equal((await c.exec({ shell: 'x' }, { timeoutMs: 5000 })).stdout, big);
    c.close();
    f.close();
  });

  it('a result_bytes beyond the payload or not JSON is a protocol error', async () => {
    let n = 0;
    const f = await fakeAgent(dir, 'lying.sock', (id) => (n++ === 0
      ? encodeFrame({ kind: 'res', id, ok: true, result_bytes: 100 }, Buffer.from('{}'))
      : encodeFrame({ kind: 'res', id, ok: true, result_bytes: 3 }, Buffer.from('{{{'))));
    const c = await AgentClient.connect(f.sock, { firstCallId: 1 });
    await assert.rejects(c.call('files.mkdir', { path: '/a' }, { timeoutMs: 5000 }), isCode('FORKD_E_AGENT_PROTOCOL'));
    await assert.rejects(c.call('files.mkdir', { path: '/a' }, { timeoutMs: 5000 }), isCode('FORKD_E_AGENT_PROTOCOL'));
    c.close();
    f.close();
  });

  it('a background process handle outside the declared shape is a protocol error (502), not a REST 500', async () => {
    const f = await fakeAgent(dir, 'handle.sock', (id) => encodeResultFrame(id, { handle: 'p1; \u001b]52;c;x\u0007', pid: 7 }));
    const c = await AgentClient.connect(f.sock, { firstCallId: 1 });
    await assert.rejects(c.execBackground({ shell: 'sleep 1' }, { timeoutMs: 5000 }), isCode('FORKD_E_AGENT_PROTOCOL'));
    c.close();
    f.close();
  });
});
