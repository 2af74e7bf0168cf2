/**
 * Playwright's errors as the browser eval reports them: playwright-core's own bundle defines them as
 * class expressions (constructor name TimeoutError2), so the type comes from the name Playwright
 * sets on the instance. Loads the bundled playwright-core.cjs the guest gets (`npm run build`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describeError } from './describe-value.js';
import { errorType } from './browser-repl.js';

const bundle = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'guest', 'playwright-core.cjs');

test('a Playwright timeout is reported as TimeoutError, not the bundle\'s class name', () => {
  const pw = createRequire(import.meta.url)(bundle) as { errors: { TimeoutError: new (m: string) => Error } };
  const e = new pw.errors.TimeoutError('page.goto: Timeout 5000ms exceeded.');
  assert.notEqual(describeError(e).type, 'TimeoutError', 'the constructor name alone is the bundler\'s (else this test proves nothing)');
  assert.equal(errorType(e, describeError(e).type), 'TimeoutError');
});

test('other errors keep their class name: a plain Error name falls back to it', () => {
  class MyError extends Error {}
  assert.equal(errorType(new MyError('x'), describeError(new MyError('x')).type), 'MyError');
  assert.equal(errorType(new TypeError('x'), 'TypeError'), 'TypeError');
  assert.equal(errorType('not an error', 'string'), 'string');
});
