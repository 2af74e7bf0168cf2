/** The registry's spawn admission, with an engine that records calls (no VM). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import type { Engine } from '@forkd/engine';
import type { Logger } from 'pino';
import type { Journal } from '../state/journal.js';
import type { Metrics } from '../metrics.js';
import { SandboxRegistry } from './registry.js';
import { roomyAdmission } from '../testing/admission.js';

/** An engine whose spawn waits until `finish` is called, then fails (nothing to track). */
function blockingEngine() {
  const calls: number[] = [];
  const pending: Array<() => void> = [];
  const engine = {
    spawn: (o: { n: number }) => {
      calls.push(o.n);
      return new Promise((_, reject) => pending.push(() => reject(new ForkdError('FORKD_E_SNAPSHOT_NOT_FOUND', 'fake'))));
    },
  } as unknown as Engine;
  return { engine, calls, finish: () => pending.splice(0).forEach((f) => f()) };
}

function registry(engine: Engine, limits: { maxSandboxes: number; maxSpawnInFlight: number }) {
  return new SandboxRegistry(engine, {} as Journal, {} as Metrics, {} as Logger, { maxCallsPerSandbox: 64 }, roomyAdmission(limits));
}

const code = (e: unknown) => (e instanceof ForkdError ? `${e.code} ${e.status}` : String(e));

test('n above a daemon cap is a 400 naming the cap, before the engine is asked', async () => {
  const { engine, calls } = blockingEngine();
  const r = registry(engine, { maxSandboxes: 10, maxSpawnInFlight: 4 });
  await assert.rejects(r.spawn({ tag: 't', owner: 'local', n: 11 }), (e) => code(e) === 'FORKD_E_INVALID_ARGUMENT 400' && /max-sandboxes 10/.test((e as Error).message));
  await assert.rejects(r.spawn({ tag: 't', owner: 'local', n: 5 }), (e) => code(e) === 'FORKD_E_INVALID_ARGUMENT 400' && /starts at once \(4\)/.test((e as Error).message));
  assert.deepEqual(calls, []);
});

test('n within the caps but over what is free right now stays a retryable 429 / 503', async () => {
  const { engine, calls, finish } = blockingEngine();
  const r = registry(engine, { maxSandboxes: 5, maxSpawnInFlight: 4 });
  const first = r.spawn({ tag: 't', owner: 'local', n: 3 });
  await assert.rejects(r.spawn({ tag: 't', owner: 'local', n: 3 }), (e) => code(e) === 'FORKD_E_CAPACITY 503');
  const second = r.spawn({ tag: 't', owner: 'local', n: 1 });
  await assert.rejects(r.spawn({ tag: 't', owner: 'local', n: 1 }), (e) => code(e) === 'FORKD_E_RATE_LIMITED 429');
  finish();
  for (const p of [first, second]) await assert.rejects(p, (e) => code(e) === 'FORKD_E_SNAPSHOT_NOT_FOUND 404');
  assert.deepEqual(calls, [3, 1]);
});
