import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import { assertValidTag, isValidTag } from './names.js';
import { ForkdError } from './errors.js';

test('accepted tags always stay a direct child of the store', () => {
  const root = '/var/lib/forkd/snapshots';
  fc.assert(fc.property(fc.string({ maxLength: 80 }), (tag) => {
    if (!isValidTag(tag)) return;
    const p = path.join(root, tag);
    assert.equal(path.dirname(p), root);
    assert.notEqual(path.basename(p), '..');
  }), { numRuns: 5000 });
});

test('traversal, separators, empty and over-long tags are rejected with FORKD_E_INVALID_TAG', () => {
  for (const bad of ['', '.', '..', '../x', 'a/b', '/abs', '-lead', '.hidden', 'a..b', 'x'.repeat(65), 'sp ace', 'nul\0', 42, null]) {
    assert.throws(() => assertValidTag(bad), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_TAG', String(bad));
  }
  for (const ok of ['a', 'py', 'quickstart-python', 'v1.2_x', '_x', 'A'.repeat(64)]) assert.equal(assertValidTag(ok), ok);
});
