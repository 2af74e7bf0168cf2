/**
 * BRANCH: capture a running sandbox (memory, vCPU and device state, disk) as a snapshot layer on
 * the snapshot it was restored from, while the source keeps running.
 *
 * QEMU 7.2 cannot save a private (share=off) RAM block without copying it into the migration
 * stream, so the capture goes through a receiver: a second QEMU started paused (-S) with its RAM
 * in a new shared file. The source migrates to it over a Unix socket (live: pre-copy while the
 * source runs, then a short stop for the last dirty pages; full: stopped for the whole copy), with
 * pause-before-switchover, so the disk overlay is copied at the very instant the vCPUs stopped,
 * flushed and consistent with memory. The source resumes (`cont`); the receiver, which never ran,
 * saves its device state with x-ignore-shared (the RAM file is the RAM). The new snapshot keeps
 * only the pages that differ from its parent; the whole image is kept in the memory cache.
 */
import { promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { ForkdError, assertValidTag, toForkdError } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import { Vm } from '../vm/vm.js';
import { commitStaging, freeSnapshotDir, inStaging } from '../util/staging.js';
import { overlayTemplate, createChildOverlay } from '../vm/overlay.js';
import { migrateThroughFd, saveDeviceState, waitForQmpStatus } from '../vm/migration.js';
import { sealForJail } from '../qemu/jail.js';
import { diskChainFiles } from './chain.js';
import type { QemuStarter } from '../qemu/start.js';
import type { QmpEvent } from '../qmp/client.js';
import { runTool } from '../qemu/tools.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { allocatedBytes, fsyncPath, sha256File } from '../util/fsx.js';
import { nowMs, since } from '../util/timing.js';
import { MANIFEST_VERSION, PAGE_SIZE, type SnapshotManifest } from './manifest.js';
import { readSnapshot, type SnapshotEntry } from './store.js';
import { assembledPath, memoryFileFor, writeLayer } from './memory.js';

export type BranchMode = 'full' | 'live';

export interface BranchOptions {
  tag: string;
  mode: BranchMode;
  /** What the manifest records as the origin (diff layers are branches of a throwaway child). */
  origin?: { kind: 'branch' | 'diff'; source: string };
  onProgress?: ProgressFn;
  starter?: QemuStarter;
  /** Live mode: the longest stop QEMU may plan for the final copy. */
  downtimeLimitMs?: number;
}

export interface BranchResult {
  snapshot: SnapshotEntry;
  /** How long the source's vCPUs were stopped (QEMU's STOP to RESUME events). */
  pauseMs: number;
  /** From the request to the source running again. */
  captureMs: number;
  totalMs: number;
}

/** What a capture needs of a running sandbox (sandbox/sandbox.ts's Sandbox is one). */
export interface BranchSource {
  readonly id: string;
  /** The snapshot it was restored from: the new layer's parent. */
  readonly tag: string;
  readonly alive: boolean;
  readonly vm: Vm;
}

/** One capture at a time per sandbox: QEMU runs one migration at a time. */
const busy = new WeakSet<Vm>();

export async function branchSandbox(layout: HomeLayout, sb: BranchSource, opts: BranchOptions): Promise<BranchResult> {
  const tag = assertValidTag(opts.tag);
  if (!sb.alive) throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', `sandbox ${sb.id} is not running`, { id: sb.id });
  const finalDir = await freeSnapshotDir(layout, tag);
  const parent = await readSnapshot(layout, sb.tag).catch((e: unknown) => {
    throw new ForkdError('FORKD_E_SNAPSHOT_NOT_FOUND', `sandbox ${sb.id} was restored from ${sb.tag}, which no longer exists: a branch is stored as a layer on it`, { tag: sb.tag, cause: toForkdError(e).message });
  });
  if (busy.has(sb.vm)) throw new ForkdError('FORKD_E_CONFLICT', `sandbox ${sb.id} is already being branched`, { id: sb.id });
  busy.add(sb.vm);
  const t0 = nowMs();
  try {
    return await inStaging(layout, tag, (staging) => captureLayer(layout, sb, parent, staging, finalDir, t0, opts));
  } finally {
    busy.delete(sb.vm);
  }
}

/** Captures sb into staging as a layer on parent and commits it; the receiver never outlives the call. */
async function captureLayer(layout: HomeLayout, sb: BranchSource, parent: SnapshotEntry, staging: string, finalDir: string, t0: number, opts: BranchOptions): Promise<BranchResult> {
  const onProgress = opts.onProgress ?? noProgress;
  const tag = opts.tag;
  let receiver: Vm | null = null;
  try {
    const m = parent.manifest;
    const template = await overlayTemplate(parent.dir);
    onProgress({ phase: 'branch', message: 'starting the receiver' });
    receiver = await Vm.start('branch', {
      accel: m.accel,
      vcpus: m.machine.vcpus,
      memMib: m.machine.mem_mib,
      memPath: path.join(staging, 'memory.bin'),
      memShare: true,
      incoming: true,
      startPaused: true,
      jailReadOnly: await diskChainFiles(layout, parent),
      consoleLog: false,
    }, {
      prepare: async (dir) => {
        // The receiver never runs the guest; its disk only has to exist for the device to load.
        await createChildOverlay(template, path.join(dir, 'disk.qcow2'));
        return { disk: { path: path.join(dir, 'disk.qcow2'), format: 'qcow2' } };
      },
      ...(opts.starter ? { starter: opts.starter } : {}),
    });
    const migSock = path.join(receiver.dir, 'migrate.sock');
    await receiver.qmp.execute('migrate-incoming', { uri: `unix:${migSock}` });
    onProgress({ phase: 'branch', message: `copying memory (${opts.mode})` });
    const { pauseMs, captureMs } = await captureSource(sb, migSock, path.join(staging, 'disk.qcow2'), opts);
    onProgress({ phase: 'branch', message: `source resumed after a ${pauseMs.toFixed(1)} ms pause; saving device state` });
    await waitForQmpStatus(receiver.qmp, { query: 'query-status', until: (s) => s === 'paused', timeoutMs: 60_000, what: 'the branch receiver' });
    await saveDeviceState(receiver, path.join(staging, 'vmstate'));
    await receiver.kill();
    receiver = null;

    onProgress({ phase: 'branch', message: 'storing the pages that changed' });
    // The disk layer's backing is the parent's, relative, so the store can move.
    await runTool('qemu-img', ['rebase', '-u', '-b', path.join('..', parent.tag, 'disk.qcow2'), '-F', 'qcow2', path.join(staging, 'disk.qcow2')]);
    const full = path.join(staging, 'memory.bin');
    const { changedPages } = await writeLayer(full, await memoryFileFor(layout, parent), path.join(staging, 'memory.layer'), path.join(staging, 'memory.pages'));
    for (const f of ['vmstate', 'disk.qcow2']) await fsyncPath(path.join(staging, f));
    await sealForJail(path.join(staging, 'vmstate'), 0o600);
    await sealForJail(path.join(staging, 'disk.qcow2'), 0o440);
    const vmstateSha = await sha256File(path.join(staging, 'vmstate'));
    const manifest: SnapshotManifest = {
      ...m,
      format_version: MANIFEST_VERSION,
      tag,
      created_at: new Date().toISOString(),
      origin: opts.origin ?? { kind: 'branch', source: sb.id },
      parent_tag: parent.tag,
      parent_vmstate_sha256: m.files.vmstate.sha256,
      files: {
        memory: { name: 'memory.layer', logical_bytes: m.machine.mem_mib * 1024 * 1024, physical_bytes: await allocatedBytes(path.join(staging, 'memory.layer')) },
        vmstate: { name: 'vmstate', bytes: (await fs.stat(path.join(staging, 'vmstate'))).size, sha256: vmstateSha },
        disk: { name: 'disk.qcow2', backing: path.join('..', parent.tag, 'disk.qcow2'), physical_bytes: await allocatedBytes(path.join(staging, 'disk.qcow2')) },
        pages: { name: 'memory.pages', changed_pages: changedPages, page_size: PAGE_SIZE },
      },
      timings: { pause_ms: pauseMs, capture_ms: captureMs, total_ms: since(t0) },
    };
    // The whole image becomes the assembled cache entry: children map it, no rebuild needed.
    const cached = assembledPath(layout, manifest);
    await fs.mkdir(path.dirname(cached), { recursive: true, mode: 0o700 });
    await fsyncPath(full);
    await sealForJail(full); // the receiver's QEMU owned it; children only read it
    await fs.rename(full, cached);
    await commitStaging(staging, finalDir, manifest).catch(async (e: unknown) => {
      await fs.rm(cached, { force: true });
      throw e;
    });
    onProgress({ phase: 'done', message: `branch ${tag}: ${changedPages} pages differ from ${parent.tag}`, fraction: 1 });
    return { snapshot: { tag, dir: finalDir, manifest }, pauseMs, captureMs, totalMs: since(t0) };
  } catch (e) {
    if (receiver) await receiver.kill();
    throw e;
  }
}

/**
 * Migrates the source to the receiver and copies its disk overlay while its vCPUs are stopped.
 * Whatever happens, the source is running again when this returns or throws.
 */
async function captureSource(sb: BranchSource, migSock: string, diskOut: string, opts: BranchOptions): Promise<{ pauseMs: number; captureMs: number }> {
  const qmp = sb.vm.qmp;
  const t0 = nowMs();
  let stopAt: number | null = null;
  let resumeAt: number | null = null;
  const qemuMs = (e: QmpEvent) => (e.timestamp ? e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000 : Date.now());
  const onEvent = (e: QmpEvent) => {
    if (e.event === 'STOP' && stopAt === null) stopAt = qemuMs(e);
    if (e.event === 'RESUME' && stopAt !== null) resumeAt = qemuMs(e);
  };
  qmp.on('event', onEvent);
  let stopped = false;
  try {
    // The child restored with x-ignore-shared; its RAM is private, so the stream must carry it.
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: false }, { capability: 'pause-before-switchover', state: true }] });
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 64 * 1024 * 1024 * 1024, 'downtime-limit': opts.downtimeLimitMs ?? 20 });
    if (opts.mode === 'full') {
      await qmp.execute('stop');
      stopped = true;
    }
    // The source's jail cannot see the receiver's socket: the stream is connected here and handed over.
    await migrateThroughFd(sb.vm.fdQmpSocket, { connect: migSock }, 'migrate', 'FORKD_E_SNAPSHOT_FAILED');
    stopped = true;
    await waitForQmpStatus(qmp, { query: 'query-migrate', until: (s) => s === 'pre-switchover', timeoutMs: 120_000, what: 'copying the source to the receiver', failure: 'FORKD_E_SNAPSHOT_FAILED' });
    // vCPUs stopped, disks flushed and still active: this overlay is the disk at the pause instant.
    await fs.copyFile(sb.vm.diskPath ?? path.join(sb.vm.dir, 'disk.qcow2'), diskOut, fsConstants.COPYFILE_EXCL);
    await qmp.execute('migrate-continue', { state: 'pre-switchover' });
    await waitForQmpStatus(qmp, { query: 'query-migrate', until: (s) => s === 'completed', timeoutMs: 60_000, what: 'completing the switchover', failure: 'FORKD_E_SNAPSHOT_FAILED' });
  } catch (e) {
    await qmp.execute('migrate_cancel').catch(() => undefined);
    throw e;
  } finally {
    if (stopped && sb.alive) {
      // Let the migration settle (completed, failed or cancelled) before resuming the source.
      const settled = (s: string) => s !== 'active' && s !== 'pre-switchover' && s !== 'device' && s !== 'cancelling';
      await waitForQmpStatus(qmp, { query: 'query-migrate', until: settled, timeoutMs: 10_000, what: 'the source migration settling' }).catch(() => undefined);
      await qmp.execute('cont').catch(() => undefined);
    }
    const deadline = Date.now() + 1000;
    while (resumeAt === null && stopAt !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    qmp.off('event', onEvent);
  }
  const captureMs = since(t0);
  const pauseMs = stopAt !== null && resumeAt !== null ? Math.round(((resumeAt as number) - (stopAt as number)) * 10) / 10 : captureMs;
  return { pauseMs, captureMs };
}
