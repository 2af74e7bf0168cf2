import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError, assertValidTag } from '@forkd/protocol';
import { type HomeLayout, snapshotDir } from '../home/paths.js';
import type { Recipe } from '../recipe/recipe.js';
import { ensureImage } from '../image/build.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { allocatedBytes, exists, fsyncPath, sha256File, writeFileAtomic } from '../util/fsx.js';
import { Vm } from '../sandbox/vm.js';
import { createStaging } from '../util/staging.js';
import { bootFromImage } from '../sandbox/boot.js';
import { nowMs, since } from '../sandbox/timing.js';
import { machineSignature } from './machine.js';
import { MANIFEST_FILE, MANIFEST_VERSION, type SnapshotManifest } from './manifest.js';
import type { SnapshotEntry } from './store.js';
import type { Platform } from '../platform.js';
import type { QemuLauncher } from '../qemu/launcher.js';

export interface CreateSnapshotOptions {
  tag: string;
  recipe: Recipe;
  memMib?: number;
  vcpus?: number;
  bootTimeoutMs?: number;
  warmupTimeoutMs?: number;
  onProgress?: ProgressFn;
  launcher?: QemuLauncher;
}

export const VCPU_RANGE = { min: 1, max: 8 } as const;

/**
 * Boots the recipe's image as a parent with its RAM in a shared file, waits for the agent to
 * report warm-up finished, pauses, and saves device state with x-ignore-shared. Everything is
 * written in a staging directory that is renamed into place only when complete, so a crash
 * never leaves a snapshot that looks usable.
 */
export async function createSnapshot(layout: HomeLayout, platform: Platform, opts: CreateSnapshotOptions): Promise<SnapshotEntry> {
  const onProgress = opts.onProgress ?? noProgress;
  const tag = assertValidTag(opts.tag);
  const recipe = opts.recipe;
  const memMib = opts.memMib ?? recipe.default_mem_mib;
  const vcpus = opts.vcpus ?? 1;
  if (!Number.isInteger(memMib) || memMib < recipe.min_mem_mib) {
    throw new ForkdError('FORKD_E_MEMORY_TOO_SMALL', `recipe ${recipe.name} needs at least ${recipe.min_mem_mib} MiB of memory; got ${memMib}`, { min_mem_mib: recipe.min_mem_mib, mem_mib: memMib });
  }
  if (memMib > 65536) throw new ForkdError('FORKD_E_OUT_OF_RANGE', `mem_mib ${memMib} is above the 65536 MiB limit`);
  if (!Number.isInteger(vcpus) || vcpus < VCPU_RANGE.min || vcpus > VCPU_RANGE.max) {
    throw new ForkdError('FORKD_E_OUT_OF_RANGE', `vcpus must be ${VCPU_RANGE.min}..${VCPU_RANGE.max}; got ${vcpus}`);
  }
  const finalDir = snapshotDir(layout, tag);
  if (await exists(finalDir)) throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${tag} already exists (forkd rmi ${tag} first)`, { tag });

  const t0 = nowMs();
  const env = await platform.resolve(onProgress);
  const image = await ensureImage(layout, recipe, { onProgress });

  const staging = await createStaging(layout, tag);
  let vm: Vm | null = null;
  try {
    const boot = await bootFromImage(env, 'parent', { memMib, vcpus, imagePath: image.path, stateDir: staging, memShare: true, onProgress, ...(opts.launcher ? { launcher: opts.launcher } : {}), ...(opts.bootTimeoutMs ? { bootTimeoutMs: opts.bootTimeoutMs } : {}) });
    vm = boot.vm;
    const agent = vm.agent!;
    const { ping, cmdline, backing: backingRel } = boot;
    const bootMs = boot.bootMs;

    onProgress({ phase: 'warmup', message: `warming up (${recipe.name})` });
    const tWarm = nowMs();
    const warm = await vm.guard(agent.warmup({ ...recipe.warmup, timeout_ms: opts.warmupTimeoutMs ?? 600_000 }, { timeoutMs: (opts.warmupTimeoutMs ?? 600_000) + 5_000 }), 'warming up');
    const after = await agent.ping({ timeoutMs: 10_000 });
    if (warm.warmup !== 'warm' || after.warmup !== 'warm') {
      throw new ForkdError('FORKD_E_SNAPSHOT_FAILED', `warm-up failed: ${after.warmup_error ?? warm.warmup}`, { console: await vm.consoleTail() });
    }
    const warmupMs = since(tWarm);

    onProgress({ phase: 'save', message: 'pausing and saving device state' });
    const tSave = nowMs();
    await vm.qmp.execute('stop');
    await vm.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
    const vmstatePath = path.join(staging, 'vmstate');
    await vm.qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(vmstatePath)}` });
    await waitMigration(vm, 60_000);
    const saveMs = since(tSave);
    await vm.qmp.execute('quit').catch(() => undefined);
    await vm.kill();
    vm = null;

    onProgress({ phase: 'persist', message: 'syncing memory file and disk layer to disk' });
    for (const f of ['memory.bin', 'vmstate', 'disk.qcow2']) await fsyncPath(path.join(staging, f));
    await fs.chmod(path.join(staging, 'disk.qcow2'), 0o444);
    const manifest: SnapshotManifest = {
      format_version: MANIFEST_VERSION,
      tag,
      created_at: new Date().toISOString(),
      origin: { kind: 'recipe', recipe: recipe.name },
      parent_tag: null,
      language: recipe.language,
      qemu: { version: env.qemuVersion, binary: 'qemu-system-x86_64' },
      accel: env.accel,
      machine: { mem_mib: memMib, vcpus, signature: machineSignature(env.accel, memMib, vcpus) },
      kernel: { path: env.kernel.path, version: env.kernel.version, sha256: env.kernel.sha256, cmdline },
      initramfs_sha256: env.initramfs.sha256,
      image: { key: image.key, recipe: recipe.name, path: image.path },
      files: {
        memory: { name: 'memory.bin', logical_bytes: memMib * 1024 * 1024, physical_bytes: await allocatedBytes(path.join(staging, 'memory.bin')) },
        vmstate: { name: 'vmstate', bytes: (await fs.stat(vmstatePath)).size, sha256: await sha256File(vmstatePath) },
        disk: { name: 'disk.qcow2', backing: backingRel, physical_bytes: await allocatedBytes(path.join(staging, 'disk.qcow2')) },
      },
      timings: { boot_to_agent_ms: bootMs, warmup_ms: warmupMs, save_ms: saveMs, total_ms: since(t0) },
      agent_version: ping.agent_version,
    };
    await fs.rm(path.join(staging, 'owner.json'), { force: true });
    await writeFileAtomic(path.join(staging, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
    try {
      await fs.rename(staging, finalDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${tag} was created concurrently`, { tag });
      }
      throw e;
    }
    await fsyncPath(layout.snapshots);
    onProgress({ phase: 'done', message: `snapshot ${tag} ready in ${(since(t0) / 1000).toFixed(1)} s`, fraction: 1 });
    return { tag, dir: finalDir, manifest };
  } catch (e) {
    let err = e;
    if (vm) {
      const tail = await vm.consoleTail();
      await vm.kill();
      if (e instanceof ForkdError && tail) err = new ForkdError(e.code, e.message, { ...e.details, console: tail }, { cause: e });
    }
    await fs.rm(staging, { recursive: true, force: true });
    throw err;
  }
}

export function shellQuote(p: string): string {
  if (!/^[A-Za-z0-9_./@%+=:,-]+$/.test(p)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `unsafe path for a migration URI: ${p}`);
  return `'${p}'`;
}

/** Polls query-migrate until completed; QEMU reports failures there. */
export async function waitMigration(vm: Vm, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = (await vm.qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
    if (info.status === 'completed') return info as Record<string, unknown>;
    if (info.status === 'failed' || info.status === 'cancelled') {
      throw new ForkdError('FORKD_E_SNAPSHOT_FAILED', `migration ${info.status}: ${info['error-desc'] ?? 'no detail'}`);
    }
    if (Date.now() > deadline) throw new ForkdError('FORKD_E_TIMEOUT', `migration did not complete within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 3));
  }
}
