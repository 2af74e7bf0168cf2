import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ForkdError } from '@forkd/protocol';
import { createChildCgroup, detectCgroups, cgroupRootName, cgroupRootDirs, removeCgroupRoot, ChildCgroup, type CgroupHost } from './cgroup.js';
import { checkQuotas } from './quotas.js';
import { confinementPrefix } from '../qemu/start.js';

const code = (c: string) => (e: unknown) => e instanceof ForkdError && e.code === c;

async function fakeV2(): Promise<string> {
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-cg-v2-'));
  await fs.writeFile(path.join(base, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  await fs.writeFile(path.join(base, 'cgroup.subtree_control'), '');
  return base;
}

test('v2: limits are written in v2 units under forkd-<hash>/vm-<id>', async () => {
  const base = await fakeV2();
  const host = await detectCgroups(base);
  assert.equal(host.version, 2);
  assert.deepEqual(host.controllers, ['memory', 'cpu', 'pids', 'io']);
  const root = cgroupRootName('/some/home');
  assert.match(root, /^forkd-[0-9a-f]{12}$/);
  const cg = await createChildCgroup({ host, rootName: root, name: 'vm-0123456789abcdef', quotas: { memoryMib: 256, cpuQuota: 0.5, cpuWeight: 50, pidsMax: 64 }, diskDir: base });
  const dir = path.join(base, root, 'vm-0123456789abcdef');
  assert.deepEqual(cg?.dirs, [dir]);
  assert.equal(await fs.readFile(path.join(dir, 'memory.max'), 'utf8'), String(256 * 2 ** 20));
  assert.equal(await fs.readFile(path.join(dir, 'cpu.max'), 'utf8'), '50000 100000');
  assert.equal(await fs.readFile(path.join(dir, 'cpu.weight'), 'utf8'), '50');
  assert.equal(await fs.readFile(path.join(dir, 'pids.max'), 'utf8'), '64');
  assert.match(await fs.readFile(path.join(base, root, 'cgroup.subtree_control'), 'utf8'), /\+memory/);
  await fs.writeFile(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
  assert.equal(await new ChildCgroup([dir]).oomKills(), 1);
  await fs.rm(base, { recursive: true });
});

test('fail closed: a missing controller or an unwritable root is FORKD_E_QUOTA_UNAVAILABLE, and nothing is left', async () => {
  const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-cg-none-'));
  const none = await detectCgroups(empty);
  assert.equal(none.version, null);
  await assert.rejects(createChildCgroup({ host: none, rootName: 'forkd-000000000000', name: 'vm-0123456789abcdef', quotas: { memoryMib: 128 }, diskDir: empty }), code('FORKD_E_QUOTA_UNAVAILABLE'));
  // Only the pids controller: a memory limit cannot be had.
  const partial: CgroupHost = { version: 1, base: empty, controllers: ['pids'], note: 'only pids' };
  await assert.rejects(createChildCgroup({ host: partial, rootName: 'forkd-000000000000', name: 'vm-0123456789abcdef', quotas: { memoryMib: 128 }, diskDir: empty }), code('FORKD_E_QUOTA_UNAVAILABLE'));
  // A v1 hierarchy whose files refuse the write (a directory where the limit file should be).
  const v1: CgroupHost = { version: 1, base: empty, controllers: ['memory'], note: '' };
  const dir = path.join(empty, 'memory', 'forkd-000000000000', 'vm-0123456789abcdef');
  await fs.mkdir(path.join(dir, 'memory.limit_in_bytes'), { recursive: true });
  await assert.rejects(createChildCgroup({ host: v1, rootName: 'forkd-000000000000', name: 'vm-0123456789abcdef', quotas: { memoryMib: 128 }, diskDir: empty }), code('FORKD_E_QUOTA_UNAVAILABLE'));
  assert.equal(await createChildCgroup({ host: none, rootName: 'x', name: 'y', quotas: { diskMib: 64 }, diskDir: empty }), null, 'a disk cap needs no cgroup');
  await fs.rm(empty, { recursive: true });
});

test('the root cgroup is removed when empty (v1: in every controller), kept while it holds a child', async () => {
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-cg-v1-'));
  try {
    const host: CgroupHost = { version: 1, base, controllers: ['memory', 'cpu', 'pids', 'io'], note: '' };
    const root = cgroupRootName('/some/home');
    const dirs = cgroupRootDirs(host, root);
    assert.deepEqual(dirs.map((d) => path.relative(base, d)), ['memory', 'cpu', 'pids', 'blkio'].map((c) => `${c}/${root}`));
    for (const d of dirs) await fs.mkdir(d, { recursive: true });
    await fs.mkdir(path.join(dirs[0]!, 'vm-0123456789abcdef'));
    assert.deepEqual(await removeCgroupRoot(host, root), dirs.slice(1), 'removed the empty ones only');
    assert.ok(await fs.stat(dirs[0]!).then(() => true), 'a root holding a child stays');
    await fs.rmdir(path.join(dirs[0]!, 'vm-0123456789abcdef'));
    assert.deepEqual(await removeCgroupRoot(host, root), [dirs[0]]);
    assert.deepEqual(await removeCgroupRoot(host, root), [], 'idempotent');
    assert.deepEqual(await removeCgroupRoot({ ...host, version: null }, root), []);
  } finally {
    await fs.rm(base, { recursive: true, force: true });
  }
});

test('quota ranges are checked with the field named', () => {
  assert.throws(() => checkQuotas({ memoryMib: 8 }), (e) => code('FORKD_E_OUT_OF_RANGE')(e) && /memoryMib/.test((e as Error).message));
  assert.throws(() => checkQuotas({ cpuQuota: 0 }), code('FORKD_E_OUT_OF_RANGE'));
  assert.throws(() => checkQuotas({ pidsMax: 1.5 }), code('FORKD_E_OUT_OF_RANGE'));
  assert.deepEqual(checkQuotas({ cpuQuota: 0.25 }), { cpuQuota: 0.25 });
});

test('the launch prefix refuses paths that are not cgroup.procs files', () => {
  assert.deepEqual(confinementPrefix(undefined, null), []);
  assert.throws(() => confinementPrefix({ cgroupProcs: ['/etc/passwd'] }, null), code('FORKD_E_INVALID_ARGUMENT'));
  assert.throws(() => confinementPrefix({ cgroupProcs: ['/sys/fs/cgroup/../x/cgroup.procs'] }, null), code('FORKD_E_INVALID_ARGUMENT'));
  assert.throws(() => confinementPrefix({ fileSizeBytes: 1024 }, null), code('FORKD_E_QUOTA_UNAVAILABLE'));
});

/** Runs the real wrapper around a shell that reports its own cgroup and tries to write past the cap. */
async function runConfined(prefix: string[], script: string): Promise<{ out: string; code: number | null }> {
  const child = spawn(prefix[0]!, [...prefix.slice(1), '/bin/sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  return { out, code };
}

test('real host: the wrapper joins the cgroup before exec and caps file size (EFBIG, not a killed process)', { skip: process.getuid?.() !== 0 }, async (t) => {
  const host = await detectCgroups();
  if (!host.controllers.includes('pids')) return t.skip('no pids controller');
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-cg-real-'));
  const rootName = `forkd-${'t'.repeat(0)}${cgroupRootName(scratch).slice(6)}`;
  const cg = await createChildCgroup({ host, rootName, name: 'vm-00000000000000aa', quotas: { pidsMax: 16 }, diskDir: scratch });
  assert.ok(cg);
  try {
    const prefix = confinementPrefix({ cgroupProcs: cg.procsFiles, fileSizeBytes: 4096 }, '/usr/bin/prlimit');
    const r = await runConfined(prefix, `cat /proc/self/cgroup; head -c 10000 /dev/zero > ${scratch}/big; echo rc=$?; stat -c size=%s ${scratch}/big`);
    assert.match(r.out, new RegExp(`${rootName}/vm-00000000000000aa`), r.out);
    assert.match(r.out, /rc=1/);
    assert.match(r.out, /size=4096/);
    assert.equal(r.code, 0);
    const bad = await runConfined(confinementPrefix({ cgroupProcs: [path.join(scratch, 'nope', 'cgroup.procs')] }, null), 'echo ran');
    assert.equal(bad.code, 125);
    assert.match(bad.out, /forkd-confine: cannot join cgroup/);
    assert.doesNotMatch(bad.out, /ran/);
  } finally {
    await cg.remove();
    await fs.rmdir(path.dirname(cg.dirs[0]!)).catch(() => undefined);
    await fs.rm(scratch, { recursive: true, force: true });
  }
  assert.equal(await fs.access(cg.dirs[0]!).then(() => true, () => false), false);
});
