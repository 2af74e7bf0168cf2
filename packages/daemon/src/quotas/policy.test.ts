import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { checkPolicy, engineQuotas, resolveQuotas } from './policy.js';

test('a spawn value wins over the default; over the maximum is a 400; a maximum alone applies', () => {
  const p = checkPolicy({ defaults: { memory_limit_mib: 512, pids_max: 256 }, max: { memory_limit_mib: 1024, cpu_quota: 2 } });
  assert.deepEqual(resolveQuotas(p, {}), { memory_limit_mib: 512, cpu_quota: 2, pids_max: 256 });
  assert.deepEqual(resolveQuotas(p, { memory_limit_mib: 300, cpu_quota: 0.5 }), { memory_limit_mib: 300, cpu_quota: 0.5, pids_max: 256 });
  assert.throws(() => resolveQuotas(p, { memory_limit_mib: 2048 }), (e) => e instanceof ForkdError && e.code === 'FORKD_E_OUT_OF_RANGE' && e.status === 400);
  assert.throws(() => checkPolicy({ defaults: { cpu_quota: 4 }, max: { cpu_quota: 2 } }), (e) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT');
  assert.deepEqual(engineQuotas({ memory_limit_mib: 300, io_write_bps: 1 << 20 }), { memoryMib: 300, ioWriteBps: 1 << 20 });
});
