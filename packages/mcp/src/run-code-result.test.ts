import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCodeResult } from './result.js';

test('run_code answers MCP clients with the JSON (images replaced by notes) and each image as image content', () => {
  const png = Buffer.from('\x89PNG\r\n\x1a\nxx', 'latin1').toString('base64');
  const a = runCodeResult({
    results: [{ text: '<Figure>', png, is_main_result: false }, { text: '42', is_main_result: true }],
    logs: { stdout: ['hi\n'], stderr: [] }, error: null, execution_count: 3, interpreter: 'ipython', dropped: [], duration_ms: 5,
  }).result;
  assert.equal(a.content.length, 2);
  assert.deepEqual(a.content[1], { type: 'image', data: png, mimeType: 'image/png' });
  const text = (a.content[0] as { text: string }).text;
  assert.doesNotMatch(text, new RegExp(png.slice(0, 8)), 'the base64 is not repeated in the text');
  assert.match(text, /image content #1 \(result 0, 10 bytes\)/);
  assert.equal((a.structuredContent as { execution_count: number }).execution_count, 3);
});
