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

/** A sandbox double whose end the test decides (endCause resolves with 'oom' or 'exited'). */
function endingEngine() {
  const ends: Array<(cause: string) => void> = [];
  let n = 0;
  const engine = {
    spawn: async (o: { n: number }) => Array.from({ length: o.n }, () => {
      const id = `sb-${String(++n).padStart(16, '0')}`;
      let kill: (c: string) => void = () => undefined;
      const endCause = new Promise<string>((r) => (kill = r));
      ends.push((c) => kill(c));
      return { id, pid: 1, dir: '/nonexistent', language: 'python', timings: { spawn_to_ready_ms: 5 }, setEnvs: async () => undefined, kill: async () => undefined, endCause, alive: true };
    }),
  } as unknown as Engine;
  return { engine, ends };
}

test('lifecycle events: oom (with its memory limit), exited, timed_out and killed with its reason, each once', async () => {
  const { engine, ends } = endingEngine();
  const noop = () => undefined;
  const journal = { put: async () => undefined, delete: async () => undefined } as unknown as Journal;
  const metrics = { spawnReady: { observe: noop }, spawnRequest: { observe: noop }, sandboxesSpawned: { inc: noop }, sandboxesEnded: { inc: noop } } as unknown as Metrics;
  const log = { info: noop, warn: noop, error: noop, debug: noop } as unknown as Logger;
  const r = new SandboxRegistry(engine, journal, metrics, log, { maxCallsPerSandbox: 64, quotas: { defaults: {}, max: { memory_limit_mib: 4096 } } }, roomyAdmission({ maxSandboxes: 10, maxSpawnInFlight: 10 }));
  const events: Array<{ kind: string; sandbox_id?: string | null; details?: Record<string, unknown> }> = [];
  r.events = { emit: (e) => void events.push(e) };
  const [a, b, c, d] = await r.spawn({ tag: 't', owner: 'alice', n: 4, quotas: { memory_limit_mib: 256 } });
  ends[0]!('oom');
  ends[1]!('exited');
  await r.setTimeout(c!.rec.id, null, 10);
  await r.kill(d!.rec.id, null, 'suspend');
  await new Promise((res) => setTimeout(res, 100));
  ends[0]!('oom'); // a second end report changes nothing
  const of = (id: string) => events.filter((e) => e.sandbox_id === id).map((e) => e.kind);
  assert.deepEqual(of(a!.rec.id), ['created', 'oom']);
  assert.deepEqual(of(b!.rec.id), ['created', 'exited']);
  assert.deepEqual(of(c!.rec.id), ['created', 'timed_out']);
  assert.deepEqual(of(d!.rec.id), ['created', 'killed']);
  assert.equal(events.find((e) => e.kind === 'oom')!.details!.memory_limit_mib, 256);
  assert.equal(events.find((e) => e.kind === 'killed')!.details!.reason, 'suspend');
  assert.equal(r.describe(a!.rec.id, null).endReason, 'oom');
});
