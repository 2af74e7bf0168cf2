import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMeminfo, parseProcStat } from './stats.js';

test('/proc/stat: busy is everything but idle and iowait, over the first eight fields', () => {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const r = parseProcStat('cpu  100 5 50 1000 20 3 2 1 40 0\ncpu0 50 2 25 500 10 1 1 0 20 0\nintr 1 2 3\n');
  assert.deepEqual(r, { busy: 161, total: 1181 });
  assert.deepEqual(parseProcStat(''), { busy: 0, total: 0 });
  assert.deepEqual(parseProcStat('cpu  junk\n'), { busy: 0, total: 0 });
});

test('/proc/meminfo: used is total minus MemAvailable, or minus free+buffers+cached without it', () => {
  assert.deepEqual(parseMeminfo('MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     600 kB\n'), { total: 1000 * 1024, used: 400 * 1024 });
  assert.deepEqual(parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n'), { total: 1000 * 1024, used: 600 * 1024 });
  assert.deepEqual(parseMeminfo(''), { total: 0, used: 0 });
});

test('the real host files parse to sane numbers', async () => {
  const { promises: fs } = await import('node:fs');
  const cpu = parseProcStat(await fs.readFile('/proc/stat', 'utf8'));
  assert.ok(cpu.total > 0 && cpu.busy > 0 && cpu.busy < cpu.total);
  const mem = parseMeminfo(await fs.readFile('/proc/meminfo', 'utf8'));
  assert.ok(mem.total > 0 && mem.used > 0 && mem.used < mem.total);
});
