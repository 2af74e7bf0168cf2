import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FRAME_MAGIC, FrameDecoder, encodeFrame, type DecodedFrame, type FrameProblem } from './frame.js';

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
});
