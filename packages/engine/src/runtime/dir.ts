import { promises as fs, lstatSync, mkdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import os from 'node:os';
import { ForkdError } from '@forkd/protocol';
import { procStartTime } from './proc.js';

/** Unix socket paths are limited to 108 bytes including the NUL. */
const SUN_PATH_MAX = 107;
/** Longest file name we put in a VM directory (e.g. "agent.sock", "qmp.sock"). */
const LONGEST_LEAF = 'console.log.sock'.length;
export const VM_DIR_PREFIX = 'vm-';
export const OWNER_FILE = 'owner.json';

export interface OwnerRecord {
  kind: string;
  owner_pid: number;
  owner_starttime: number;
  qemu_pid: number | null;
  created_at: string;
  /** What the VM owns outside its run dir, removed with it: cgroup dirs, its disk overlay. */
  extras?: VmExtras;
}

export interface VmExtras {
  cgroups: string[];
  files: string[];
}

export interface VmDir {
  id: string;
  dir: string;
  kind: string;
  /** Records QEMU's pid in owner.json (cleanup kills it only if its cmdline names this dir). */
  setQemuPid(pid: number): Promise<void>;
  /** Records resources outside the run dir (before they are made) so every remover removes them too. */
  addExtras(extras: Partial<VmExtras>): Promise<void>;
  /** Removes the directory and everything in it. Idempotent. */
  remove(): Promise<void>;
}

/**
 * Where per-VM run directories live: $FORKD_RUN_DIR, else /run/forkd for root, else
 * $XDG_RUNTIME_DIR/forkd, else /tmp/forkd-<uid>. Kept short: sockets live below it.
 */
export function runtimeDir(): string {
  let dir: string;
  if (process.env.FORKD_RUN_DIR) dir = path.resolve(process.env.FORKD_RUN_DIR);
  else if (process.getuid?.() === 0) dir = '/run/forkd';
  else if (process.env.XDG_RUNTIME_DIR) dir = path.join(process.env.XDG_RUNTIME_DIR, 'forkd');
  else dir = path.join(os.tmpdir(), `forkd-${process.getuid?.() ?? 'user'}`);
  const longest = path.join(dir, `${VM_DIR_PREFIX}${'0'.repeat(16)}`, 'x'.repeat(LONGEST_LEAF));
  if (Buffer.byteLength(longest) > SUN_PATH_MAX) {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `run directory ${dir} is too long for Unix socket paths (${Buffer.byteLength(longest)} > ${SUN_PATH_MAX} bytes): set FORKD_RUN_DIR to a shorter path`, { run_dir: dir });
  }
  return dir;
}

/**
 * Judges the run dir before anything is put in it or trusted from it (sockets, the keeper's, VM
 * dirs): a directory, not a symlink, owned by this process's euid, mode 0700. Otherwise another
 * local user could have made it first (/tmp/forkd-<uid>) and would own every socket in it.
 */
function checkRunDir(dir: string, st: Stats): void {
  const euid = process.geteuid?.() ?? 0;
  const problem = st.isSymbolicLink() ? 'is a symlink' : !st.isDirectory() ? 'is not a directory' : st.uid !== euid ? `is owned by uid ${st.uid}, not ${euid}` : (st.mode & 0o777) !== 0o700 ? `has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, not 0700` : null;
  if (problem) throw new ForkdError('FORKD_E_RUN_DIR_UNSAFE', `run directory ${dir} ${problem}: refusing to use it (remove it, or set FORKD_RUN_DIR to a directory of your own with mode 0700)`, { run_dir: dir, uid: st.uid, mode: st.mode & 0o7777 });
}

/** Creates the run dir if missing (0700) and checks it (checkRunDir). Returns its path. */
export async function ensureRunDir(): Promise<string> {
  const run = runtimeDir();
  await fs.mkdir(run, { recursive: true, mode: 0o700 });
  checkRunDir(run, await fs.lstat(run));
  return run;
}

/** ensureRunDir for synchronous callers (starting the keeper). */
export function ensureRunDirSync(): string {
  const run = runtimeDir();
  mkdirSync(run, { recursive: true, mode: 0o700 });
  checkRunDir(run, lstatSync(run));
  return run;
}

let selfStart: number | null = null;
async function ownStartTime(): Promise<number> {
  selfStart ??= (await procStartTime(process.pid)) ?? 0;
  return selfStart;
}

/** Who owns a VM dir: the process QEMU dies with. Default: this process. */
export interface DirOwner {
  pid: number;
  starttime: number;
}

/**
 * Creates <run>/vm-<16 hex>/ with owner.json naming its owner (default this process). The directory is assembled
 * under a dot-name and renamed into place, so cleanup never sees a vm- dir without an owner.
 */
export async function createVmDir(kind: string, ownerOf?: DirOwner, wantedId?: string): Promise<VmDir> {
  const run = await ensureRunDir();
  if (wantedId !== undefined && !/^[0-9a-f]{16}$/.test(wantedId)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid VM id ${JSON.stringify(wantedId)}`);
  const id = wantedId ?? crypto.randomBytes(8).toString('hex');
  const dir = path.join(run, `${VM_DIR_PREFIX}${id}`);
  const tmp = path.join(run, `.${VM_DIR_PREFIX}${id}.tmp`);
  await fs.mkdir(tmp, { mode: 0o700 });
  const owner: OwnerRecord = { kind, owner_pid: ownerOf?.pid ?? process.pid, owner_starttime: ownerOf?.starttime ?? (await ownStartTime()), qemu_pid: null, created_at: new Date().toISOString() };
  try {
    await fs.writeFile(path.join(tmp, OWNER_FILE), JSON.stringify(owner), { flag: 'wx', mode: 0o600 });
    if (wantedId !== undefined && (await fs.stat(dir).then(() => true, () => false))) {
      throw new ForkdError('FORKD_E_CONFLICT', `a VM with id ${wantedId} is already running`, { id: wantedId });
    }
    await fs.rename(tmp, dir);
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return vmDirHandle(id, dir, kind, owner);
}

/** A handle on an existing VM dir (a VM adopted from a keeper after a restart). */
export async function openVmDir(dir: string): Promise<VmDir & { owner: OwnerRecord }> {
  const name = path.basename(dir);
  if (!new RegExp(`^${VM_DIR_PREFIX}[0-9a-f]{16}$`).test(name) || path.dirname(dir) !== runtimeDir()) {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `not a forkd VM directory: ${dir}`);
  }
  const owner = await readOwner(dir);
  if (!owner) throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', `VM directory ${dir} is gone or has no owner record`);
  return { ...vmDirHandle(name.slice(VM_DIR_PREFIX.length), dir, owner.kind, owner), owner };
}

function vmDirHandle(id: string, dir: string, kind: string, owner: OwnerRecord): VmDir {
  return {
    id,
    dir,
    kind,
    async setQemuPid(pid: number) {
      owner.qemu_pid = pid;
      await saveOwner(dir, owner);
    },
    async addExtras(extras: Partial<VmExtras>) {
      const cur = owner.extras ?? { cgroups: [], files: [] };
      owner.extras = { cgroups: [...cur.cgroups, ...(extras.cgroups ?? [])], files: [...cur.files, ...(extras.files ?? [])] };
      await saveOwner(dir, owner);
    },
    async remove() {
      await removeVmDir(dir);
    },
  };
}

async function saveOwner(dir: string, owner: OwnerRecord): Promise<void> {
  // tmp + rename (no fsync: the run dir does not outlive a reboot, and this is on the spawn path).
  const tmpFile = path.join(dir, `.${OWNER_FILE}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  await fs.writeFile(tmpFile, JSON.stringify(owner), { flag: 'wx', mode: 0o600 });
  await fs.rename(tmpFile, path.join(dir, OWNER_FILE));
}

/** Only what forkd itself records is removed: cgroup dirs named vm-<hex> under a forkd-<hex> root, overlay files. */
const EXTRA_CGROUP = /^\/[^\0]*\/forkd-[0-9a-f]{12}\/vm-[0-9a-f]{16}$/;
const EXTRA_FILE = /^\/[^\0]*\/vm-[0-9a-f]{16}\.qcow2$/;

/**
 * Removes a VM's run dir and what its owner.json says it owns elsewhere (its cgroups, which must be
 * empty by now, and its overlay on disk). Every remover (the VM's owner, the keeper, cleanup) uses it.
 * Returns the cgroup dirs it removed (the keeper removes their emptied root when it ends).
 */
export async function removeVmDir(dir: string): Promise<string[]> {
  const extras = (await readOwner(dir))?.extras;
  const cgroups = extras ? extras.cgroups.filter((c) => EXTRA_CGROUP.test(c) && !c.split('/').includes('..')) : [];
  if (extras) {
    await Promise.all(extras.files.filter((f) => EXTRA_FILE.test(f) && !f.split('/').includes('..')).map((f) => fs.rm(f, { force: true })));
    await Promise.all(cgroups.map(rmdirCgroup));
  }
  await fs.rm(dir, { recursive: true, force: true });
  return cgroups;
}

/**
 * rmdir of the forkd-<hex> roots above these VM cgroups, where now empty: for the keeper's last act
 * (no daemon is attached, so no spawn races it). One that still has a child stays.
 */
export async function removeEmptyCgroupRoots(vmCgroups: string[]): Promise<void> {
  const roots = new Set(vmCgroups.filter((c) => EXTRA_CGROUP.test(c) && !c.split('/').includes('..')).map((c) => path.dirname(c)));
  await Promise.all([...roots].map((r) => fs.rmdir(r).catch(() => undefined)));
}

/** rmdir, retrying briefly while the kernel detaches a process that has just exited. */
async function rmdirCgroup(d: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await fs.rmdir(d);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || i >= 50 || code !== 'EBUSY') return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export async function readOwner(dir: string): Promise<OwnerRecord | null> {
  try {
    const v = JSON.parse(await fs.readFile(path.join(dir, OWNER_FILE), 'utf8')) as Partial<OwnerRecord>;
    if (typeof v.owner_pid !== 'number' || typeof v.owner_starttime !== 'number') return null;
    return { kind: String(v.kind ?? ''), owner_pid: v.owner_pid, owner_starttime: v.owner_starttime, qemu_pid: typeof v.qemu_pid === 'number' ? v.qemu_pid : null, created_at: String(v.created_at ?? ''), ...(isExtras(v.extras) ? { extras: v.extras } : {}) };
  } catch {
    return null;
  }
}

function isExtras(v: unknown): v is VmExtras {
  const e = v as Partial<VmExtras> | undefined;
  return !!e && Array.isArray(e.cgroups) && Array.isArray(e.files) && [...e.cgroups, ...e.files].every((x) => typeof x === 'string');
}
