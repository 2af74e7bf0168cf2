import { promises as fs } from 'node:fs';
import path from 'node:path';
import { socketAnswers } from '../util/unix-socket.js';
import { stagingOwnerFromName } from '../util/staging.js';
import { OWNER_FILE, VM_DIR_PREFIX, readOwner, removeVmDir, runtimeDir } from './dir.js';
import { CLK_TCK, bootTimeSec, listPids, procCmdline, procStartTime, sameProcessAlive } from './proc.js';

export interface CleanupOptions {
  dryRun?: boolean;
  /** Default runtimeDir(). */
  runDir?: string;
  /** Also remove abandoned snapshot staging dirs (".staging-*" whose owner, in owner.json or the name, is dead). */
  snapshotsDir?: string;
  /** More directories to collect abandoned ".staging-*" dirs from (images, rootfs cache). */
  stagingDirs?: string[];
  /** A vm dir without a readable owner.json is left alone until it is this old. Default 60 s. */
  graceMs?: number;
  /**
   * Only the run dir's VM dirs whose owner is dead (and their QEMU): no scan of every process for
   * orphans, no keeper files, no staging. Cheap enough to run at the start of every command.
   */
  deadOwnersOnly?: boolean;
}

export interface CleanupReport {
  killed: Array<{ pid: number; dir: string; reason: string }>;
  removed: string[];
  /** VM dirs whose owner is alive (left alone). */
  kept: string[];
}

const STALE_TMP = /^\.vm-[0-9a-f]{16}\.tmp$/;
const VM_DIR = /^vm-[0-9a-f]{16}$/;

function isQemu(argv: string[]): boolean {
  return /^qemu-system-/.test(path.basename(argv[0] ?? ''));
}

async function ageMs(p: string): Promise<number> {
  try {
    return Date.now() - (await fs.stat(p)).mtimeMs;
  } catch {
    return 0;
  }
}

async function killAndWait(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    const alive = await Promise.all(pids.map(async (p) => (await procCmdline(p)) !== null));
    if (!alive.some(Boolean)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Removes what dead forkd processes left behind: for each VM dir whose owner is gone (pid dead,
 * or reused: start time differs), kills its QEMU (only if that pid's cmdline still names the
 * dir) and deletes the dir with its sockets, overlays and memory files. Then kills orphan QEMU
 * processes whose cmdline names a VM dir that no longer exists or whose owner is dead.
 */
export async function cleanupStale(opts: CleanupOptions = {}): Promise<CleanupReport> {
  const dryRun = opts.dryRun ?? false;
  const grace = opts.graceMs ?? 60_000;
  const run = path.resolve(opts.runDir ?? runtimeDir());
  const report: CleanupReport = { killed: [], removed: [], kept: [] };
  const toKill = new Map<number, { dir: string; reason: string }>();
  const staleDirs: string[] = [];
  const liveDirs = new Set<string>();

  let names: string[] = [];
  try {
    names = await fs.readdir(run);
  } catch {
    // no run dir: only orphans to look for
  }
  for (const name of names) {
    const dir = path.join(run, name);
    if (STALE_TMP.test(name)) {
      if ((await ageMs(dir)) > grace) staleDirs.push(dir);
      continue;
    }
    if (!VM_DIR.test(name)) continue;
    const owner = await readOwner(dir);
    if (!owner) {
      if ((await ageMs(dir)) > grace) staleDirs.push(dir);
      else liveDirs.add(dir);
      continue;
    }
    if (owner.owner_pid === process.pid || (await sameProcessAlive(owner.owner_pid, owner.owner_starttime))) {
      liveDirs.add(dir);
      report.kept.push(dir);
      continue;
    }
    staleDirs.push(dir);
    if (owner.qemu_pid !== null) {
      const argv = await procCmdline(owner.qemu_pid);
      // PIDs get reused: kill only a process that still names this dir.
      if (argv && argv.some((a) => a.includes(dir))) toKill.set(owner.qemu_pid, { dir, reason: `owner ${owner.owner_pid} is gone` });
    }
  }

  // Orphans: QEMU processes naming <run>/vm-... dirs that are missing or stale.
  const prefix = `${run}/${VM_DIR_PREFIX}`;
  for (const pid of opts.deadOwnersOnly ? [] : await listPids()) {
    if (pid === process.pid || toKill.has(pid)) continue;
    const argv = await procCmdline(pid);
    if (!argv || !isQemu(argv)) continue;
    const ref = argv.find((a) => a.includes(prefix));
    if (!ref) continue;
    const m = new RegExp(`${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[0-9a-f]{16}`).exec(ref);
    if (!m) continue;
    const dir = m[0];
    if (liveDirs.has(dir)) continue;
    const missing = !names.includes(path.basename(dir));
    toKill.set(pid, { dir, reason: missing ? 'its run dir is gone' : 'its owner is gone' });
  }

  for (const [pid, { dir, reason }] of toKill) report.killed.push({ pid, dir, reason });
  if (!dryRun) await killAndWait([...toKill.keys()]);
  for (const dir of staleDirs) {
    report.removed.push(dir);
    if (!dryRun) await removeVmDir(dir);
  }
  if (opts.deadOwnersOnly) return report;
  for (const f of await deadKeeperFiles(run, names)) {
    report.removed.push(f);
    if (!dryRun) await fs.rm(f, { force: true });
  }
  for (const stagingRoot of [...(opts.snapshotsDir ? [opts.snapshotsDir] : []), ...(opts.stagingDirs ?? [])]) {
    for (const dir of await staleStaging(stagingRoot)) {
      report.removed.push(dir);
      if (!dryRun) await fs.rm(dir, { recursive: true, force: true });
    }
  }
  return report;
}

/** Sockets of keepers that no longer listen (killed), and their logs. */
async function deadKeeperFiles(run: string, names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const n of names) {
    const m = /^keeper-([0-9a-f]{12})\.sock$/.exec(n);
    if (!m) continue;
    const sock = path.join(run, n);
    if (await socketAnswers(sock)) continue;
    out.push(sock);
    if (names.includes(`keeper-${m[1]}.log`)) out.push(path.join(run, `keeper-${m[1]}.log`));
  }
  return out;
}

/** Staging dirs whose owner ({pid, started: epoch ms}, from owner.json or the name) is a dead process. */
async function staleStaging(stagingRoot: string): Promise<string[]> {
  let names: string[] = [];
  try {
    names = (await fs.readdir(stagingRoot)).filter((n) => n.startsWith('.staging-'));
  } catch {
    return [];
  }
  const btime = await bootTimeSec();
  const out: string[] = [];
  for (const n of names) {
    const dir = path.join(stagingRoot, n);
    let owner: { pid?: unknown; started?: unknown };
    try {
      owner = JSON.parse(await fs.readFile(path.join(dir, OWNER_FILE), 'utf8')) as typeof owner;
    } catch {
      const named = stagingOwnerFromName(n);
      if (!named) continue; // no owner record: not ours to judge
      owner = named;
    }
    if (typeof owner.pid !== 'number' || typeof owner.started !== 'number') continue;
    const st = await procStartTime(owner.pid);
    // Alive only if that pid started before the staging dir was created (else it was reused).
    const startedMs = st === null ? null : btime * 1000 + (st * 1000) / CLK_TCK;
    if (startedMs === null || startedMs > owner.started + 2000) out.push(dir);
  }
  return out;
}
