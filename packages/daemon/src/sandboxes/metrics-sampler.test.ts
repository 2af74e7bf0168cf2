import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsSampler, toSample, type Readings } from './metrics-sampler.js';

const reading = (busy: number, total: number, cpuSec: number, age: number): Readings => ({
  guest: { cpu_count: 2, cpu_busy_ticks: busy, cpu_total_ticks: total, mem_total_bytes: 1000, mem_used_bytes: 400, disk_total_bytes: 5000, disk_used_bytes: 100, time_unix_ms: 0 },
  host: { cpu_seconds: cpuSec, age_seconds: age, rss_bytes: 77, cgroup_memory_bytes: null, disk_overlay_bytes: 9, host_cpus: 2 },
});

test('rates: the first sample averages since boot, later ones are the difference from the previous reading', () => {
  const first = toSample(reading(50, 200, 1, 10), null, 1000);
  assert.equal(first.cpu_used_pct, 25);
  assert.equal(first.host.cpu_pct, 10);
  const next = toSample(reading(150, 300, 6, 15), reading(50, 200, 1, 10), 2000);
  assert.equal(next.cpu_used_pct, 100);
  assert.equal(next.host.cpu_pct, 100);
  assert.equal(next.timestamp, new Date(2000).toISOString());
  assert.deepEqual([next.mem_used, next.mem_total, next.disk_used, next.disk_total, next.host.rss_bytes, next.host.disk_overlay_bytes], [400, 1000, 100, 5000, 77, 9]);
  // No time passed (or counters went back): 0, never NaN or negative.
  assert.equal(toSample(reading(50, 200, 1, 10), reading(60, 200, 2, 10), 0).cpu_used_pct, 0);
  assert.equal(toSample(reading(50, 200, 1, 10), reading(60, 200, 2, 10), 0).host.cpu_pct, 0);
});

test('on demand: a request samples (unless the newest is under a second old), the ring is bounded, windows filter, concurrent asks share one reading', async () => {
  let t = 10_000;
  let reads = 0;
  let live = true;
  const s = new MetricsSampler({ read: async () => { reads++; await new Promise((r) => setTimeout(r, 5)); return reading(reads * 10, reads * 100, reads, reads * 10); }, live: () => live, now: () => t },
    { ringSamples: 3, sampleIntervalMs: 60_000, watchMs: 5_000, maxWatched: 10 });
  const [a, b] = await Promise.all([s.samples('sb-1'), s.samples('sb-1')]);
  assert.equal(reads, 1);
  assert.equal(a.length, 1);
  assert.equal(b.length, 1);
  t += 500;
  assert.equal((await s.samples('sb-1')).length, 1, 'newest under a second old: no new reading');
  assert.equal(reads, 1);
  for (let i = 0; i < 4; i++) { t += 1000; await s.samples('sb-1'); }
  const all = await s.samples('sb-1', {});
  assert.equal(all.length, 3, 'ring capped');
  assert.equal(s.watched, 1);
  const win = await s.samples('sb-1', { start: all[1]!.timestamp_unix_ms, end: all[1]!.timestamp_unix_ms });
  assert.deepEqual(win.map((x) => x.timestamp_unix_ms), [all[1]!.timestamp_unix_ms]);
  // The background tick samples watched sandboxes only, and drops the rings of ended ones.
  const before = reads;
  await s.tick();
  assert.equal(reads, before + 1);
  t += 10_000; // past watchMs
  assert.equal(s.watched, 0);
  await s.tick();
  assert.equal(reads, before + 1, 'unwatched: no reading');
  live = false;
  await s.tick();
  assert.equal((await s.samples('sb-1').catch(() => [])).length, 1, 'ring dropped, then a fresh one');
  s.stop();
});

test('a failed read rejects the request and leaves the ring as it was', async () => {
  let fail = false;
  const s = new MetricsSampler({ read: async () => { if (fail) throw new Error('agent gone'); return reading(1, 2, 1, 1); }, live: () => true, now: (() => { let t = 0; return () => (t += 2000); })() });
  assert.equal((await s.samples('sb-x')).length, 1);
  fail = true;
  await assert.rejects(s.samples('sb-x'), /agent gone/);
  fail = false;
  assert.equal((await s.samples('sb-x')).length, 2);
  s.stop();
});
