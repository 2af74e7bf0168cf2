import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { bytes, escapeControls, exitCodeFor, parseIntStrict, reportError, table } from './output.js';

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

test('guest-chosen strings reach the terminal with their control characters escaped', () => {
  // A file name carrying OSC 52 (clipboard write), a colour and a C1 CSI.
  const name = '/tmp/a\u001b]52;c;ZXZpbA==\u0007b\u001b[31m\u009b2J\nc';
  const t = table(['PATH'], [[name]]);
  assert.doesNotMatch(t, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  assert.equal(t.split('\n').length, 2, 'a line break in a cell does not add a row');
  assert.equal(escapeControls(name), '/tmp/a\\e]52;c;ZXZpbA==\\x07b\\e[31m\\x9b2J\\x0ac');
  assert.equal(escapeControls('l1\nl2\t\u001b', { keepLineBreaks: true }), 'l1\nl2\t\\e');
  let err = '';
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    reportError(new ForkdError('FORKD_E_AGENT_ERROR', 'guest says \u001b]0;pwned\u0007'), {});
  } finally {
    process.stderr.write = write;
  }
  assert.equal(err, 'forkd: error FORKD_E_AGENT_ERROR: guest says \\e]0;pwned\\x07\n');
});
