import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteBudget, FRAME_MAGIC, FrameDecoder, encodeFrame, type DecodedFrame, type FrameProblem } from './frame.js';
import { LIMITS } from './limits.js';

function decodeAll(chunks: Uint8Array[], maxFrameBytes?: number): { frames: DecodedFrame[]; problems: FrameProblem[]; maxBuffered: number } {
  const frames: DecodedFrame[] = [];
  const problems: FrameProblem[] = [];
  const d = new FrameDecoder({ maxFrameBytes, onFrame: (f) => frames.push(f), onProblem: (p) => problems.push(p) });
  let maxBuffered = 0;
  for (const c of chunks) {
    d.push(c);
    maxBuffered = Math.max(maxBuffered, d.buffered);
  }
  return { frames, problems, maxBuffered };
}

/** Splits buf at the given cut points. */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

const frameArb = fc.record({
  header: fc.record({ kind: fc.constantFrom('req', 'res', 'evt'), id: fc.nat(), data: fc.jsonValue() }),
  payload: fc.uint8Array({ maxLength: 300 }),
});

describe('frame codec', () => {
  it('round-trips one frame', () => {
    const { frames } = decodeAll([encodeFrame({ kind: 'req', id: 1 }, Buffer.from([0, 1, 2]))]);
    assert.deepEqual(frames[0]!.header, { kind: 'req', id: 1 });
    assert.deepEqual([...frames[0]!.payload], [0, 1, 2]);
  });

  it('decodes any split of a stream of frames identically', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (fs, cuts) => {
        const stream = Buffer.concat(fs.map((f) => encodeFrame(f.header, f.payload)));
        const whole = decodeAll([stream]);
        const pieces = decodeAll(split(stream, cuts));
        assert.equal(whole.frames.length, fs.length);
        assert.deepEqual(pieces.frames.map((f) => [f.header, [...f.payload]]), whole.frames.map((f) => [f.header, [...f.payload]]));
        assert.deepEqual(whole.frames.map((f) => f.header), fs.map((f) => JSON.parse(JSON.stringify(f.header))));
        assert.equal(pieces.problems.length, 0);
      }),
    );
  });

  it('resynchronises after garbage that contains no magic', () => {
    const noMagic = fc.uint8Array({ minLength: 1, maxLength: 200 }).filter((b) => Buffer.from(b).indexOf(FRAME_MAGIC.subarray(0, 1)) < 0);
    fc.assert(
      fc.property(noMagic, frameArb, fc.array(fc.nat(), { maxLength: 10 }), (garbage, f, cuts) => {
        const stream = Buffer.concat([Buffer.from(garbage), encodeFrame(f.header, f.payload)]);
        const r = decodeAll(split(stream, cuts));
        assert.equal(r.frames.length, 1);
        assert.deepEqual(r.frames[0]!.header, JSON.parse(JSON.stringify(f.header)));
        const skipped = r.problems.filter((p) => p.kind === 'garbage').reduce((n, p) => n + (p.kind === 'garbage' ? p.skippedBytes : 0), 0);
        assert.equal(skipped, garbage.length);
      }),
    );
  });

  it('finds a magic split across chunks after garbage', () => {
    const f = encodeFrame({ kind: 'req', id: 3 });
    const stream = Buffer.concat([Buffer.from('xxFKD'), f]);
    for (let i = 0; i <= stream.length; i++) {
      const r = decodeAll([stream.subarray(0, i), stream.subarray(i)]);
      assert.equal(r.frames.length, 1, `cut at ${i}`);
    }
  });

  it('discards oversized frames with bounded memory and reports their id', () => {
    const max = 1024;
    const big = encodeFrame({ kind: 'req', id: 42 }, Buffer.alloc(100_000, 7));
    const next = encodeFrame({ kind: 'req', id: 43 });
    const chunks = split(Buffer.concat([big, next]), Array.from({ length: 200 }, (_, i) => i * 517));
    const r = decodeAll(chunks, max);
    assert.deepEqual(r.problems.filter((p) => p.kind === 'oversize'), [{ kind: 'oversize', id: 42, bytes: big.length - 12 }]);
    assert.deepEqual(r.frames.map((f) => f.header), [{ kind: 'req', id: 43 }]);
    assert.ok(r.maxBuffered <= max + 1024, `buffered ${r.maxBuffered}`);
  });

  it('skips a frame with a huge declared header without buffering it', () => {
    const prefix = Buffer.alloc(12);
    FRAME_MAGIC.copy(prefix);
    prefix.writeUInt32BE(0xffffffff, 4);
    prefix.writeUInt32BE(0, 8);
    const r = decodeAll([prefix, Buffer.alloc(64 * 1024)], 4096);
    assert.deepEqual(r.problems, [{ kind: 'oversize', id: null, bytes: 0xffffffff }]);
    assert.ok(r.maxBuffered <= 64 * 1024);
  });

  it('reports a non-JSON header as malformed and continues', () => {
    const bad = Buffer.from('{nope');
    const prefix = Buffer.alloc(12);
    FRAME_MAGIC.copy(prefix);
    prefix.writeUInt32BE(bad.length, 4);
    const r = decodeAll([Buffer.concat([prefix, bad, encodeFrame({ kind: 'req', id: 1 })])]);
    assert.equal(r.problems[0]?.kind, 'malformed');
    assert.equal(r.frames.length, 1);
  });

  it('reset forgets a partial frame', () => {
    const frames: DecodedFrame[] = [];
    const d = new FrameDecoder({ onFrame: (f) => frames.push(f) });
    const f = encodeFrame({ kind: 'req', id: 1 });
    d.push(f.subarray(0, 10));
    d.reset();
    assert.equal(d.buffered, 0);
    d.push(f);
    assert.equal(frames.length, 1);
  });

  it('holds a frame trickled one byte at a time in one buffer of its size (16 MiB, heap stays flat)', () => {
    const payload = Buffer.alloc(LIMITS.maxFrameBytes - 64, 1);
    const stream = encodeFrame({ kind: 'res', id: 7 }, payload);
    const frames: DecodedFrame[] = [];
    const d = new FrameDecoder({ onFrame: (f) => frames.push(f) });
    globalThis.gc?.();
    const before = process.memoryUsage();
    let maxBuffered = 0;
    for (let i = 0; i < stream.length; i++) {
      d.push(stream.subarray(i, i + 1));
      if ((i & 0xfffff) === 0) maxBuffered = Math.max(maxBuffered, d.buffered);
    }
    const after = process.memoryUsage();
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.payload.length, payload.length);
    assert.ok(maxBuffered <= stream.length, `buffered ${maxBuffered}`);
    // One retained object per byte would be ~1.7 GiB of heap; one buffer is off-heap and of the frame's size.
    const grown = (after.heapUsed - before.heapUsed) + (after.arrayBuffers - before.arrayBuffers);
    assert.ok(grown < 2 * stream.length, `grew ${grown} bytes for a ${stream.length}-byte frame`);
  });

  it('drops a frame nobody waits for without holding it, after reading only the head of its header', () => {
    const frames: DecodedFrame[] = [];
    const problems: FrameProblem[] = [];
    const ids: Array<number | null> = [];
    const d = new FrameDecoder({ admit: (id) => (ids.push(id), id === 2 ? 1024 : 0), onFrame: (f) => frames.push(f), onProblem: (p) => problems.push(p) });
    const unsolicited = encodeFrame({ kind: 'res', id: 1, ok: true, result: Array.from({ length: 100_000 }, () => ({})) }, Buffer.alloc(1 << 20));
    let maxBuffered = 0;
    for (let i = 0; i < unsolicited.length; i += 4096) {
      d.push(unsolicited.subarray(i, i + 4096));
      maxBuffered = Math.max(maxBuffered, d.buffered);
    }
    d.push(encodeFrame({ kind: 'res', id: 2, ok: true, result: {} }));
    assert.ok(maxBuffered < 64, `buffered ${maxBuffered}`);
    assert.deepEqual(ids, [1, 2]);
    assert.deepEqual(frames.map((f) => f.header), [{ kind: 'res', id: 2, ok: true, result: {} }]);
    assert.equal(problems.length, 0);
    // A wanted id whose header is over the reader's cap is skipped and reported with its id.
    d.push(encodeFrame({ kind: 'res', id: 2, ok: true, result: 'x'.repeat(2000) }));
    assert.deepEqual(problems.map((p) => [p.kind, 'id' in p ? p.id : null]), [['oversize', 2]]);
  });

  it('reports and drops a partial frame past its deadline, and gives back its budget', async () => {
    const problems: FrameProblem[] = [];
    const budget = new ByteBudget(1 << 20);
    const d = new FrameDecoder({ budget, partialFrameTimeoutMs: 50, onFrame: () => assert.fail('no frame'), onProblem: (p) => problems.push(p) });
    const f = encodeFrame({ kind: 'res', id: 5 }, Buffer.alloc(1000));
    d.push(f.subarray(0, 500));
    assert.equal(budget.heldBytes, f.length - 12);
    await new Promise((r) => setTimeout(r, 120));
    assert.deepEqual(problems, [{ kind: 'stalled', id: 5, heldBytes: 488, timeoutMs: 50 }]);
    assert.equal(budget.heldBytes, 0);
    assert.equal(d.buffered, 0);
  });

  it('skips a frame the shared budget has no room for', () => {
    const problems: FrameProblem[] = [];
    const budget = new ByteBudget(1000);
    const frames: DecodedFrame[] = [];
    const a = new FrameDecoder({ budget, onFrame: (f) => frames.push(f), onProblem: (p) => problems.push(p) });
    const b = new FrameDecoder({ budget, onFrame: (f) => frames.push(f), onProblem: (p) => problems.push(p) });
    const f = encodeFrame({ kind: 'res', id: 1 }, Buffer.alloc(600));
    a.push(f.subarray(0, 100));
    b.push(f);
    assert.deepEqual(problems, [{ kind: 'budget', id: 1, bytes: f.length - 12 }]);
    a.push(f.subarray(100));
    assert.equal(frames.length, 1);
    assert.equal(budget.heldBytes, 0);
  });
});
