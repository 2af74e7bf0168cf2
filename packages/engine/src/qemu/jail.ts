/**
 * The jail every QEMU runs in (issue 14 §4), and the one place its launch command is built.
 *
 * As root (the daemon's normal case) a QEMU gets:
 * - a mount view holding only its own files: forkd-jail (jail-helpers.ts) unshares a mount
 *   namespace whose root is a small tmpfs with /usr, the loader cache, a few devices, its run
 *   directory (writable) and the files of its snapshot chain (read-only binds), then pivots into it;
 * - its own uid, derived from its run directory (FORKD_JAIL_UID_BASE + 24 bits of a hash, no passwd
 *   entry; the next free one if a live VM has it: claimJailUid), and the group forkd-vm, which may read snapshot files (0640 root:forkd-vm), never write
 *   them: `setpriv --reuid --regid --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all`;
 * - QEMU's seccomp policy with spawn and elevation denied (SECCOMP_ARG), so migration streams are
 *   descriptors handed over QMP (vm/migration.ts), not `exec:` commands.
 * Not root: no uid change and no mount view are possible; QEMU still runs with no_new_privs and
 * seccomp. FORKD_JAIL=off turns the whole jail off (reported by `forkd doctor`).
 *
 * Launch wrappers compose in order (each execs the next, so the pid stays QEMU's): the mount view,
 * then setpriv (which also sets pdeathsig, after the uid change that would clear it), then QEMU.
 * Another wrapper (a cgroup placement, say) slots into `launchCommand`.
 */
import { promises as fs, constants as fsc, lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import type { VmSpec } from './args.js';
import { hostHelper } from './host-helpers.js';
import { JAIL_LAUNCHER, RO_RAM_SHIM } from './jail-helpers.js';
import { thpOffWrapper, ksmWanted } from './thp.js';
import { which } from './which.js';

/** QEMU's own seccomp filter: no exec, no set*id, no obsolete calls, no scheduler/resource changes. */
export const SECCOMP_ARG = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';
export const JAIL_GROUP = 'forkd-vm';
/** First uid of the per-VM range; 2^24 uids above it are used. */
export const DEFAULT_JAIL_UID_BASE = 1_500_000_000;
const UID_SPAN = 1 << 24;

export type JailMode = 'full' | 'seccomp' | 'off';

/** What one QEMU may see and who it runs as. Plain data: it crosses the keeper's socket. */
export interface JailSpec {
  mode: JailMode;
  uid?: number;
  gid?: number;
  /** Supplementary groups it keeps (the kvm group under KVM). */
  groups?: number[];
  /** The mount view's root (an empty dir inside the run dir, hidden again once pivoted). */
  root?: string;
  readOnly?: string[];
  writable?: string[];
  devices?: string[];
  /** A private RAM image QEMU must open read-only (RO_RAM_SHIM). */
  roRam?: string;
}

export function jailMode(): JailMode {
  const v = process.env.FORKD_JAIL;
  if (v === 'off') return 'off';
  if (v !== undefined && v !== '' && v !== 'on') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `FORKD_JAIL must be on or off; got ${JSON.stringify(v)}`);
  return process.getuid?.() === 0 ? 'full' : 'seccomp';
}

/** The uid a VM's QEMU runs as: a pure function of its run directory, so an adopted VM needs no record. */
export function jailUid(runDir: string): number {
  return jailUidBase() + (crypto.createHash('sha256').update(path.resolve(runDir)).digest().readUInt32BE(0) % UID_SPAN);
}

/**
 * The uid to claim: `preferred` unless a live VM already has it, then the next free one in the range
 * (wrapping). Two live VMs never share a uid; FORKD_E_JAIL_UNAVAILABLE if the range is exhausted.
 */
export function pickJailUid(preferred: number, inUse: ReadonlySet<number>, base = jailUidBase(), span = UID_SPAN): number {
  for (let i = 0; i < span && i <= inUse.size; i++) {
    const uid = base + ((preferred - base + i) % span);
    if (!inUse.has(uid)) return uid;
  }
  throw new ForkdError('FORKD_E_JAIL_UNAVAILABLE', `every jail uid from ${base} (${span}) is in use`, { base, span });
}

/**
 * uids of live jailed VMs: owners of the other VM run dirs beside this one (claimed, maybe not yet
 * started) and of running processes in the range (VMs of other run dirs or daemons).
 */
function jailUidsInUse(runDir: string, procDir: string): Set<number> {
  const base = jailUidBase();
  const used = new Set<number>();
  const add = (uid: number | undefined) => {
    if (uid !== undefined && uid >= base && uid < base + UID_SPAN) used.add(uid);
  };
  const list = (dir: string) => { try { return readdirSync(dir); } catch { return [] as string[]; } };
  // Synchronous on purpose: a few hundred lstat calls take ~1-2 ms so, ~20 ms as promises.
  const parent = path.dirname(runDir);
  const self = path.basename(runDir);
  for (const n of list(parent)) if (n !== self && /^\.?vm-/.test(n)) add(lstatSync(path.join(parent, n), { throwIfNoEntry: false })?.uid);
  // A process's euid is the owner of /proc/<pid> (QEMU is dumpable again after its exec as the jail uid).
  for (const n of list(procDir)) if (/^\d+$/.test(n)) add(lstatSync(path.join(procDir, n), { throwIfNoEntry: false })?.uid);
  return used;
}

let claiming: Promise<unknown> = Promise.resolve();

/**
 * Claims the uid a VM's QEMU runs as by owning its run dir with it (the run dir's owner is the
 * record: an adopted VM needs no other). jailUid(runDir) unless a live VM has that uid (24 bits of a
 * hash collide at a few thousand VMs), then the next free one. Claims in this process are serialized,
 * so two concurrent spawns cannot both take one uid; a run dir already owned by a jail uid keeps it.
 * A run dir that does not exist yet (a spec built ahead, in tests) claims nothing: its preferred uid.
 */
export function claimJailUid(runDir: string, opts: { procDir?: string } = {}): Promise<number> {
  const next = claiming.then(async () => {
    const base = jailUidBase();
    const st = await fs.lstat(runDir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    if (!st) return jailUid(runDir);
    if (st.uid >= base && st.uid < base + UID_SPAN) return st.uid;
    const uid = pickJailUid(jailUid(runDir), jailUidsInUse(runDir, opts.procDir ?? '/proc'), base);
    await fs.chown(runDir, uid, -1);
    return uid;
  });
  claiming = next.catch(() => undefined);
  return next;
}

/** The first uid of the range (FORKD_JAIL_UID_BASE, checked). */
export function jailUidBase(): number {
  const raw = process.env.FORKD_JAIL_UID_BASE;
  const base = raw ? Number(raw) : DEFAULT_JAIL_UID_BASE;
  if (!Number.isInteger(base) || base < 1000 || base + UID_SPAN > 0xfffffffe) {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `FORKD_JAIL_UID_BASE must be an integer from 1000 to ${0xfffffffe - UID_SPAN}; got ${raw}`);
  }
  return base;
}

/** The gid of a group in /etc/group, or null. */
export async function groupId(name: string): Promise<number | null> {
  const text = await fs.readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [n, , gid] = line.split(':');
    if (n === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}

/** The jail group's gid; FORKD_E_JAIL_UNAVAILABLE when it does not exist. */
export async function jailGid(): Promise<number> {
  const gid = await groupId(JAIL_GROUP);
  if (gid === null) throw new ForkdError('FORKD_E_JAIL_UNAVAILABLE', `group ${JAIL_GROUP} does not exist (QEMU runs as an unprivileged uid in it): run scripts/setup.sh or groupadd --system ${JAIL_GROUP}; FORKD_JAIL=off runs QEMU unjailed`, { group: JAIL_GROUP });
  return gid;
}

function inside(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The jail for a VM spec: what it reads (kernel, initrd, a child's RAM image, backing files the
 * caller lists in spec.jailReadOnly) and writes (its run dir; a parent's RAM file and disk).
 */
export async function jailFor(spec: VmSpec, runDir: string): Promise<JailSpec> {
  const mode = jailMode();
  if (mode !== 'full') return { mode };
  const readOnly = new Set<string>();
  const writable = new Set<string>();
  // Files in the run dir are in the view already; the writable ones are still listed, to be chowned.
  const add = (set: Set<string>, p: string | undefined) => {
    if (p && (set === writable || !inside(path.resolve(p), runDir))) set.add(path.resolve(p));
  };
  if (spec.kernel) {
    add(readOnly, spec.kernel.path);
    add(readOnly, spec.kernel.initrd);
  }
  let roRam: string | undefined;
  if (spec.memShare && spec.memPath) add(writable, spec.memPath);
  else if (!inside(path.resolve(spec.memPath), runDir)) {
    roRam = path.resolve(spec.memPath);
    add(readOnly, roRam);
  }
  if (spec.disk) add(spec.disk.readOnly ? readOnly : writable, spec.disk.path);
  for (const p of spec.jailReadOnly ?? []) add(readOnly, p);
  for (const p of writable) readOnly.delete(p);
  const groups: number[] = [];
  const devices = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom'];
  if (spec.tap !== undefined) devices.push('/dev/net/tun'); // QEMU opens its tap (owned by this uid) through it
  if (spec.accel === 'kvm') {
    devices.push('/dev/kvm');
    const kvm = await groupId('kvm');
    if (kvm !== null) groups.push(kvm);
  }
  return {
    mode,
    uid: await claimJailUid(runDir),
    gid: await jailGid(),
    groups,
    root: path.join(runDir, '.jail'),
    readOnly: [...readOnly],
    writable: [...writable],
    devices,
    ...(roRam ? { roRam } : {}),
  };
}

/**
 * Gives the VM's uid what it must write before QEMU starts: its run dir (0700) and the writable
 * files (0600; a parent's RAM file is created here, so QEMU never creates files outside its dir).
 */
export async function prepareJailFiles(jail: JailSpec, runDir: string): Promise<void> {
  if (jail.mode !== 'full') return;
  const { uid, gid } = jail as Required<JailSpec>;
  await fs.chown(runDir, uid, gid);
  await fs.chmod(runDir, 0o700);
  for (const f of jail.writable ?? []) {
    const fh = await fs.open(f, fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
    try {
      await fh.chown(uid, gid);
      await fh.chmod(0o600);
    } finally {
      await fh.close();
    }
  }
}

/**
 * A file QEMU wrote that becomes part of a snapshot: owned by the daemon, readable by the jail's
 * group (children read it through their read-only view), written by no VM again.
 */
export async function sealForJail(file: string, mode = 0o640): Promise<void> {
  const gid = jailMode() === 'full' ? await groupId(JAIL_GROUP) : null;
  const fh = await fs.open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    await fh.chown(process.getuid?.() ?? 0, gid ?? process.getgid?.() ?? 0);
    await fh.chmod(gid === null ? mode & 0o600 : mode);
  } finally {
    await fh.close();
  }
}

/** The jail's view of the host's system dirs: /usr bound with exec; merged-/usr links copied as links. */
async function systemView(): Promise<string[]> {
  const out = ['--prog', '/usr', '--ro', '/etc/ld.so.cache'];
  for (const d of ['/lib', '/lib64', '/bin', '/sbin']) {
    const st = await fs.lstat(d).catch(() => null);
    if (st?.isSymbolicLink()) out.push('--link', d);
    else if (st?.isDirectory()) out.push('--prog', d);
  }
  return out;
}

/** The argv that starts QEMU (program first): wrappers in order, then qemuPath and its args. */
export async function launchCommand(qemuPath: string, args: string[], cwd: string, jail: JailSpec | undefined): Promise<string[]> {
  const setpriv = await which('setpriv');
  if (!setpriv) throw new ForkdError('FORKD_E_TOOL_MISSING', 'setpriv not found (QEMU dies with its owner and drops privileges through it): apt-get install util-linux', { tool: 'setpriv' });
  const thpOff = await thpOffWrapper();
  const wrap = thpOff ? [thpOff, ...(ksmWanted() ? ['--ksm'] : [])] : [];
  if (!jail || jail.mode === 'off') return [setpriv, '--pdeathsig', 'KILL', '--', ...wrap, qemuPath, ...args];
  if (jail.mode === 'seccomp') return [setpriv, '--pdeathsig', 'KILL', '--no-new-privs', '--', ...wrap, qemuPath, ...args];
  const launcher = await hostHelper(JAIL_LAUNCHER);
  const view = ['--root', jail.root!, '--cwd', cwd, '--rw', cwd, ...(await systemView())];
  if (!inside(qemuPath, '/usr')) view.push('--prog', qemuPath);
  for (const d of jail.devices ?? []) if (await fs.access(d).then(() => true, () => false)) view.push('--dev', d);
  for (const p of jail.readOnly ?? []) view.push('--ro', p);
  for (const p of jail.writable ?? []) if (!inside(p, cwd)) view.push('--rw', p);
  if (jail.roRam) {
    const shim = await hostHelper(RO_RAM_SHIM);
    view.push('--prog', shim, '--env', `LD_PRELOAD=${shim}`, '--env', `FORKD_RO_RAM=${jail.roRam}`);
  }
  if (thpOff) view.push('--thp-off'); // the mount view does it: the THP wrapper is not in the view
  if (ksmWanted()) view.push('--ksm');
  const groups = jail.groups?.length ? ['--groups', jail.groups.join(',')] : ['--clear-groups'];
  const drop = [setpriv, '--pdeathsig', 'KILL', '--reuid', String(jail.uid), '--regid', String(jail.gid), ...groups, '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', '--'];
  return [launcher, ...view, '--', ...drop, qemuPath, ...args];
}
