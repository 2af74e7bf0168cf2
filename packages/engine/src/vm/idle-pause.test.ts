/** The idle pause's decisions against a scripted target (the VM side is tested in sandbox/idle-pause.integration.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdlePause, type IdlePauseTarget } from './idle-pause.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fakeTarget(o: { busy?: boolean; cpuPerCall?: number; stopDelayMs?: number } = {}) {
  const log: string[] = [];
  let cpu = 0;
  const t: IdlePauseTarget & { log: string[]; busy: boolean } = {
    log,
    busy: o.busy ?? false,
    stop: async () => {
      log.push('stop');
      await sleep(o.stopDelayMs ?? 0);
    },
    cont: async () => void log.push('cont'),
    syncClock: async () => void log.push('clock'),
    guestBusy: async () => t.busy,
    cpuMs: async () => (cpu += o.cpuPerCall ?? 0),
  };
  return t;
}

test('stops after the idle time, wakes (cont, then the clock) on the next call', async () => {
  const t = fakeTarget();
  const p = new IdlePause(t, { afterMs: 30 });
  await sleep(80);
  assert.deepEqual(t.log, ['stop']);
  assert.equal(p.stats.paused, true);
  await p.hold(async () => t.log.push('call'));
  assert.deepEqual(t.log, ['stop', 'cont', 'clock', 'call']);
  assert.equal(p.stats.paused, false);
  assert.equal(p.stats.wakes, 1);
  p.close();
});

test('never stops while a call is in flight, and re-arms after the last one leaves', async () => {
  const t = fakeTarget();
  const p = new IdlePause(t, { afterMs: 30 });
  await p.enter();
  await sleep(80);
  assert.deepEqual(t.log, []);
  p.leave();
  await sleep(80);
  assert.deepEqual(t.log, ['stop']);
  p.close();
});

test('a guest with work of its own, or a QEMU using CPU, is not stopped', async () => {
  const busy = fakeTarget({ busy: true });
  const p1 = new IdlePause(busy, { afterMs: 20 });
  await sleep(90);
  assert.deepEqual(busy.log, []);
  busy.busy = false;
  await sleep(60);
  assert.deepEqual(busy.log, ['stop'], 'checked again later, and stopped once idle');
  p1.close();
  // 1000 ms of CPU per reading, readings ~20 ms apart: far above the busy threshold.
  const hot = fakeTarget({ cpuPerCall: 1000 });
  const p2 = new IdlePause(hot, { afterMs: 20 });
  await sleep(90);
  assert.deepEqual(hot.log, []);
  p2.close();
});

test('a call arriving while the guest is being stopped waits, then wakes it', async () => {
  const t = fakeTarget({ stopDelayMs: 50 });
  const p = new IdlePause(t, { afterMs: 10 });
  await sleep(30); // the stop is in progress
  await p.hold(async () => t.log.push('call'));
  assert.deepEqual(t.log, ['stop', 'cont', 'clock', 'call']);
  p.close();
});

test('closed: no more stops', async () => {
  const t = fakeTarget();
  const p = new IdlePause(t, { afterMs: 20 });
  p.close();
  await sleep(60);
  assert.deepEqual(t.log, []);
});
