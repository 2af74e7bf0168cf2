import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ForkdError } from '@forkd/protocol';
import { LineFramer } from './line-framer.js';

/** Splits a buffer at the given (sorted, deduplicated) cut points. */
function cut(buf: Buffer, cuts: number[]): Buffer[] {
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

test('any split of a stream of lines yields the same lines (CRLF or LF, unicode)', () => {
  const lineArb = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\n') && !s.includes('\r'));
  fc.assert(
    fc.property(fc.array(lineArb, { maxLength: 20 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 30 }), (lines, crlf, cuts) => {
      const sep = crlf ? '\r\n' : '\n';
      const stream = Buffer.from(lines.map((l) => l + sep).join(''), 'utf8');
      const f = new LineFramer(1 << 20);
      const got = cut(stream, cuts).flatMap((c) => f.push(c));
      assert.deepEqual(got, lines.filter((l) => l.length > 0));
      assert.equal(f.buffered, 0);
    }),
    { numRuns: 500 },
  );
});

test('a partial trailing line is held until its newline arrives', () => {
  const f = new LineFramer(100);
  assert.deepEqual(f.push(Buffer.from('{"a":1}\n{"b"')), ['{"a":1}']);
  assert.equal(f.buffered, 4);
  assert.deepEqual(f.push(Buffer.from(':2}\n')), ['{"b":2}']);
});

test('a line over the cap throws, whatever the chunking', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 64 }), fc.array(fc.nat(), { maxLength: 10 }), (cap, cuts) => {
      const f = new LineFramer(cap);
      const stream = Buffer.from(`${'x'.repeat(cap + 1)}\n`);
      assert.throws(() => cut(stream, cuts).forEach((c) => f.push(c)), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_PAYLOAD_TOO_LARGE');
    }),
  );
  // Exactly at the cap is fine.
  assert.deepEqual(new LineFramer(3).push(Buffer.from('abc\n')), ['abc']);
});
