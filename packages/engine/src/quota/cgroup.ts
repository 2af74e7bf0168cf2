/**
 * A cgroup per child, under a root named after the daemon's home (forkd-<12 hex>) so daemons and
 * test runs never share one. cgroup v2 where the host has the unified hierarchy with controllers,
 * v1 (one hierarchy per controller, as on this project's machines) otherwise; detected once.
 * QEMU joins its cgroups before it runs any guest code: the launch wrapper (qemu/start.ts) writes
 * its own pid into each cgroup.procs and then execs. Fail closed: a limit that cannot be written
 * is FORKD_E_QUOTA_UNAVAILABLE, and whatever was created is removed.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import { type ChildQuotas, controllersFor } from './quotas.js';

export type Controller = 'memory' | 'cpu' | 'pids' | 'io';
const ALL: Controller[] = ['memory', 'cpu', 'pids', 'io'];
/** v1 directory and a file that proves the controller is mounted there. */
const V1: Record<Controller, { dir: string; probe: string }> = {
  memory: { dir: 'memory', probe: 'memory.limit_in_bytes' },
  cpu: { dir: 'cpu', probe: 'cpu.cfs_quota_us' },
  pids: { dir: 'pids', probe: 'cgroup.procs' },
  io: { dir: 'blkio', probe: 'blkio.throttle.io_service_bytes' },
};

export interface CgroupHost {
  version: 1 | 2 | null;
  /** The mount the hierarchy was found under (default /sys/fs/cgroup). */
  base: string;
  /** Controllers usable for per-child limits. */
  controllers: Controller[];
  /** Why some or all controllers are missing. */
  note: string;
}

const exists = (p: string) => fs.access(p).then(() => true, () => false);

/** Which cgroup hierarchy this host has, and which controllers it offers. */
export async function detectCgroups(base = '/sys/fs/cgroup'): Promise<CgroupHost> {
  const unified = await fs.readFile(path.join(base, 'cgroup.controllers'), 'utf8').catch(() => null);
  if (unified !== null && unified.trim() !== '') {
    const have = new Set(unified.trim().split(/\s+/));
    const controllers = ALL.filter((c) => have.has(c));
    return { version: 2, base, controllers, note: controllers.length === ALL.length ? '' : `missing in ${base}/cgroup.controllers: ${ALL.filter((c) => !have.has(c)).join(', ')}` };
  }
  const controllers: Controller[] = [];
  for (const c of ALL) if (await exists(path.join(base, V1[c].dir, V1[c].probe))) controllers.push(c);
  if (controllers.length > 0) return { version: 1, base, controllers, note: controllers.length === ALL.length ? '' : `v1 controllers not mounted under ${base}: ${ALL.filter((c) => !controllers.includes(c)).map((c) => V1[c].dir).join(', ')}` };
  return { version: null, base, controllers: [], note: `no cgroup controllers found under ${base}` };
}

/** The daemon's own root cgroup name: one per forkd home. */
export function cgroupRootName(home: string): string {
  return `forkd-${crypto.createHash('sha256').update(path.resolve(home)).digest('hex').slice(0, 12)}`;
}

function unavailable(what: string, why: string, details: Record<string, unknown> = {}): ForkdError {
  return new ForkdError('FORKD_E_QUOTA_UNAVAILABLE', `cannot apply ${what}: ${why}`, details);
}

async function write(file: string, value: string, what: string): Promise<void> {
  try {
    await fs.writeFile(file, value);
  } catch (e) {
    throw unavailable(what, `writing ${JSON.stringify(value)} to ${file} failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file });
  }
}

/** major:minor of the whole block device holding dir (throttles apply to disks, not partitions). */
export async function blockDeviceOf(dir: string): Promise<string> {
  const st = await fs.stat(dir, { bigint: true });
  const dev = st.dev;
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  const sys = `/sys/dev/block/${major}:${minor}`;
  if (major === 0 || !(await exists(sys))) throw unavailable('an I/O bandwidth limit', `${dir} is not on a block device (device ${major}:${minor}), so it cannot be throttled`, { dir });
  if (await exists(path.join(sys, 'partition'))) {
    const whole = (await fs.readFile(path.join(await fs.realpath(sys), '..', 'dev'), 'utf8')).trim();
    return whole;
  }
  return `${major}:${minor}`;
}

/** A child's cgroup(s): one dir in v2, one per controller in v1. */
export class ChildCgroup {
  constructor(readonly dirs: string[]) {}

  /** The files QEMU's launch wrapper writes its pid into. */
  get procsFiles(): string[] {
    return this.dirs.map((d) => path.join(d, 'cgroup.procs'));
  }

  private async firstFile(names: string[]): Promise<string | null> {
    for (const d of this.dirs) for (const n of names) if (await exists(path.join(d, n))) return path.join(d, n);
    return null;
  }

  /** How many processes the kernel killed for this cgroup's memory limit (v2 memory.events, v1 memory.oom_control). */
  async oomKills(): Promise<number> {
    const f = await this.firstFile(['memory.events', 'memory.oom_control']);
    if (!f) return 0;
    const m = /^oom_kill (\d+)$/m.exec(await fs.readFile(f, 'utf8').catch(() => ''));
    return m ? Number(m[1]) : 0;
  }

  /** Memory charged to the child now (bytes), or null without a memory cgroup. */
  async memoryBytes(): Promise<number | null> {
    const f = await this.firstFile(['memory.current', 'memory.usage_in_bytes']);
    if (!f) return null;
    return Number((await fs.readFile(f, 'utf8')).trim());
  }

  /** Removes the cgroups (they must be empty: QEMU has exited). Idempotent. */
  async remove(): Promise<void> {
    await removeCgroupDirs(this.dirs);
  }
}

/** rmdir each cgroup, retrying briefly while the kernel finishes detaching an exited process. */
export async function removeCgroupDirs(dirs: string[]): Promise<void> {
  await Promise.all(dirs.map(async (d) => {
    for (let i = 0; ; i++) {
      try {
        await fs.rmdir(d);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (code !== 'EBUSY' || i >= 50) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }));
}

export interface CreateChildCgroupOptions {
  host: CgroupHost;
  /** forkd-<hash>: see cgroupRootName. */
  rootName: string;
  /** vm-<16 hex>: the child's own cgroup name. */
  name: string;
  quotas: ChildQuotas;
  /** Directory of the child's disk overlay (its block device is what an I/O limit throttles). */
  diskDir: string;
}

/**
 * Creates the child's cgroup(s) with every requested limit written, or throws
 * FORKD_E_QUOTA_UNAVAILABLE having removed what it made. Returns null when no limit needs a cgroup.
 */
export async function createChildCgroup(o: CreateChildCgroupOptions): Promise<ChildCgroup | null> {
  const need = controllersFor(o.quotas);
  if (need.size === 0) return null;
  const missing = [...need].filter((c) => !o.host.controllers.includes(c));
  if (o.host.version === null || missing.length > 0) {
    throw unavailable(`the ${[...need].join(', ')} limit${need.size > 1 ? 's' : ''}`, `this host offers no ${missing.join(', ') || [...need].join(', ')} cgroup controller (${o.host.note || `cgroup ${o.host.version}`})`, { missing, cgroup_version: o.host.version });
  }
  const device = o.quotas.ioReadBps !== undefined || o.quotas.ioWriteBps !== undefined ? await blockDeviceOf(o.diskDir) : null;
  const made: string[] = [];
  try {
    if (o.host.version === 2) {
      const root = path.join(o.host.base, o.rootName);
      const enable = [...need].map((c) => `+${c}`).join(' ');
      // The hierarchy's root may have processes and still delegate; our root holds none.
      await write(path.join(o.host.base, 'cgroup.subtree_control'), enable, `controllers ${enable}`);
      await mkdir(root);
      await write(path.join(root, 'cgroup.subtree_control'), enable, `controllers ${enable}`);
      const dir = path.join(root, o.name);
      await mkdir(dir);
      made.push(dir);
      await writeV2(dir, o.quotas, device);
    } else {
      for (const c of need) {
        const dir = path.join(o.host.base, V1[c].dir, o.rootName, o.name);
        await mkdir(path.dirname(dir));
        await mkdir(dir);
        made.push(dir);
        await writeV1(c, dir, o.quotas, device);
      }
    }
    return new ChildCgroup(made);
  } catch (e) {
    await removeCgroupDirs(made).catch(() => undefined);
    throw e;
  }
}

async function mkdir(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw unavailable('a cgroup', `creating ${dir} failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { dir });
  }
}

const PERIOD_US = 100_000;
const MIB = 1024 * 1024;

async function writeV2(dir: string, q: ChildQuotas, device: string | null): Promise<void> {
  const f = (n: string) => path.join(dir, n);
  if (q.memoryMib !== undefined) {
    await write(f('memory.max'), String(q.memoryMib * MIB), `memory_limit_mib=${q.memoryMib}`);
    // Without this a child over its limit swaps instead of being killed (when the host has swap).
    if (await exists(f('memory.swap.max'))) await write(f('memory.swap.max'), '0', 'memory_limit_mib (no swap)');
  }
  if (q.cpuWeight !== undefined) await write(f('cpu.weight'), String(q.cpuWeight), `cpu_weight=${q.cpuWeight}`);
  if (q.cpuQuota !== undefined) await write(f('cpu.max'), `${Math.max(1000, Math.round(q.cpuQuota * PERIOD_US))} ${PERIOD_US}`, `cpu_quota=${q.cpuQuota}`);
  if (q.pidsMax !== undefined) await write(f('pids.max'), String(q.pidsMax), `pids_max=${q.pidsMax}`);
  if (device) {
    const parts = [q.ioReadBps !== undefined ? `rbps=${q.ioReadBps}` : '', q.ioWriteBps !== undefined ? `wbps=${q.ioWriteBps}` : ''].filter(Boolean).join(' ');
    await write(f('io.max'), `${device} ${parts}`, `io limits (${parts})`);
  }
}

async function writeV1(c: Controller, dir: string, q: ChildQuotas, device: string | null): Promise<void> {
  const f = (n: string) => path.join(dir, n);
  if (c === 'memory' && q.memoryMib !== undefined) {
    await write(f('memory.limit_in_bytes'), String(q.memoryMib * MIB), `memory_limit_mib=${q.memoryMib}`);
    if (await exists(f('memory.memsw.limit_in_bytes'))) await write(f('memory.memsw.limit_in_bytes'), String(q.memoryMib * MIB), 'memory_limit_mib (no swap)');
  }
  if (c === 'cpu') {
    // v2's weight 100 is v1's 1024 shares.
    if (q.cpuWeight !== undefined) await write(f('cpu.shares'), String(Math.max(2, Math.round((q.cpuWeight * 1024) / 100))), `cpu_weight=${q.cpuWeight}`);
    if (q.cpuQuota !== undefined) {
      await write(f('cpu.cfs_period_us'), String(PERIOD_US), `cpu_quota=${q.cpuQuota}`);
      await write(f('cpu.cfs_quota_us'), String(Math.max(1000, Math.round(q.cpuQuota * PERIOD_US))), `cpu_quota=${q.cpuQuota}`);
    }
  }
  if (c === 'pids' && q.pidsMax !== undefined) await write(f('pids.max'), String(q.pidsMax), `pids_max=${q.pidsMax}`);
  if (c === 'io' && device) {
    if (q.ioReadBps !== undefined) await write(f('blkio.throttle.read_bps_device'), `${device} ${q.ioReadBps}`, `io_read_bps=${q.ioReadBps}`);
    if (q.ioWriteBps !== undefined) await write(f('blkio.throttle.write_bps_device'), `${device} ${q.ioWriteBps}`, `io_write_bps=${q.ioWriteBps}`);
  }
}

/** The daemon's root cgroup directories: one in v2, one per controller hierarchy in v1. */
export function cgroupRootDirs(host: CgroupHost, rootName: string): string[] {
  return host.version === 2 ? [path.join(host.base, rootName)] : host.version === 1 ? ALL.map((c) => path.join(host.base, V1[c].dir, rootName)) : [];
}

/**
 * Removes the daemon's root cgroup(s) where empty (a daemon that stops leaves no empty directory in
 * the host's hierarchy). One still holding a child (a VM left to the keeper) stays: the keeper removes
 * it when it ends its last VM. Only called when no spawn can race it (the daemon is stopping).
 */
export async function removeCgroupRoot(host: CgroupHost, rootName: string): Promise<string[]> {
  const removed: string[] = [];
  for (const d of cgroupRootDirs(host, rootName)) if (await rmdirIfEmpty(d)) removed.push(d);
  return removed;
}

/** rmdir of a cgroup that may hold children or not exist: true when it was removed. */
export async function rmdirIfEmpty(dir: string): Promise<boolean> {
  try {
    await fs.rmdir(dir);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EBUSY' || code === 'ENOTEMPTY') return false;
    throw e;
  }
}

/**
 * Removes the empty per-child cgroups under this daemon's root whose VM is gone (a daemon and its
 * keeper both killed): names are vm-<id>, and `alive(id)` says whether that VM's run dir still exists.
 */
export async function sweepCgroups(host: CgroupHost, rootName: string, alive: (vmName: string) => Promise<boolean>): Promise<string[]> {
  const roots = cgroupRootDirs(host, rootName);
  const removed: string[] = [];
  for (const root of roots) {
    const names = await fs.readdir(root).catch(() => [] as string[]);
    for (const n of names) {
      if (!/^vm-[0-9a-f]{16}$/.test(n) || (await alive(n))) continue;
      const d = path.join(root, n);
      if ((await fs.stat(d).catch(() => null))?.isDirectory()) {
        await removeCgroupDirs([d]).then(() => removed.push(d), () => undefined);
      }
    }
  }
  return removed;
}
