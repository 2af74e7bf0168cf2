import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError, LIMITS, MACHINE_LIMITS, SANDBOX_ID_PATTERN, toForkdError } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import { readSnapshot, type SnapshotEntry } from '../snapshot/store.js';
import { machineSignature } from '../snapshot/machine.js';
import { qemuVersion } from '../qemu/version.js';
import { createChildOverlay, overlayTemplate } from '../vm/overlay.js';
import { migrateThroughFd, waitForQmpStatus } from '../vm/migration.js';
import { memoryFileFor } from '../snapshot/memory.js';
import { ancestors, diskChainFiles } from '../snapshot/chain.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { Vm } from '../vm/vm.js';
import type { QemuStarter } from '../qemu/start.js';
import type { Platform } from '../platform.js';
import { Sandbox } from './sandbox.js';
import type { ChildNetworks, NetworkLease } from '../network/index.js';
import type { EgressRequest, VaryValuesT } from '@forkd/protocol';
import { nowMs, since } from '../util/timing.js';
import { checkQuotas, hasQuotas, type ChildQuotas } from '../quota/quotas.js';
import { createChildCgroup, type CgroupHost } from '../quota/cgroup.js';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { Limiter } from '../util/limiter.js';
import type { AgentClient } from '../agent-client/index.js';
import { poolNice, reniceProcess, type PooledChild, type WarmPool } from './warm-pool.js';

export interface SpawnOptions {
  tag: string;
  n?: number;
  /** Per-child budget from starting QEMU to the agent's answer. */
  readyTimeoutMs?: number;
  onProgress?: ProgressFn;
  /** Who starts the QEMU processes (default: this process, under pdeathsig). */
  starter?: QemuStarter;
  /** Sandbox ids to give the children (sb-<16 hex>, one per child): a resumed workspace keeps its id. */
  ids?: string[];
  /** Per-child limits; each one is applied or the spawn fails (FORKD_E_QUOTA_UNAVAILABLE). */
  quotas?: ChildQuotas;
  /** Where children's cgroups go (the engine fills it in). */
  cgroups?: { host: () => Promise<CgroupHost>; rootName: string };
  /** Each child gets its own way out (namespace, veth, unique address, NAT) under the egress policy. */
  network?: boolean;
  /** The child's egress request (the daemon's default applies to what it leaves out). */
  egress?: EgressRequest;
  /**
   * The engine's children networks. Given, every child gets its own namespace (with `network`, a way
   * out; without, an isolated tap whose ports the host can still reach); absent, no backend at all.
   */
  networks?: ChildNetworks;
  /** Warm pool to take default-settings children from (sandbox/warm-pool.ts). */
  pool?: WarmPool;
  /**
   * Fork with variations: child i gets variants[i] (its values and seed; for a guest's fork the
   * request its waiting caller made) through the agent's `vary`, after its restore and before it
   * counts as ready. Length n.
   */
  variants?: ChildVariant[];
}

/** One fork child's values and seed; guestForkRequestId: the guest's forkd.fork() this child answers; watchGuestForks: its host will watch it for guest forks. */
export interface ChildVariant {
  values: VaryValuesT;
  seed: number;
  guestForkRequestId?: string;
  watchGuestForks?: boolean;
}

export interface ChildPlan {
  quotas: ChildQuotas | null;
  cgroups: { host: CgroupHost; rootName: string } | null;
  overlaysDir: string;
}

/** Checks that this host can restore the snapshot exactly as it was saved, and that its chain is whole. */
export async function checkRestorable(entry: SnapshotEntry, platform: Platform, layout?: HomeLayout): Promise<void> {
  const m = entry.manifest;
  if (layout && m.parent_tag !== null) await ancestors(layout, entry);
  const version = await qemuVersion();
  if (m.qemu.version !== version) {
    throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot ${m.tag} was made by QEMU ${m.qemu.version}; this host has ${version} (microvm state does not migrate across versions: recreate it)`, { tag: m.tag, snapshot_qemu: m.qemu.version, host_qemu: version });
  }
  const env = await platform.resolve();
  if (m.accel !== env.accel) {
    throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot ${m.tag} was made under ${m.accel}; this host runs ${env.accel} (${env.accelReason}): recreate it here`, { tag: m.tag, snapshot_accel: m.accel, host_accel: env.accel });
  }
  if (m.machine.signature !== machineSignature(m.accel, m.machine.mem_mib, m.machine.vcpus)) {
    throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot ${m.tag} was made with another machine layout (older forkd?): recreate it`, { tag: m.tag });
  }
}

/**
 * Restores n children from a snapshot at once. Each maps the memory file private (pages shared
 * until written), gets its own disk overlay and agent channel, and counts as ready only when its
 * agent has answered after the clock and RNG were reset. All or nothing: if one child fails,
 * every child of the call is killed and the first error is raised.
 */
export async function spawnChildren(layout: HomeLayout, platform: Platform, opts: SpawnOptions): Promise<Sandbox[]> {
  const n = opts.n ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MACHINE_LIMITS.spawnMax) {
    throw new ForkdError('FORKD_E_OUT_OF_RANGE', `n must be an integer from 1 to ${MACHINE_LIMITS.spawnMax}; got ${n}`, { n, min: 1, max: MACHINE_LIMITS.spawnMax });
  }
  const onProgress = opts.onProgress ?? noProgress;
  if (opts.ids !== undefined && (opts.ids.length !== n || opts.ids.some((i) => !SANDBOX_ID_PATTERN.test(i)))) {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `ids must be ${n} sandbox ids (sb-<16 hex>)`);
  }
  if (opts.variants !== undefined && opts.variants.length !== n) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `variants must be ${n} (one per child)`);
  const quotas = hasQuotas(opts.quotas) ? checkQuotas(opts.quotas) : null;
  const host = quotas && opts.cgroups ? await opts.cgroups.host() : null;
  const plan: ChildPlan = { quotas, cgroups: host && opts.cgroups ? { host, rootName: opts.cgroups.rootName } : null, overlaysDir: layout.overlays };
  const entry = await readSnapshot(layout, opts.tag);
  await checkRestorable(entry, platform, layout);
  await fs.mkdir(layout.overlays, { recursive: true, mode: 0o700 });
  const t0 = nowMs();
  if (opts.network && !opts.networks) throw new ForkdError('FORKD_E_NOT_IMPLEMENTED', 'sandbox networking is not configured in this process (it needs root)');
  const networks = opts.networks;
  const network = networks ? (vmId: string, tapOwner?: number) => networks.create(vmId, { network: opts.network ?? false, ...(opts.egress ? { egress: opts.egress } : {}), ...(tapOwner !== undefined ? { tapOwner } : {}) }) : undefined;
  const template = await overlayTemplate(entry.dir);
  const memPath = await memoryFileFor(layout, entry);
  const backing = await diskChainFiles(layout, entry);
  // Only default-settings children come from the pool: limits, a way out and fixed ids are decided at QEMU start.
  const poolable = opts.pool && !quotas && !opts.network && !opts.egress && !opts.ids;
  const claim = poolable ? opts.pool!.begin(opts.tag, poolKey(entry), n) : opts.pool ? { taken: [], done: opts.pool.busy() } : null;
  const takes: PooledChild[] = claim?.taken ?? [];
  let ready = 0;
  try {
    const results = await Promise.allSettled(
      Array.from({ length: n }, (_, i) =>
        restoreOne({ plan, entry, memPath, template, backing, ...(opts.starter ? { starter: opts.starter } : {}), ...(opts.ids?.[i] ? { vmId: opts.ids[i]!.slice(3) } : {}), ...(network ? { network } : {}) }, t0, opts.readyTimeoutMs ?? 60_000, takes[i] ?? null, opts.variants ? { index: i, ...opts.variants[i]! } : null).then((sb) => {
          ready++;
          onProgress({ phase: 'spawn', message: `${ready}/${n} ready`, fraction: ready / n });
          return sb;
        }),
      ),
    );
    return await settle(results, n);
  } finally {
    claim?.done();
  }
}

async function settle(results: PromiseSettledResult<Sandbox>[], n: number): Promise<Sandbox[]> {
  const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failed.length > 0) {
    await Promise.all(ok.map((sb) => sb.kill()));
    const first = toForkdError(failed[0], 'FORKD_E_RESTORE_FAILED');
    throw new ForkdError(first.code, `${failed.length} of ${n} children failed to start: ${first.message}`, { ...first.details, failed: failed.length, n });
  }
  return ok;
}

/** How one child's QEMU is started: the plan's limits, the snapshot's files, who starts it, its id and network. */
export interface ChildLaunch {
  plan: ChildPlan;
  entry: SnapshotEntry;
  memPath: string;
  template: string;
  backing: string[];
  starter?: QemuStarter;
  vmId?: string;
  network?: (vmId: string, tapOwner?: number) => Promise<NetworkLease>;
  /** -S: the guest stays paused after its state is loaded (a pooled child waits for its taker's `cont`). */
  startPaused?: boolean;
  /** Launch niceness (a pooled child starts at low priority; its taker renices it). */
  nice?: number;
}

/** Starts a child's QEMU waiting for its incoming state (`-incoming defer`): run dir, overlay, cgroups, network. */
export async function launchChild(l: ChildLaunch): Promise<Vm> {
  const { plan, entry } = l;
  const m = entry.manifest;
  return Vm.start('child', {
    accel: m.accel,
    vcpus: m.machine.vcpus,
    memMib: m.machine.mem_mib,
    memPath: l.memPath,
    memShare: false,
    incoming: true,
    ...(l.startPaused ? { startPaused: true } : {}),
    jailReadOnly: l.backing,
    ...(tbSize() ? { tcgTbSizeMib: tbSize() } : {}),
    consoleLog: process.env.FORKD_CHILD_CONSOLE === '1',
  }, {
    prepare: async (_dir, vmDir) => {
      // On the home's disk, recorded in the run dir first so whoever removes the VM removes it too.
      const overlay = path.join(plan.overlaysDir, `vm-${vmDir.id}.qcow2`);
      await vmDir.addExtras({ files: [overlay] });
      await createChildOverlay(l.template, overlay);
      return { disk: { path: overlay, format: 'qcow2' } };
    },
    confine: async (vmDir) => {
      const q = plan.quotas;
      const nice = l.nice !== undefined ? { nice: l.nice } : {};
      if (!q) return { launch: nice };
      let cgroup = null;
      if (q.memoryMib !== undefined || q.cpuWeight !== undefined || q.cpuQuota !== undefined || q.pidsMax !== undefined || q.ioReadBps !== undefined || q.ioWriteBps !== undefined) {
        if (!plan.cgroups) throw new ForkdError('FORKD_E_QUOTA_UNAVAILABLE', 'cannot apply per-sandbox limits: no cgroup hierarchy is configured for this engine');
        const name = `vm-${vmDir.id}`;
        const { host, rootName } = plan.cgroups;
        const dirs = host.version === 2 ? [path.join(host.base, rootName, name)] : ['memory', 'cpu', 'pids', 'blkio'].map((c) => path.join(host.base, c, rootName, name));
        await vmDir.addExtras({ cgroups: dirs }); // before they exist: a crash now still leaves them findable
        cgroup = await createChildCgroup({ host, rootName, name, quotas: q, diskDir: plan.overlaysDir });
      }
      return { cgroup, launch: { ...nice, ...(cgroup ? { cgroupProcs: cgroup.procsFiles } : {}), ...(q.diskMib !== undefined ? { fileSizeBytes: q.diskMib * 1024 * 1024 } : {}) } };
    },
    ...(l.starter ? { starter: l.starter } : {}),
    ...(l.vmId ? { id: l.vmId } : {}),
    ...(l.network ? { network: l.network } : {}),
  });
}

/** Loads the snapshot's device state into a launched child (its RAM is the mapped memory file); the guest is then paused, or running without -S. */
export async function loadChildState(vm: Vm, entry: SnapshotEntry, timeoutMs: number): Promise<void> {
  await vm.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
  await migrateThroughFd(vm.fdQmpSocket, { read: path.join(entry.dir, 'vmstate') }, 'migrate-incoming', 'FORKD_E_RESTORE_FAILED');
  const loaded = (s: string) => s === 'paused' || s === 'running' || s === 'postmigrate';
  await vm.guard(waitForQmpStatus(vm.qmp, { query: 'query-status', until: loaded, timeoutMs, what: 'restoring device state', failure: 'FORKD_E_RESTORE_FAILED' }), 'restoring device state');
}

/** Runs a loaded child and waits for its agent to answer with the clock set and the RNG reseeded. */
async function resumeChild(vm: Vm, entry: SnapshotEntry, t0: number, readyTimeoutMs: number, agentP: Promise<AgentClient>, pre: { launchMs: number; migrateMs: number; fromPool?: boolean }, variant: IndexedVariant | null): Promise<Sandbox> {
  const m = entry.manifest;
  const tCont = nowMs();
  await vm.qmp.execute('cont');
  const contMs = since(tCont);
  const running = since(t0);
  const tAgent = nowMs();
  const agent = await agentP;
  const agentWaitMs = since(tAgent);
  const tRestore = nowMs();
  const restored = await vm.guard(
    agent.restore({ now_ms: Date.now(), entropy_b64: crypto.randomBytes(LIMITS.restoreEntropyBytes).toString('base64') }, { timeoutMs: readyTimeoutMs }),
    'waiting for the agent after restore',
  );
  // Before the child counts as ready: nothing (not even the guest caller of a guest fork) runs with the parent's values.
  const tVary = nowMs();
  if (variant) {
    await vm.guard(agent.vary({ index: variant.index, values: variant.values, seed: variant.seed, ...(variant.guestForkRequestId ? { guest_fork: { request_id: variant.guestForkRequestId } } : {}), ...(variant.watchGuestForks ? { watch_guest_forks: true } : {}) }, { timeoutMs: readyTimeoutMs }), 'giving the child its vary values');
  }
  const varyMs = since(tVary);
  const sb = new Sandbox(vm, m.tag, {
    spawn_to_running_ms: running,
    spawn_to_ready_ms: since(t0),
    phases: { launch_ms: pre.launchMs, migrate_ms: pre.migrateMs, cont_ms: contMs, agent_wait_ms: agentWaitMs, restore_ms: since(tRestore) },
    clock_skew_ms: restored.skew_ms,
    ...(pre.fromPool ? { from_pool: true } : {}),
  }, m.language, new Date(), m.envs ?? {});
  if (variant) sb.variant = { index: variant.index, values: variant.values, seed: variant.seed, vary_ms: varyMs };
  return sb;
}

type IndexedVariant = ChildVariant & { index: number };

async function failChild(vm: Vm, plan: ChildPlan, e: unknown): Promise<never> {
  await vm.kill();
  if ((await vm.endCause) === 'oom') {
    throw new ForkdError('FORKD_E_MEMORY_TOO_SMALL', `memory_limit_mib=${plan.quotas?.memoryMib} is too small for this child: QEMU was killed by its memory limit while restoring`, { memory_limit_mib: plan.quotas?.memoryMib });
  }
  throw e;
}

/**
 * Children being launched and loaded at once, across every spawn of this process: a batch of 100
 * started all at once only made each launch wait for CPU (the keeper's answers then took longer
 * than its 15 s timeout, and the whole batch failed); in turns they overlap with the guests'
 * resumes instead. Two per core: launches also wait on process and namespace set-up.
 */
const launches = new Limiter(Math.max(2, os.cpus().length * 2));

async function restoreOne(l: ChildLaunch, t0: number, readyTimeoutMs: number, pooled: PooledChild | null, variant: IndexedVariant | null): Promise<Sandbox> {
  if (pooled) {
    try {
      // Started and loaded ahead (paused): only the guest's own restore work remains.
      await pooled.claim();
      return await resumeChild(pooled.vm, l.entry, t0, readyTimeoutMs, pooled.agent, { launchMs: 0, migrateMs: 0, fromPool: true }, variant);
    } catch {
      // A pooled child that fails on take is discarded; this child starts the normal way instead.
      await pooled.vm.kill().catch(() => undefined);
    }
  }
  const loaded = await launches.run(async () => {
    const vm = await launchChild(l);
    try {
      const launchMs = since(t0);
      // Connect the agent channel while the migration runs; the guest sees it after `cont`.
      const agentP = vm.connectAgent(readyTimeoutMs);
      agentP.catch(() => undefined);
      const tMig = nowMs();
      await loadChildState(vm, l.entry, readyTimeoutMs);
      return { vm, agentP, launchMs, migrateMs: since(tMig) };
    } catch (e) {
      return failChild(vm, l.plan, e);
    }
  });
  try {
    return await resumeChild(loaded.vm, l.entry, t0, readyTimeoutMs, loaded.agentP, { launchMs: loaded.launchMs, migrateMs: loaded.migrateMs }, variant);
  } catch (e) {
    return failChild(loaded.vm, l.plan, e);
  }
}

/**
 * Children's TCG translation-cache cap (MiB). The cache is most of an idle child's private memory,
 * but a small cap thrashes it and slows every agent call, so by default QEMU's own size is kept
 * (figures: bench/README.md#child-translation-cache). FORKD_TCG_TB_SIZE sets a cap (MiB) for
 * memory-bound hosts.
 */
export const DEFAULT_CHILD_TB_MIB = 0;
function tbSize(): number {
  const raw = process.env.FORKD_TCG_TB_SIZE;
  const v = raw === undefined || raw === '' ? DEFAULT_CHILD_TB_MIB : Number(raw);
  return Number.isInteger(v) && v > 0 ? v : 0;
}

/** What identifies a snapshot's content for the pool: its manifest (machine, files, times) and where it lives. */
export function poolKey(entry: SnapshotEntry): string {
  return crypto.createHash('sha256').update(entry.dir).update('\0').update(JSON.stringify(entry.manifest)).digest('hex').slice(0, 32);
}

export interface PooledChildOptions {
  tag: string;
  starter?: QemuStarter;
  networks?: ChildNetworks;
  /** Budget for starting QEMU and loading its state. */
  timeoutMs?: number;
}

/**
 * Starts one child for the warm pool: the same launch as a default-settings spawn (no limits, an
 * isolated network namespace when the engine has networks), its state loaded and the guest held
 * paused (-S) with the agent channel connected. Started at low priority when it can be raised
 * back at take time.
 */
export async function startPooledChild(layout: HomeLayout, platform: Platform, o: PooledChildOptions): Promise<PooledChild> {
  const entry = await readSnapshot(layout, o.tag);
  await checkRestorable(entry, platform, layout);
  await fs.mkdir(layout.overlays, { recursive: true, mode: 0o700 });
  const networks = o.networks;
  const nice = poolNice();
  const vm = await launchChild({
    plan: { quotas: null, cgroups: null, overlaysDir: layout.overlays },
    entry,
    memPath: await memoryFileFor(layout, entry),
    template: await overlayTemplate(entry.dir),
    backing: await diskChainFiles(layout, entry),
    ...(o.starter ? { starter: o.starter } : {}),
    ...(networks ? { network: (vmId: string, tapOwner?: number) => networks.create(vmId, { network: false, ...(tapOwner !== undefined ? { tapOwner } : {}) }) } : {}),
    startPaused: true,
    ...(nice !== undefined ? { nice } : {}),
  });
  try {
    const timeoutMs = o.timeoutMs ?? 60_000;
    const agent = vm.connectAgent(timeoutMs);
    agent.catch(() => undefined);
    await loadChildState(vm, entry, timeoutMs);
    await vm.guard(agent, 'connecting the pooled child\'s agent channel');
    return {
      vm,
      tag: o.tag,
      key: poolKey(entry),
      agent,
      startedAt: Date.now(),
      claim: async () => {
        if (nice !== undefined) await reniceProcess(vm.pid, 0);
      },
    };
  } catch (e) {
    await vm.kill();
    throw e;
  }
}
