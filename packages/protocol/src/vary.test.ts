import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LIMITS } from './limits.js';
import { AllowGuestFork, Vary, VaryValues, expandVary, varyEnvValue } from './vary.js';

const codeOf = (e: unknown) => (e as { code?: string }).code;

test('expandVary: by name and as a list give child i its values; lengths must match the count', () => {
  assert.deepEqual(expandVary({ t: [0.1, 0.5], m: ['a', 'b'] }, 2), [{ t: 0.1, m: 'a' }, { t: 0.5, m: 'b' }]);
  assert.deepEqual(expandVary([{ t: 1 }, { t: 2, x: true }], 2), [{ t: 1 }, { t: 2, x: true }]);
  assert.deepEqual(expandVary(undefined, 3), [{}, {}, {}]);
  assert.throws(() => expandVary({ t: [1] }, 2), (e) => codeOf(e) === 'FORKD_E_INVALID_ARGUMENT');
  assert.throws(() => expandVary([{ t: 1 }], 2), (e) => codeOf(e) === 'FORKD_E_INVALID_ARGUMENT');
});

test('Vary refuses names that are not identifiers, FORKD_ names, non-scalars and oversize values', () => {
  for (const bad of [{ '1x': [1] }, { 'a-b': [1] }, { forkd_seed: [1] }, { a: [{ b: 1 }] }, { a: [null] }, { a: ['x'.repeat(LIMITS.vary.maxStringChars + 1)] }, { a: [Number.NaN] }]) {
    assert.equal(Vary.safeParse(bad).success, false, JSON.stringify(bad));
  }
  const many = Object.fromEntries(Array.from({ length: LIMITS.vary.maxNames + 1 }, (_, i) => [`v${i}`, 1]));
  assert.equal(VaryValues.safeParse(many).success, false);
  assert.equal(Vary.safeParse({ temperature: [0.1, 0.5, 0.9] }).success, true);
  assert.equal(AllowGuestFork.safeParse({ max_count: 0, max_depth: 1 }).success, false);
  assert.equal(AllowGuestFork.safeParse({ max_count: 3, max_depth: LIMITS.guestFork.maxDepth + 1 }).success, false);
});

test('env values: strings as they are, numbers and booleans as JSON', () => {
  assert.deepEqual([varyEnvValue('x y'), varyEnvValue(0.1), varyEnvValue(true)], ['x y', '0.1', 'true']);
});
