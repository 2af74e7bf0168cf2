import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePidStat, readHostStats } from './host-stats.js';

test('/proc/<pid>/stat: utime+stime and starttime, even with spaces and parentheses in comm', () => {
  // fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime prio nice threads itreal starttime
  const line = '4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 10 0 0 0 700 300 0 0 20 0 5 0 123456 1000000 2000';
  assert.deepEqual(parsePidStat(line), { cpuTicks: 1000, startTicks: 123456 });
});

test('readHostStats reads this process: CPU time, age, RSS, disk blocks of a file', async () => {
  const s = await readHostStats({ pid: process.pid, cgroupMemory: async () => 1234, diskPath: '/proc/self/exe', hostCpus: 2 });
  assert.ok(s.cpu_seconds > 0, `cpu ${s.cpu_seconds}`);
  assert.ok(s.age_seconds > 0 && s.age_seconds < 24 * 3600);
  assert.ok(s.rss_bytes > 1024 * 1024);
  assert.equal(s.cgroup_memory_bytes, 1234);
  assert.equal(s.host_cpus, 2);
  const none = await readHostStats({ pid: process.pid, cgroupMemory: async () => { throw new Error('no cgroup'); }, diskPath: null, hostCpus: 1 });
  assert.equal(none.cgroup_memory_bytes, null);
  assert.equal(none.disk_overlay_bytes, null);
  await assert.rejects(readHostStats({ pid: 2 ** 30, cgroupMemory: async () => null, diskPath: null, hostCpus: 1 }), /ENOENT/);
});
