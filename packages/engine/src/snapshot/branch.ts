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
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError, assertValidTag, toForkdError } from '@forkd/protocol';
import { type HomeLayout, snapshotDir } from '../home/paths.js';
import { vmOf, type Sandbox } from '../sandbox/sandbox.js';
import { Vm } from '../sandbox/vm.js';
import { createStaging } from '../util/staging.js';
import { overlayTemplate, createChildOverlay } from '../sandbox/overlay.js';
import type { QemuLauncher } from '../qemu/launcher.js';
import type { QmpEvent } from '../qmp/client.js';
import { runTool } from '../qemu/tools.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { allocatedBytes, exists, fsyncPath, sha256File, writeFileAtomic } from '../util/fsx.js';
import { nowMs, since } from '../sandbox/timing.js';
import { MANIFEST_FILE, MANIFEST_VERSION, PAGE_SIZE, type SnapshotManifest } from './manifest.js';
import { readSnapshot } from './store.js';
import { assembledPath, memoryFileFor, writeLayer } from './memory.js';
import { shellQuote, waitMigration } from './create.js';

export type BranchMode = 'full' | 'live';

export interface BranchOptions {
  tag: string;
  mode: BranchMode;
  /** What the manifest records as the origin (diff layers are branches of a throwaway child). */
  origin?: { kind: 'branch' | 'diff'; source: string };
  onProgress?: ProgressFn;
  launcher?: QemuLauncher;
  /** Live mode: the longest stop QEMU may plan for the final copy. */
  downtimeLimitMs?: number;
}

export interface BranchResult {
  manifest: SnapshotManifest;
  /** How long the source's vCPUs were stopped (QEMU's STOP to RESUME events). */
  pauseMs: number;
  /** From the request to the source running again. */
  captureMs: number;
  totalMs: number;
}

/** One capture at a time per sandbox: QEMU runs one migration at a time. */
const busy = new WeakSet<Sandbox>();

export async function branchSandbox(layout: HomeLayout, sb: Sandbox, opts: BranchOptions): Promise<BranchResult> {
  const onProgress = opts.onProgress ?? noProgress;
  const tag = assertValidTag(opts.tag);
  if (!sb.alive) throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', `sandbox ${sb.id} is not running`, { id: sb.id });
  if (await exists(snapshotDir(layout, tag))) throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${tag} already exists`, { tag });
  const parent = await readSnapshot(layout, sb.tag).catch((e: unknown) => {
    throw new ForkdError('FORKD_E_SNAPSHOT_NOT_FOUND', `sandbox ${sb.id} was restored from ${sb.tag}, which no longer exists: a branch is stored as a layer on it`, { tag: sb.tag, cause: toForkdError(e).message });
  });
  if (busy.has(sb)) throw new ForkdError('FORKD_E_CONFLICT', `sandbox ${sb.id} is already being branched`, { id: sb.id });
  busy.add(sb);
  const t0 = nowMs();
  const staging = await createStaging(layout, tag);
  let receiver: Vm | null = null;
  try {
    const m = parent.manifest;
    const template = await overlayTemplate(parent.dir);
    onProgress({ phase: 'branch', message: 'starting the receiver' });
    receiver = await Vm.launch('branch', {
      accel: m.accel,
      vcpus: m.machine.vcpus,
      memMib: m.machine.mem_mib,
      memPath: path.join(staging, 'memory.bin'),
      memShare: true,
      incoming: true,
      startPaused: true,
      consoleLog: false,
    }, {
      prepare: async (dir) => {
        // The receiver never runs the guest; its disk only has to exist for the device to load.
        await createChildOverlay(template, path.join(dir, 'disk.qcow2'));
        return { disk: { path: path.join(dir, 'disk.qcow2'), format: 'qcow2' } };
      },
      ...(opts.launcher ? { launcher: opts.launcher } : {}),
    });
    const migSock = path.join(receiver.dir, 'migrate.sock');
    await receiver.qmp.execute('migrate-incoming', { uri: `unix:${migSock}` });
    onProgress({ phase: 'branch', message: `copying memory (${opts.mode})` });
    const { pauseMs, captureMs } = await captureSource(sb, migSock, path.join(staging, 'disk.qcow2'), opts);
    onProgress({ phase: 'branch', message: `source resumed after a ${pauseMs.toFixed(1)} ms pause; saving device state` });
    await waitStatus(receiver, (s) => s === 'paused', 60_000);
    await receiver.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
    await receiver.qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(path.join(staging, 'vmstate'))}` });
    await waitMigration(receiver, 60_000);
    await receiver.kill();
    receiver = null;

    onProgress({ phase: 'branch', message: 'storing the pages that changed' });
    // The disk layer's backing is the parent's, relative, so the store can move.
    await runTool('qemu-img', ['rebase', '-u', '-b', path.join('..', parent.tag, 'disk.qcow2'), '-F', 'qcow2', path.join(staging, 'disk.qcow2')]);
    const full = path.join(staging, 'memory.bin');
    const { changedPages } = await writeLayer(full, await memoryFileFor(layout, parent), path.join(staging, 'memory.layer'), path.join(staging, 'memory.pages'));
    for (const f of ['vmstate', 'disk.qcow2']) await fsyncPath(path.join(staging, f));
    await fs.chmod(path.join(staging, 'disk.qcow2'), 0o444);
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
    await fs.mkdir(path.dirname(cached), { recursive: true });
    await fsyncPath(full);
    await fs.rename(full, cached);
    await fs.rm(path.join(staging, 'owner.json'), { force: true });
    await writeFileAtomic(path.join(staging, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
    try {
      await fs.rename(staging, snapshotDir(layout, tag));
    } catch (e) {
      await fs.rm(cached, { force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${tag} was created concurrently`, { tag });
      throw e;
    }
    await fsyncPath(layout.snapshots);
    onProgress({ phase: 'done', message: `branch ${tag}: ${changedPages} pages differ from ${parent.tag}`, fraction: 1 });
    return { manifest, pauseMs, captureMs, totalMs: since(t0) };
  } catch (e) {
    if (receiver) await receiver.kill();
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  } finally {
    busy.delete(sb);
  }
}

/**
 * Migrates the source to the receiver and copies its disk overlay while its vCPUs are stopped.
 * Whatever happens, the source is running again when this returns or throws.
 */
async function captureSource(sb: Sandbox, migSock: string, diskOut: string, opts: BranchOptions): Promise<{ pauseMs: number; captureMs: number }> {
  const vm = vmOf(sb);
  const qmp = vm.qmp;
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
    await qmp.execute('migrate', { uri: `unix:${migSock}` });
    stopped = true;
    await waitMigrationStatus(vm, (s) => s === 'pre-switchover', 120_000);
    // vCPUs stopped, disks flushed and still active: this overlay is the disk at the pause instant.
    await fs.copyFile(path.join(sb.dir, 'disk.qcow2'), diskOut);
    await qmp.execute('migrate-continue', { state: 'pre-switchover' });
    await waitMigration(vm, 60_000);
  } catch (e) {
    await qmp.execute('migrate_cancel').catch(() => undefined);
    throw e;
  } finally {
    if (stopped && sb.alive) {
      await waitMigrationStatus(vm, (s) => s !== 'active' && s !== 'pre-switchover' && s !== 'device' && s !== 'cancelling', 10_000).catch(() => undefined);
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

async function waitMigrationStatus(vm: Vm, ok: (s: string) => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = (await vm.qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
    const s = info.status ?? 'none';
    if (ok(s)) return;
    if (s === 'failed' || s === 'cancelled') throw new ForkdError('FORKD_E_SNAPSHOT_FAILED', `migration ${s}: ${info['error-desc'] ?? 'no detail'}`);
    if (Date.now() > deadline) throw new ForkdError('FORKD_E_TIMEOUT', `migration still ${s} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function waitStatus(vm: Vm, ok: (s: string) => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = (await vm.qmp.execute('query-status')) as { status?: string };
    if (ok(st.status ?? '')) return;
    if (Date.now() > deadline) throw new ForkdError('FORKD_E_TIMEOUT', `receiver still ${st.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
