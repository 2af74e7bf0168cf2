/**
 * Per-sandbox limits with real VMs (issue 14 §5/§6): a memory hog ends with `oom` while its sibling
 * answers; a CPU hog is held to its quota (QEMU's CPU time from /proc); filling the disk past the
 * overlay cap is an I/O error in the guest, not a paused VM; a fork bomb inside a guest leaves the
 * host's task count of its QEMU under pids.max; a limit the host cannot apply fails the spawn.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Controller } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from '../testing/daemon.js';
import { raw } from '../testing/http.js';

let d: TestDaemon;
let c: Controller;
const MIB = 1024 * 1024;
const codeOf = (e: unknown) => (e as { code?: string }).code;

before(async () => {
  d = await startTestDaemon({ extraArgs: ['--max-memory-limit-mib', '4096', '--default-pids-max', '256'] });
  c = new Controller({ socketPath: d.socketPath });
});
after(async () => {
  await d?.stop();
});

/** The child's cgroup dirs, from QEMU's own /proc/<pid>/cgroup (v1: one line per hierarchy). */
async function cgroupOf(pid: number, controller: string): Promise<string> {
  const lines = (await fs.readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n');
  const line = lines.find((l) => l.split(':')[1]?.split(',').includes(controller)) ?? lines.find((l) => l.startsWith('0::'));
  assert.ok(line, `no ${controller} cgroup line for ${pid}`);
  const rel = line.split(':').slice(2).join(':');
  assert.match(rel, /\/forkd-[0-9a-f]{12}\/vm-[0-9a-f]{16}$/, `QEMU ${pid} is in ${rel}, not a forkd child cgroup`);
  return line.startsWith('0::') ? path.join('/sys/fs/cgroup', rel) : path.join('/sys/fs/cgroup', controller === 'blkio' ? 'blkio' : controller, rel);
}

/** QEMU's user+system CPU time in seconds (clock ticks at 100 Hz). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const exists = (p: string) => fs.access(p).then(() => true, () => false);

test('memory hog ends with oom (info, metrics); its sibling keeps answering; cgroups are removed', async () => {
  const [hog, sib] = await Promise.all([
    c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, memory_limit_mib: 320 }).then((l) => l[0]!),
    c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, memory_limit_mib: 320 }).then((l) => l[0]!),
  ]);
  assert.equal(hog.memory_limit_mib, 320);
  assert.equal(hog.limits.pids_max, 256, 'the daemon default applies');
  const memDir = await cgroupOf(hog.pid!, 'memory');
  const limitFile = (await exists(path.join(memDir, 'memory.max'))) ? 'memory.max' : 'memory.limit_in_bytes';
  assert.equal(Number((await fs.readFile(path.join(memDir, limitFile), 'utf8')).trim()), 320 * MIB);
  const usage = async () => Number((await fs.readFile(path.join(memDir, (await exists(path.join(memDir, 'memory.current'))) ? 'memory.current' : 'memory.usage_in_bytes'), 'utf8')).trim());
  process.stderr.write(`# idle child charged ${(await usage() / MIB).toFixed(1)} MiB to its memory cgroup\n`);

  // Written bytes (not calloc'd zeros): each page becomes a private copy in QEMU.
  const r = await c.exec(hog.id, { cmd: "python3 -c \"b = b'\\x01' * (400 * 2**20); import time; time.sleep(60)\"", timeout_secs: 120 }).then(() => 'returned', (e: unknown) => codeOf(e));
  assert.ok(r === 'FORKD_E_SANDBOX_NOT_RUNNING' || r === 'FORKD_E_AGENT_UNAVAILABLE' || r === 'returned', String(r));
  let info = await c.getSandbox(hog.id);
  for (let i = 0; i < 50 && info.end_reason === null; i++) {
    await new Promise((res) => setTimeout(res, 200));
    info = await c.getSandbox(hog.id);
  }
  assert.equal(info.end_reason, 'oom');
  assert.equal(info.status, 'killed');
  assert.equal((await c.exec(sib.id, { cmd: 'echo alive' })).stdout, 'alive\n');
  const metrics = await raw(d, { method: 'GET', path: '/metrics' });
  assert.match(metrics.text, /forkd_sandboxes_ended_total\{reason="oom"\} 1/);
  for (let i = 0; i < 50 && (await exists(memDir)); i++) await new Promise((res) => setTimeout(res, 100));
  assert.equal(await exists(memDir), false, 'the OOM-killed child\'s cgroup is removed');
  assert.ok(!(await c.listSandboxes()).some((s) => s.id === hog.id), 'an ended sandbox is not listed');
  await c.killSandbox(sib.id);
});

test('a CPU hog is held to its quota; a full overlay is an I/O error in the guest; the fork bomb stays inside', async () => {
  const [sb] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, cpu_quota: 0.25, disk_limit_mib: 64, pids_max: 64 });
  const [sib] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
  const pid = sb!.pid!;
  // CPU: a guest busy loop for ~6 s of wall time.
  const t0 = Date.now();
  const cpu0 = await cpuSeconds(pid);
  await c.exec(sb!.id, { cmd: 'timeout 6 sh -c "while :; do :; done"; true', timeout_secs: 60 });
  const wall = (Date.now() - t0) / 1000;
  const used = (await cpuSeconds(pid)) - cpu0;
  const cpuDir = await cgroupOf(pid, 'cpu');
  const throttled = /nr_throttled (\d+)/.exec(await fs.readFile(path.join(cpuDir, 'cpu.stat'), 'utf8'));
  process.stderr.write(`# cpu_quota 0.25: QEMU used ${used.toFixed(2)} s CPU in ${wall.toFixed(2)} s (${(used / wall).toFixed(2)} cores), nr_throttled ${throttled?.[1]}\n`);
  assert.ok(used / wall <= 0.3, `QEMU used ${(used / wall).toFixed(2)} cores under a 0.25 quota`);
  assert.ok(Number(throttled?.[1]) > 0, 'the CFS quota throttled it');

  // Disk: write past the 64 MiB overlay cap. Zeros, not /dev/urandom: under TCG and a 0.25 CPU quota
  // generating 200 MiB of random bytes took minutes on a loaded host (zeros still allocate qcow2 clusters).
  // The guest's page cache takes the writes; writeback then fails with EIO (the guest kernel logs it;
  // dd's own fsync does not always see it, as ext4 reports a writeback error once).
  const fill = await c.exec(sb!.id, { cmd: 'dd if=/dev/zero of=/root/fill bs=1M count=128 conv=fsync 2>&1 | tail -1; sync; echo eio=$(dmesg | grep -c "I/O error")', timeout_secs: 300 });
  process.stderr.write(`# disk fill: ${fill.stdout.trim().replaceAll('\n', ' | ')}\n`);
  assert.ok(/Input\/output error|No space left/i.test(fill.stdout) || Number(/eio=(\d+)/.exec(fill.stdout)?.[1]) > 0, fill.stdout);
  const status = await raw(d, { method: 'GET', path: `/v1/sandboxes/${sb!.id}` });
  assert.equal(status.status, 200);
  assert.equal((await c.exec(sb!.id, { cmd: 'echo still-here' })).stdout, 'still-here\n', 'the VM was not paused');
  const overlay = path.join(process.env.FORKD_HOME ?? path.join(os.homedir(), '.local/share/forkd'), 'overlays', `vm-${sb!.id.slice(3)}.qcow2`);
  const size = (await fs.stat(overlay)).size;
  assert.ok(size <= 64 * MIB, `overlay is ${size} bytes, over its 64 MiB cap`);
  assert.equal((await c.exec(sib!.id, { cmd: 'echo sib' })).stdout, 'sib\n');

  // Fork bomb inside the guest: guest processes are not host tasks; QEMU's tasks stay under pids.max.
  await c.exec(sb!.id, { cmd: 'timeout 5 sh -c "b() { b | b & }; b" >/dev/null 2>&1; true', timeout_secs: 20 }).catch(() => undefined);
  const pidsDir = await cgroupOf(pid, 'pids');
  const tasks = Number((await fs.readFile(path.join(pidsDir, 'pids.current'), 'utf8')).trim());
  assert.ok(tasks <= 64, `QEMU has ${tasks} tasks`);
  assert.equal((await c.exec(sib!.id, { cmd: 'echo sib' })).stdout, 'sib\n', 'the sibling answers');
  await c.killSandbox(sb!.id);
  await c.killSandbox(sib!.id);
  assert.equal(await exists(overlay), false, 'the overlay is removed with the sandbox');
  assert.equal(await exists(cpuDir), false, 'the cgroup is removed with the sandbox');
});

test('over the operator maximum is a 400; a host without the controller fails the spawn with FORKD_E_QUOTA_UNAVAILABLE', async () => {
  await assert.rejects(c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, memory_limit_mib: 8192 }), (e) => codeOf(e) === 'FORKD_E_OUT_OF_RANGE');
  const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'fdq-nocg-'));
  const d2 = await startTestDaemon({ extraArgs: ['--cgroup-root', empty] });
  try {
    const c2 = new Controller({ socketPath: d2.socketPath });
    await assert.rejects(c2.spawnSandboxes({ snapshot_tag: d2.tag, n: 1, memory_limit_mib: 512 }), (e) => codeOf(e) === 'FORKD_E_QUOTA_UNAVAILABLE' && (e as { status?: number }).status === 503);
    assert.deepEqual(await c2.listSandboxes(), [], 'no child runs without its limit');
    const [free] = await c2.spawnSandboxes({ snapshot_tag: d2.tag, n: 1, disk_limit_mib: 128 });
    assert.equal(free!.limits.disk_limit_mib, 128, 'a disk cap needs no cgroup');
    await c2.killSandbox(free!.id);
  } finally {
    await d2.stop();
    await fs.rm(empty, { recursive: true, force: true });
  }
});
