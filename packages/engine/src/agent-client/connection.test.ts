import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LIMITS, encodeFrame } from '@forkd/protocol';
import { AgentClient } from './client.js';
import { startTestAgent, type TestAgent } from './test-agent.js';

const isCode = (code: string) => (e: { code?: string }) => e.code === code;

describe('agent connection lifecycle (real agent)', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    await agent?.stop();
  });

  it('keeps serving after a host disconnects mid-call, and a new host connects', async () => {
    const first = await AgentClient.connect(agent.socketPath);
    assert.equal((await first.ping()).pong, true);
    const inflight = first.exec({ shell: 'sleep 0.5; echo late' });
    await new Promise((r) => setTimeout(r, 100));
    first.close();
    await assert.rejects(inflight, isCode('FORKD_E_AGENT_UNAVAILABLE'));
    await assert.rejects(first.ping(), isCode('FORKD_E_AGENT_UNAVAILABLE'));
    const second = await AgentClient.connect(agent.socketPath);
    // Ids restart at 1 on the new connection: the old connection's late reply must not reach us.
    const r = await second.exec({ shell: 'sleep 0.8; echo second' });
    assert.equal(r.stdout, 'second\n');
    assert.equal((await second.ping()).pong, true);
    second.close();
  });

  it('cancels the in-flight work of a host that went away', async () => {
    const marker = `/tmp/forkd-gone-${process.pid}-${Date.now()}`;
    const first = await AgentClient.connect(agent.socketPath);
    const p = first.exec({ shell: `sleep 1; touch ${marker}` });
    await new Promise((r) => setTimeout(r, 200));
    first.close();
    await assert.rejects(p, isCode('FORKD_E_AGENT_UNAVAILABLE'));
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal(fs.existsSync(marker), false);
  });

  it('a new connection replaces the current one', async () => {
    const a = await AgentClient.connect(agent.socketPath);
    await a.ping();
    const b = await AgentClient.connect(agent.socketPath);
    assert.equal((await b.ping()).pong, true);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(a.isClosed, true);
    b.close();
  });

  it('times out a call and sends cancel', async () => {
    const c = await AgentClient.connect(agent.socketPath);
    await assert.rejects(c.call('exec', { shell: 'sleep 5' }, { timeoutMs: 150 }), isCode('FORKD_E_AGENT_TIMEOUT'));
    assert.equal((await c.ping()).pong, true);
    c.close();
  });

  it('aborts a call with an AbortSignal', async () => {
    const c = await AgentClient.connect(agent.socketPath);
    const ac = new AbortController();
    const p = c.exec({ shell: 'sleep 5' }, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop it')), 50);
    await assert.rejects(p, /stop it/);
    c.close();
  });

  it('caps streamed event bytes per call', async () => {
    const c = await AgentClient.connect(agent.socketPath);
    await assert.rejects(c.exec({ shell: 'head -c 1000000 /dev/zero' }, { onStdout: () => undefined, maxStreamBytes: 100_000 }), isCode('FORKD_E_PAYLOAD_TOO_LARGE'));
    assert.equal((await c.ping()).pong, true);
    c.close();
  });
});

describe('agent client against fake sockets', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-client-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('retries until the socket appears', async () => {
    const sock = path.join(dir, 'late.sock');
    let server: net.Server | undefined;
    setTimeout(() => {
      server = net.createServer(() => undefined).listen(sock);
    }, 300);
    const c = await AgentClient.connect(sock, { connectTimeoutMs: 5000 });
    c.close();
    server?.close();
  });

  it('gives up with FORKD_E_AGENT_UNAVAILABLE', async () => {
    await assert.rejects(AgentClient.connect(path.join(dir, 'never.sock'), { connectTimeoutMs: 200 }), isCode('FORKD_E_AGENT_UNAVAILABLE'));
  });

  it('fails pending calls when the agent goes away, maps guest error codes, validates results, skips garbage and oversize', async () => {
    const sock = path.join(dir, 'fake.sock');
    const server = net.createServer((s) => {
      s.on('data', () => {
        // id 1: garbage then a good reply; id 2: unknown guest code; id 3: schema mismatch; id 4: oversize; id 5: never answered
        s.write(Buffer.from('garbage!!'));
        s.write(encodeFrame({ kind: 'res', id: 1, ok: true, result: { created: true } }));
        s.write(encodeFrame({ kind: 'res', id: 2, ok: false, error: { code: 'WEIRD', message: 'odd' } }));
        s.write(encodeFrame({ kind: 'res', id: 3, ok: true, result: { nope: 1 } }));
        s.write(encodeFrame({ kind: 'res', id: 4, ok: true, result: {} }, Buffer.alloc(2048)));
        s.write(encodeFrame({ kind: 'res', id: 99, ok: false, error: { code: 'FORKD_E_FILE_NOT_FOUND', message: 'x' } }));
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    const problems: string[] = [];
    const c = await AgentClient.connect(sock, { firstCallId: 1, maxFrameBytes: 1024, onProblem: (p) => problems.push(p.kind) });
    const calls = [
      c.call('files.mkdir', { path: '/a' }),
      c.call('files.mkdir', { path: '/b' }),
      c.call('files.mkdir', { path: '/c' }),
      c.call('files.read', { path: '/d' }),
      c.call('ping', {}, { timeoutMs: 60_000 }),
    ];
    const settled = await Promise.race([
      Promise.allSettled(calls.slice(0, 4)),
      new Promise((_, rej) => setTimeout(() => rej(new Error('replies not processed')), 3000)),
    ]) as PromiseSettledResult<unknown>[];
    assert.equal(settled[0]!.status, 'fulfilled');
    assert.equal((settled[1] as PromiseRejectedResult).reason.code, 'FORKD_E_AGENT_ERROR');
    assert.equal((settled[1] as PromiseRejectedResult).reason.details.guest_code, 'WEIRD');
    assert.equal((settled[2] as PromiseRejectedResult).reason.code, 'FORKD_E_AGENT_PROTOCOL');
    assert.equal((settled[3] as PromiseRejectedResult).reason.code, 'FORKD_E_PAYLOAD_TOO_LARGE');
    assert.ok(problems.includes('garbage') && problems.includes('oversize'));
    server.close();
    for (const s of await new Promise<net.Socket[]>((r) => r([]))) s.destroy();
    // Closing the server does not close accepted sockets; simulate the agent dying:
    c.close();
    await assert.rejects(calls[4]!, isCode('FORKD_E_AGENT_UNAVAILABLE'));
  });

  it("a late reply meant for an earlier connection's call never answers a call of this one", async () => {
    const sock = path.join(dir, 'stale.sock');
    const server = net.createServer((s) => s.on('data', (d) => {
      const id = JSON.parse(d.subarray(12, 12 + d.readUInt32BE(4)).toString('utf8')).id as number;
      // What the guest's port still held from the previous host connection, whose ids started at 1.
      for (let stale = 1; stale <= 3; stale++) s.write(encodeFrame({ kind: 'res', id: stale, ok: true, result: { created: false } }));
      setTimeout(() => s.write(encodeFrame({ kind: 'res', id, ok: true, result: { created: true } })), 50);
    }));
    await new Promise<void>((r) => server.listen(sock, r));
    const c = await AgentClient.connect(sock);
    const r = await c.call('files.mkdir', { path: '/x' }, { timeoutMs: 5000 });
    assert.deepEqual(r.result, { created: true });
    c.close();
    server.close();
  });

  it('rejects pending calls when the peer closes', async () => {
    const sock = path.join(dir, 'closer.sock');
    const server = net.createServer((s) => s.on('data', () => s.destroy()));
    await new Promise<void>((r) => server.listen(sock, r));
    const c = await AgentClient.connect(sock);
    await assert.rejects(c.ping({ timeoutMs: 5000 }), isCode('FORKD_E_AGENT_UNAVAILABLE'));
    server.close();
  });

  it('closes the connection when a partial frame stalls past its deadline', async () => {
    const sock = path.join(dir, 'staller.sock');
    const server = net.createServer((s) => s.on('data', () => {
      // The reply to call 1 declares 1 MiB and stops after its first bytes.
      s.write(encodeFrame({ kind: 'res', id: 1, ok: true, result: {} }, Buffer.alloc(1 << 20)).subarray(0, 4096));
    }));
    await new Promise<void>((r) => server.listen(sock, r));
    const problems: string[] = [];
    const c = await AgentClient.connect(sock, { firstCallId: 1, partialFrameTimeoutMs: 150, onProblem: (p) => problems.push(p.kind) });
    const t0 = Date.now();
    await assert.rejects(c.ping({ timeoutMs: 10_000 }), (e: { code?: string; message: string }) => e.code === 'FORKD_E_AGENT_UNAVAILABLE' && /partial frame .* did not complete within 150 ms/.test(e.message));
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(c.isClosed);
    assert.deepEqual(problems, ['stalled']);
    server.close();
  });

  it('skips unsolicited and forged frames unread and keeps answering', async () => {
    const sock = path.join(dir, 'forger.sock');
    const server = net.createServer((s) => s.on('data', (d) => {
      // Forged replies for ids nobody waits for, a 4 MiB unsolicited frame, then the real answer.
      for (let id = 100; id < 1100; id++) s.write(encodeFrame({ kind: 'res', id, ok: false, error: { code: 'FORKD_E_UNAUTHORIZED', message: 'forged' } }));
      s.write(encodeFrame({ kind: 'res', id: 5000, ok: true, result: Array.from({ length: 1000 }, () => ({})) }, Buffer.alloc(4 << 20)));
      const id = (JSON.parse(d.subarray(12, 12 + d.readUInt32BE(4)).toString()) as { id: number }).id;
      s.write(encodeFrame({ kind: 'res', id, ok: true, result: { version: 'x', uptime_ms: 1, languages: ['js'], warmup: 'none' } }));
    }));
    await new Promise<void>((r) => server.listen(sock, r));
    const problems: string[] = [];
    const c = await AgentClient.connect(sock, { firstCallId: 1, onProblem: (p) => problems.push(p.kind) });
    // The one reply processed is the real one (its result does not match the ping schema here).
    await assert.rejects(c.call('ping', {}, { timeoutMs: 5000 }), isCode('FORKD_E_AGENT_PROTOCOL'));
    assert.deepEqual(problems.filter((k) => k !== 'malformed'), []);
    c.close();
    server.close();
  });

  it('refuses calls while a guest that stopped reading has a full queue, then closes the wedged connection', async () => {
    const sock = path.join(dir, 'deaf.sock');
    const peers: net.Socket[] = [];
    // A guest that stops reading its port: nothing it was sent is taken off the socket.
    const server = net.createServer((s) => {
      s.pause();
      peers.push(s);
    });
    await new Promise<void>((r) => server.listen(sock, r));
    const c = await AgentClient.connect(sock, { firstCallId: 1, writeStallTimeoutMs: 600 });
    const chunk = Buffer.alloc(LIMITS.maxFileChunkBytes);
    const calls = Array.from({ length: 8 }, (_, i) => c.call('files.write', { path: `/f${i}` }, { payload: chunk, timeoutMs: 200 }));
    const settled = await Promise.allSettled(calls);
    const codes = settled.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok'));
    // The first calls were queued (and then timed out); the rest were refused without being sent.
    assert.ok(codes.includes('FORKD_E_AGENT_TIMEOUT'), codes.join());
    assert.ok(codes.filter((k) => k === 'FORKD_E_AGENT_BACKPRESSURE').length >= 4, codes.join());
    assert.ok(c.queuedWriteBytes <= LIMITS.agentWrites.maxQueuedBytes + chunk.length + 4096, `${c.queuedWriteBytes} bytes queued`);
    await assert.rejects(c.ping({ timeoutMs: 5000 }), isCode('FORKD_E_AGENT_BACKPRESSURE'));
    // Still wedged past the deadline: the connection is closed and the queued bytes freed.
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(c.isClosed, true);
    assert.equal(c.queuedWriteBytes, 0);
    await assert.rejects(c.ping(), (e: { code?: string; message: string }) => e.code === 'FORKD_E_AGENT_UNAVAILABLE' && /did not read its agent channel/.test(e.message));
    for (const p of peers) p.destroy();
    server.close();
  });

  it('a guest that reads slowly but keeps reading is not cut off', async () => {
    const sock = path.join(dir, 'slow.sock');
    const peers: net.Socket[] = [];
    const server = net.createServer((s) => {
      peers.push(s);
      // Takes what it was sent in bursts, like a guest busy between reads, and answers each write.
      s.pause();
      const iv = setInterval(() => s.read(65536), 20);
      s.on('close', () => clearInterval(iv));
    });
    await new Promise<void>((r) => server.listen(sock, r));
    const c = await AgentClient.connect(sock, { firstCallId: 1, writeStallTimeoutMs: 300 });
    const chunk = Buffer.alloc(LIMITS.maxFileChunkBytes);
    for (let i = 0; i < 2; i++) void c.call('files.write', { path: `/s${i}` }, { payload: chunk, timeoutMs: 60_000 }).catch(() => undefined);
    // Draining 8 MiB this way takes several stall periods: progress, not a full drain, keeps it open.
    const t0 = Date.now();
    while (c.queuedWriteBytes > 0 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(Date.now() - t0 > 600, `drained in ${Date.now() - t0} ms: the test did not exercise a slow reader`);
    assert.equal(c.isClosed, false);
    assert.equal(c.queuedWriteBytes, 0);
    c.close();
    for (const p of peers) p.destroy();
    server.close();
  });
});
