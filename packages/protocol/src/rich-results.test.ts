import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JPEG_SIGNATURE, LIMITS, PNG_SIGNATURE, RunCodeParams, RunCodeResult, packRichImages, unpackRichImages } from './index.js';

const png = Buffer.concat([PNG_SIGNATURE, Buffer.from('png body')]);
const jpeg = Buffer.concat([JPEG_SIGNATURE, Buffer.from('jpeg body')]);

test('images packed by the agent come back to their own results on the host', () => {
  const { results, payload } = packRichImages([
    { result: { text: 'a', is_main_result: false }, images: { png } },
    { result: { html: '<b/>', is_main_result: false }, images: {} },
    { result: { text: 'c', is_main_result: true }, images: { png, jpeg } },
  ]);
  assert.deepEqual(results.map((r) => [r.png_bytes, r.jpeg_bytes]), [[png.length, undefined], [undefined, undefined], [png.length, jpeg.length]]);
  const back = unpackRichImages(results, payload);
  assert.ok(back[0]!.png!.equals(png));
  assert.deepEqual(back[1], {});
  assert.ok(back[2]!.png!.equals(png) && back[2]!.jpeg!.equals(jpeg));
});

test('a hostile reply is a protocol error: counts past the payload, bytes left over, a PNG that is not one', () => {
  const bad = (results: Parameters<typeof unpackRichImages>[0], payload: Buffer, re: RegExp) =>
    assert.throws(() => unpackRichImages(results, payload), (e: unknown) => (e as { code?: string }).code === 'FORKD_E_AGENT_PROTOCOL' && re.test((e as Error).message));
  bad([{ is_main_result: true, png_bytes: png.length + 1 }], png, /claims/);
  bad([{ is_main_result: true, png_bytes: png.length }], Buffer.concat([png, Buffer.from('x')]), /belong to no result/);
  bad([{ is_main_result: true }], png, /belong to no result/);
  bad([{ is_main_result: true, png_bytes: jpeg.length }], jpeg, /signature/);
});

test('the wire shapes hold the limits: too many results, an oversized image count, unknown fields', () => {
  const base = { stdout: [], stderr: [], error: null, execution_count: 1, interpreter: 'ipython', dropped: [], duration_ms: 1 };
  assert.ok(RunCodeResult.safeParse({ ...base, results: [{ text: 'x', is_main_result: true }] }).success);
  assert.ok(!RunCodeResult.safeParse({ ...base, results: Array.from({ length: LIMITS.richResults.maxResults + 1 }, () => ({ is_main_result: false })) }).success);
  assert.ok(!RunCodeResult.safeParse({ ...base, results: [{ is_main_result: true, png_bytes: LIMITS.richResults.maxImageBytes + 1 }] }).success);
  assert.ok(!RunCodeResult.safeParse({ ...base, results: [{ is_main_result: true, pdf: 'x' }] }).success, 'strict: no unknown formats');
  assert.ok(RunCodeParams.safeParse({ code: 'x', language: 'browser' }).success);
  assert.ok(!RunCodeParams.safeParse({ code: 'x', lang: 'python' }).success, 'strict: no unknown fields');
  assert.ok(LIMITS.richResults.maxTotalBytes < LIMITS.maxFrameBytes, 'a whole reply fits in one frame');
});
