/**
 * The agent must survive anything on its channel: random bytes, malformed and oversized frames.
 * Drives the real agent (--listen) with raw sockets, then checks it still answers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { FRAME_MAGIC, FrameDecoder, LIMITS, encodeFrame } from '@forkd/protocol';
import { AgentClient } from '../../engine/src/agent-client/index.js';
import { startTestAgent, type TestAgent } from '../../engine/src/agent-client/test-agent.js';

interface RawReply {
  header: { kind: string; id: number; ok?: boolean; error?: { code: string; message: string } };
  payload: Buffer;
}

class RawConn {
  readonly replies: RawReply[] = [];
  private waiters: Array<() => void> = [];
  private constructor(readonly sock: net.Socket) {
    const dec = new FrameDecoder({
      maxFrameBytes: LIMITS.maxFrameBytes,
      onFrame: (f) => {
        this.replies.push(f as RawReply);
        for (const w of this.waiters.splice(0)) w();
      },
    });
    sock.on('data', (d: Buffer) => dec.push(d));
    sock.on('error', () => undefined);
  }
  static open(path: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }
  write(b: Uint8Array): Promise<void> {
    return new Promise((r) => this.sock.write(b, () => r()));
  }
  async reply(pred: (r: RawReply) => boolean, timeoutMs = 5000): Promise<RawReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.replies.find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching reply; got ${JSON.stringify(this.replies.map((r) => r.header))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
  close(): void {
    this.sock.destroy();
  }
}

const frameWithLengths = (headerLen: number, payloadLen: number, body: Uint8Array): Buffer => {
  const prefix = Buffer.alloc(12);
  FRAME_MAGIC.copy(prefix, 0);
  prefix.writeUInt32BE(headerLen, 4);
  prefix.writeUInt32BE(payloadLen, 8);
  return Buffer.concat([prefix, body]);
};

describe('agent robustness', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    await agent?.stop();
  });

  const pingFresh = async (): Promise<void> => {
    const c = await AgentClient.connect(agent.socketPath);
    try {
      assert.equal((await c.ping({ timeoutMs: 5000 })).pong, true);
    } finally {
      c.close();
    }
  };

  it('answers an oversized frame with an error carrying its id, then keeps serving', async () => {
    const c = await RawConn.open(agent.socketPath);
    const payloadLen = LIMITS.maxFrameBytes + 1;
    const header = Buffer.from(JSON.stringify({ kind: 'req', id: 77, method: 'ping', params: {} }));
    await c.write(frameWithLengths(header.length, payloadLen, header));
    const r = await c.reply((x) => x.header.id === 77);
    assert.equal(r.header.ok, false);
    assert.equal(r.header.error?.code, 'FORKD_E_PAYLOAD_TOO_LARGE');
    await c.write(Buffer.alloc(payloadLen)); // the discarded payload
    await c.write(encodeFrame({ kind: 'req', id: 78, method: 'ping', params: {} }));
    assert.equal((await c.reply((x) => x.header.id === 78)).header.ok, true);
    c.close();
  });

  it('skips garbage before a frame', async () => {
    const c = await RawConn.open(agent.socketPath);
    await c.write(Buffer.concat([Buffer.from('hello FKD garbage FK'), FRAME_MAGIC.subarray(0, 3), encodeFrame({ kind: 'req', id: 5, method: 'ping', params: {} })]));
    assert.equal((await c.reply((x) => x.header.id === 5)).header.ok, true);
    c.close();
  });

  it('answers malformed frames with errors and keeps the connection usable', async () => {
    const c = await RawConn.open(agent.socketPath);
    const bad = Buffer.from('{not json');
    await c.write(frameWithLengths(bad.length, 0, bad));
    await c.write(encodeFrame({ kind: 'req', id: 9 })); // no method
    await c.write(encodeFrame({ kind: 'req', id: 10, method: 'no.such', params: {} }));
    await c.write(encodeFrame({ kind: 'req', id: 11, method: 'files.read', params: { path: 'rel' } }));
    await c.write(encodeFrame({ kind: 'req', id: 12, method: 'ping', params: {} }));
    await c.write(encodeFrame({ kind: 'req', id: 12, method: 'ping', params: {} }));
    assert.equal((await c.reply((x) => x.header.id === 0)).header.error?.code, 'FORKD_E_AGENT_PROTOCOL');
    assert.equal((await c.reply((x) => x.header.id === 9)).header.error?.code, 'FORKD_E_AGENT_PROTOCOL');
    assert.equal((await c.reply((x) => x.header.id === 10)).header.error?.code, 'FORKD_E_INVALID_ARGUMENT');
    const inv = await c.reply((x) => x.header.id === 11);
    assert.equal(inv.header.error?.code, 'FORKD_E_INVALID_ARGUMENT');
    assert.match(inv.header.error?.message ?? '', /absolute/);
    assert.equal((await c.reply((x) => x.header.id === 12 && x.header.ok === true)).header.ok, true);
    c.close();
  });

  it('survives random bytes and random frames (property)', async () => {
    const header = fc.record(
      {
        kind: fc.constantFrom('req', 'res', 'evt', 'cancel', 'x'),
        id: fc.oneof(fc.nat(), fc.integer(), fc.double()),
        method: fc.constantFrom('ping', 'proc.list', 'files.stat', 'files.read', 'eval', 'bogus'),
        params: fc.oneof(fc.jsonValue(), fc.constant({ path: '/' }), fc.constant({ language: 'js', code: '1+1' })),
      },
      { requiredKeys: [] },
    );
    const jsonish = fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), header.map((v) => JSON.stringify(v)), fc.string());
    const segment = fc.oneof(
      fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
      jsonish.map((h) => frameWithLengths(Buffer.byteLength(h), 0, Buffer.from(h))),
      fc.tuple(header, fc.uint8Array({ maxLength: 64 })).map(([h, p]) => encodeFrame(h, p)),
      fc.tuple(fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 64 })).map(([a, b, body]) => frameWithLengths(a, b, body)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 12 }), async (segments) => {
        const c = await RawConn.open(agent.socketPath);
        for (const s of segments) await c.write(s);
        await new Promise((r) => setTimeout(r, 5));
        c.close();
        await pingFresh();
      }),
      { numRuns: 60 },
    );
    assert.equal(agent.proc.exitCode, null, 'agent still running');
  });

  it('keeps answering after the host disconnects mid-frame', async () => {
    const c = await RawConn.open(agent.socketPath);
    const f = encodeFrame({ kind: 'req', id: 1, method: 'ping', params: {} });
    await c.write(f.subarray(0, f.length - 3));
    c.close();
    await pingFresh();
  });
});
