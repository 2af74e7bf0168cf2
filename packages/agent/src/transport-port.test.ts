import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eofRetryMs } from './transport-port.js';

test('a port without a host is retried every 20 ms for 2 s, then once a second', () => {
  assert.equal(eofRetryMs(0), 20);
  assert.equal(eofRetryMs(1_999), 20);
  assert.equal(eofRetryMs(2_000), 1_000);
  assert.equal(eofRetryMs(3_600_000), 1_000);
});
