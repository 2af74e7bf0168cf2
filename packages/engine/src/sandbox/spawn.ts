import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError, LIMITS, MACHINE_LIMITS, SANDBOX_ID_PATTERN, toForkdError } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import { readSnapshot, type SnapshotEntry } from '../snapshot/store.js';
import { machineSignature } from '../snapshot/machine.js';
import { qemuVersion } from '../qemu/version.js';
import { createChildOverlay, overlayTemplate } from '../vm/overlay.js';
import { quotePathForMigrationUri, waitForQmpStatus } from '../vm/migration.js';
import { memoryFileFor } from '../snapshot/memory.js';
import { ancestors } from '../snapshot/chain.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { Vm } from '../vm/vm.js';
import type { QemuStarter } from '../qemu/start.js';
import type { Platform } from '../platform.js';
import { Sandbox } from './sandbox.js';
import type { ChildNetworks, EgressPolicy, NetworkLease } from '../network/index.js';
import { nowMs, since } from '../util/timing.js';

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
  /** Each child gets its own way out (namespace, veth, unique address, NAT) under the egress policy. */
  network?: boolean;
  egress?: EgressPolicy;
  /**
   * The engine's children networks. Given, every child gets its own namespace (with `network`, a way
   * out; without, an isolated tap whose ports the host can still reach); absent, no backend at all.
   */
  networks?: ChildNetworks;
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
  const entry = await readSnapshot(layout, opts.tag);
  await checkRestorable(entry, platform, layout);
  const t0 = nowMs();
  if (opts.network && !opts.networks) throw new ForkdError('FORKD_E_NOT_IMPLEMENTED', 'sandbox networking is not configured in this process (it needs root)');
  const networks = opts.networks;
  const network = networks ? (vmId: string) => networks.create(vmId, { network: opts.network ?? false, policy: opts.egress }) : undefined;
  const template = await overlayTemplate(entry.dir);
  const memPath = await memoryFileFor(layout, entry);
  let ready = 0;
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      restoreOne(entry, memPath, template, t0, opts.readyTimeoutMs ?? 60_000, opts.starter, opts.ids?.[i]?.slice(3), network).then((sb) => {
        ready++;
        onProgress({ phase: 'spawn', message: `${ready}/${n} ready`, fraction: ready / n });
        return sb;
      }),
    ),
  );
  const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failed.length > 0) {
    await Promise.all(ok.map((sb) => sb.kill()));
    const first = toForkdError(failed[0], 'FORKD_E_RESTORE_FAILED');
    throw new ForkdError(first.code, `${failed.length} of ${n} children failed to start: ${first.message}`, { ...first.details, failed: failed.length, n });
  }
  return ok;
}

async function restoreOne(entry: SnapshotEntry, memPath: string, template: string, t0: number, readyTimeoutMs: number, starter?: QemuStarter, vmId?: string, network?: (vmId: string) => Promise<NetworkLease>): Promise<Sandbox> {
  const m = entry.manifest;
  const vm = await Vm.start('child', {
    accel: m.accel,
    vcpus: m.machine.vcpus,
    memMib: m.machine.mem_mib,
    memPath,
    memShare: false,
    incoming: true,
    ...(tbSize() ? { tcgTbSizeMib: tbSize() } : {}),
    consoleLog: process.env.FORKD_CHILD_CONSOLE === '1',
  }, {
    prepare: async (dir) => {
      const overlay = path.join(dir, 'disk.qcow2');
      await createChildOverlay(template, overlay);
      return { disk: { path: overlay, format: 'qcow2' } };
    },
    ...(starter ? { starter } : {}),
    ...(vmId ? { id: vmId } : {}),
    ...(network ? { network } : {}),
  });
  try {
    const launchMs = since(t0);
    // Connect the agent channel while the migration runs; the guest sees it after `cont`.
    const agentP = vm.connectAgent(readyTimeoutMs);
    agentP.catch(() => undefined);
    const tMig = nowMs();
    await vm.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
    await vm.qmp.execute('migrate-incoming', { uri: `exec:cat ${quotePathForMigrationUri(path.join(entry.dir, 'vmstate'))}` });
    const loaded = (s: string) => s === 'paused' || s === 'running' || s === 'postmigrate';
    await vm.guard(waitForQmpStatus(vm.qmp, { query: 'query-status', until: loaded, timeoutMs: readyTimeoutMs, what: 'restoring device state', failure: 'FORKD_E_RESTORE_FAILED' }), 'restoring device state');
    const migrateMs = since(tMig);
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
    return new Sandbox(vm, m.tag, {
      spawn_to_running_ms: running,
      spawn_to_ready_ms: since(t0),
      phases: { launch_ms: launchMs, migrate_ms: migrateMs, cont_ms: contMs, agent_wait_ms: agentWaitMs, restore_ms: since(tRestore) },
      clock_skew_ms: restored.skew_ms,
    }, m.language);
  } catch (e) {
    await vm.kill();
    throw e;
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
