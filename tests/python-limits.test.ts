/** sdk/python/forkd/_limits.py is generated from packages/protocol: this fails when it is stale. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PYTHON_LIMITS_FILE, pythonLimitsModule } from '../scripts/gen-python-limits.js';

test('the committed python limits table is what protocol generates (run `npm run openapi` after changing a limit)', () => {
  assert.equal(readFileSync(PYTHON_LIMITS_FILE, 'utf8'), pythonLimitsModule());
});
