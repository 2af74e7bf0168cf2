/** A guest fork waits for a capture slot: retried on capacity refusals until its deadline, never on other errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { retryWhileBusy } from './fork.js';

const noSleep = async () => undefined;

test('a capacity refusal is retried until the attempt succeeds', async () => {
  let calls = 0;
  const r = await retryWhileBusy(async () => {
    calls++;
    if (calls < 3) throw new ForkdError(calls === 1 ? 'FORKD_E_CAPACITY' : 'FORKD_E_RATE_LIMITED', 'busy');
    return 'forked';
  }, 60_000, noSleep);
  assert.equal(r, 'forked');
  assert.equal(calls, 3);
});

test('other errors, and refusals with no time left, are thrown as they are', async () => {
  let calls = 0;
  await assert.rejects(retryWhileBusy(async () => { calls++; throw new ForkdError('FORKD_E_GUEST_FORK_LIMIT', 'no'); }, 60_000, noSleep), (e: unknown) => (e as ForkdError).code === 'FORKD_E_GUEST_FORK_LIMIT');
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(retryWhileBusy(async () => { calls++; throw new ForkdError('FORKD_E_CAPACITY', 'busy'); }, 0, noSleep), (e: unknown) => (e as ForkdError).code === 'FORKD_E_CAPACITY');
  assert.equal(calls, 1, 'REST forks (no wait) are refused at once');
});
