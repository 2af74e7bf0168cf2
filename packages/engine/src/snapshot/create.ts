import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError, MACHINE_LIMITS, assertValidTag } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import type { Recipe } from '../recipe/recipe.js';
import { ensureImage } from '../image/build.js';
import { ensureTemplateImage } from '../template/build.js';
import { templateRuntime } from '../template/plan.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { allocatedBytes, fsyncPath, sha256File } from '../util/fsx.js';
import { Vm } from '../vm/vm.js';
import { commitStaging, freeSnapshotDir, inStaging } from '../util/staging.js';
import { bootFromImage } from '../vm/boot.js';
import { saveDeviceState } from '../vm/migration.js';
import { startServices } from '../vm/services.js';
import { nowMs, since } from '../util/timing.js';
import { machineSignature } from './machine.js';
import { MANIFEST_VERSION, type SnapshotManifest } from './manifest.js';
import type { SnapshotEntry } from './store.js';
import type { Platform } from '../platform.js';
import type { QemuStarter } from '../qemu/start.js';
import { sealForJail } from '../qemu/jail.js';
import type { ChildNetworks } from '../network/index.js';

export interface CreateSnapshotOptions {
  tag: string;
  recipe: Recipe;
  memMib?: number;
  vcpus?: number;
  bootTimeoutMs?: number;
  warmupTimeoutMs?: number;
  onProgress?: ProgressFn;
  starter?: QemuStarter;
  /** A template's snapshot key (template/plan.ts templateSnapshotKey): a rebuild with the same key reuses the snapshot. */
  templateKey?: string;
  /** Needed when the recipe lets the parent reach the network during warm-up. */
  networks?: ChildNetworks | null;
}

/** Refuses a machine the recipe or forkd cannot run; callers that queue work check before queueing. */
export function checkMachineSize(recipe: Recipe, memMib: number, vcpus: number): void {
  const { memMib: mem, vcpus: cpus } = MACHINE_LIMITS;
  if (!Number.isInteger(memMib) || memMib < recipe.min_mem_mib) {
    throw new ForkdError('FORKD_E_MEMORY_TOO_SMALL', `recipe ${recipe.name} needs at least ${recipe.min_mem_mib} MiB of memory; got ${memMib}`, { min_mem_mib: recipe.min_mem_mib, mem_mib: memMib });
  }
  if (memMib > mem.max) throw new ForkdError('FORKD_E_OUT_OF_RANGE', `mem_mib ${memMib} is above the ${mem.max} MiB limit`);
  if (!Number.isInteger(vcpus) || vcpus < cpus.min || vcpus > cpus.max) {
    throw new ForkdError('FORKD_E_OUT_OF_RANGE', `vcpus must be ${cpus.min}..${cpus.max}; got ${vcpus}`);
  }
}

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
  checkMachineSize(recipe, memMib, vcpus);
  const networks = opts.networks ?? null;
  if (recipe.warmup_network && !networks) throw new ForkdError('FORKD_E_NOT_IMPLEMENTED', `recipe ${recipe.name} warms up with network access, which needs networking (a process running as root)`);
  const finalDir = await freeSnapshotDir(layout, tag);

  const t0 = nowMs();
  const env = await platform.resolve(onProgress);
  const image = recipe.steps.length > 0
    ? await ensureTemplateImage(layout, env, recipe, { onProgress, networks, ...(opts.starter ? { starter: opts.starter } : {}) })
    : await ensureImage(layout, recipe, { onProgress });
  // A template's env and workdir steps reach its services, its warm interpreter and every child's commands.
  const runtime = templateRuntime(recipe);

  return inStaging(layout, tag, async (staging) => {
    let vm: Vm | null = null;
    try {
      const boot = await bootFromImage(env, 'parent', { memMib, vcpus, imagePath: image.path, stateDir: staging, memShare: true, onProgress, ...(opts.starter ? { starter: opts.starter } : {}), ...(recipe.warmup_network ? { network: (id: string, tapOwner?: number) => networks!.create(id, { network: true, ...(tapOwner !== undefined ? { tapOwner } : {}) }) } : {}), ...(opts.bootTimeoutMs ? { bootTimeoutMs: opts.bootTimeoutMs } : {}) });
      vm = boot.vm;
      const agent = vm.agent!;
      const { ping, cmdline, backing: backingRel } = boot;
      const bootMs = boot.bootMs;

      const tWarm = nowMs();
      if (runtime.services.length > 0) {
        onProgress({ phase: 'services', message: `starting ${runtime.services.map((s) => s.name).join(', ')}` });
        await vm.guard(startServices(agent, runtime.services), 'starting services');
      }
      onProgress({ phase: 'warmup', message: `warming up (${recipe.name})` });
      const warm = await vm.guard(agent.warmup({ ...runtime.warmup, timeout_ms: opts.warmupTimeoutMs ?? 600_000 }, { timeoutMs: (opts.warmupTimeoutMs ?? 600_000) + 5_000 }), 'warming up');
      const after = await agent.ping({ timeoutMs: 10_000 });
      if (warm.warmup !== 'warm' || after.warmup !== 'warm') {
        throw new ForkdError('FORKD_E_SNAPSHOT_FAILED', `warm-up failed: ${after.warmup_error ?? warm.warmup}`, { console: await vm.consoleTail() });
      }
      const warmupMs = since(tWarm);

      onProgress({ phase: 'save', message: 'pausing and saving device state' });
      const tSave = nowMs();
      await vm.qmp.execute('stop');
      const vmstatePath = path.join(staging, 'vmstate');
      await saveDeviceState(vm, vmstatePath);
      const saveMs = since(tSave);
      await vm.qmp.execute('quit').catch(() => undefined);
      await vm.kill();
      vm = null;

      onProgress({ phase: 'persist', message: 'syncing memory file and disk layer to disk' });
      for (const f of ['memory.bin', 'vmstate', 'disk.qcow2']) await fsyncPath(path.join(staging, f));
      // The parent's QEMU owned its RAM file and disk; the snapshot's files are the daemon's, read-only to VMs.
      await sealForJail(path.join(staging, 'memory.bin'));
      await sealForJail(path.join(staging, 'vmstate'), 0o600); // read by the daemon's fd helper only
      await sealForJail(path.join(staging, 'disk.qcow2'), 0o440);
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
        ...(Object.keys(runtime.envs).length > 0 ? { envs: runtime.envs } : {}),
        ...(opts.templateKey ? { template_key: opts.templateKey } : {}),
      };
      await commitStaging(staging, finalDir, manifest);
      onProgress({ phase: 'done', message: `snapshot ${tag} ready in ${(since(t0) / 1000).toFixed(1)} s`, fraction: 1 });
      return { tag, dir: finalDir, manifest };
    } catch (e) {
      let err = e;
      if (vm) {
        const tail = await vm.consoleTail();
        await vm.kill();
        if (e instanceof ForkdError && tail) err = new ForkdError(e.code, e.message, { ...e.details, console: tail }, { cause: e });
      }
      throw err;
    }
  });
}
