import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, type DecodedFrame } from './frame.js';
import { LIMITS } from './limits.js';
import { encodeResultFrame, readResult } from './result-frame.js';

function decode(buf: Buffer): DecodedFrame {
  const frames: DecodedFrame[] = [];
  new FrameDecoder({ onFrame: (f) => frames.push(f) }).push(buf);
  assert.equal(frames.length, 1);
  return frames[0]!;
}

describe('result frames', () => {
  it('keeps a small result in the header and its own payload as is', () => {
    const f = decode(encodeResultFrame(3, { size: 5 }, Buffer.from('hello')));
    assert.deepEqual(f.header, { kind: 'res', id: 3, ok: true, result: { size: 5 } });
    assert.deepEqual(readResult(f.header as object, f.payload), { ok: true, result: { size: 5 }, payload: Buffer.from('hello') });
  });

  it('moves a result that would pass the header cap into the payload, before the own payload', () => {
    const result = { text: 'é'.repeat(LIMITS.maxFrameHeaderBytes) };
    const buf = encodeResultFrame(4, result, Buffer.from('tail'));
    assert.ok(buf.readUInt32BE(4) < 100, 'header stays small');
    const f = decode(buf);
    const r = readResult(f.header as { result_bytes?: number }, f.payload);
    assert.ok(r.ok);
    assert.deepEqual(r.result, result);
    assert.deepEqual(r.payload, Buffer.from('tail'));
  });

  it('refuses a result both inline and in the payload, or longer than the payload', () => {
    assert.equal(readResult({ result: 1, result_bytes: 1 }, Buffer.from('1')).ok, false);
    assert.equal(readResult({ result_bytes: 9 }, Buffer.from('1')).ok, false);
  });
});
