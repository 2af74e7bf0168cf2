import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { bytes, exitCodeFor, parseIntStrict, table } from './output.js';

test('table aligns columns', () => {
  const t = table(['A', 'LONGER'], [['xxxx', 1], ['y', 22]]).split('\n');
  assert.equal(t[0], 'A     LONGER');
  assert.equal(t[1], 'xxxx  1');
  assert.equal(t[2], 'y     22');
});

test('integers are parsed strictly and errors map to exit codes', () => {
  assert.equal(parseIntStrict('-n', '10'), 10);
  assert.throws(() => parseIntStrict('-n', '1e3'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT');
  assert.throws(() => parseIntStrict('-n', ''), ForkdError);
  assert.equal(exitCodeFor(new ForkdError('FORKD_E_INVALID_TAG', 'x')), 2);
  assert.equal(exitCodeFor(new ForkdError('FORKD_E_VM_START_FAILED', 'x')), 1);
  assert.equal(bytes(1536), '1.5 KiB');
});
