import { type HomeLayout, homeLayout } from './home/paths.js';
import { Platform, type AccelRequest } from './platform.js';
import { loadRecipe, type Recipe } from './recipe/recipe.js';
import { ensureImage, listImages } from './image/build.js';
import { createSnapshot } from './snapshot/create.js';
import { listSnapshots, readSnapshot, removeSnapshot } from './snapshot/store.js';
import { spawnChildren, type SpawnOptions } from './sandbox/spawn.js';
import { runDoctor } from './doctor.js';
import { bootFromImage } from './sandbox/boot.js';
import { cleanupStale } from './runtime/index.js';
import type { ProgressFn } from './progress.js';
import type { QemuLauncher } from './qemu/launcher.js';
import { KeeperClient, type KeeperAttachOptions, type KeeperVmT } from './keeper/index.js';
import { Vm } from './sandbox/vm.js';
import { Sandbox, type SandboxTimings } from './sandbox/sandbox.js';
import { ForkdError } from '@forkd/protocol';

/** What a daemon recorded about a sandbox, enough to take it over after a restart. */
export interface AdoptRecord {
  dir: string;
  pid: number;
  tag: string;
  language: 'python' | 'js';
  timings: SandboxTimings;
  createdAt: Date;
}

export interface EngineOptions {
  home?: string;
  /** Where snapshots live (default <home>/snapshots). */
  snapshotRoot?: string;
  kernel?: string;
  accel?: AccelRequest;
}

/**
 * The engine's whole surface: recipe -> image -> parent -> snapshot -> children. No HTTP here;
 * the CLI and the daemon both call this.
 */
export class Engine {
  readonly layout: HomeLayout;
  readonly platform: Platform;
  /** Set by attachKeeper: VMs then outlive this process for the keeper's grace period. */
  private keeper: KeeperClient | null = null;

  constructor(opts: EngineOptions = {}) {
    this.layout = homeLayout(opts.home, opts.snapshotRoot);
    this.platform = new Platform(this.layout, { ...(opts.kernel ? { kernel: opts.kernel } : {}), ...(opts.accel ? { accel: opts.accel } : {}) });
  }

  async recipe(nameOrPath: string): Promise<Recipe> {
    return loadRecipe(nameOrPath);
  }

  async buildImage(recipe: string | Recipe, opts: { onProgress?: ProgressFn; rebuild?: boolean } = {}) {
    const r = typeof recipe === 'string' ? await loadRecipe(recipe) : recipe;
    return ensureImage(this.layout, r, opts);
  }

  listImages() {
    return listImages(this.layout);
  }

  async createSnapshot(opts: { tag: string; recipe: string | Recipe; memMib?: number; vcpus?: number; onProgress?: ProgressFn }) {
    const recipe = typeof opts.recipe === 'string' ? await loadRecipe(opts.recipe) : opts.recipe;
    return createSnapshot(this.layout, this.platform, { ...opts, recipe, ...this.launcherOpt() });
  }

  listSnapshots() {
    return listSnapshots(this.layout);
  }

  getSnapshot(tag: string) {
    return readSnapshot(this.layout, tag);
  }

  removeSnapshot(tag: string) {
    return removeSnapshot(this.layout, tag);
  }

  spawn(opts: SpawnOptions) {
    return spawnChildren(this.layout, this.platform, { ...this.launcherOpt(), ...opts });
  }

  private launcherOpt(): { launcher?: QemuLauncher } {
    return this.keeper ? { launcher: this.keeper } : {};
  }

  /**
   * From now on QEMU processes are children of a keeper process (started if needed) instead of
   * this one, so they survive this process for graceMs and can be adopted by its successor.
   * Returns the VMs the keeper already holds (an earlier owner's). `lost` fires if the keeper dies.
   */
  async attachKeeper(opts: KeeperAttachOptions & { onLost?: () => void }): Promise<KeeperVmT[]> {
    const keeper = await KeeperClient.attach(opts);
    keeper.on('lost', () => {
      if (this.keeper === keeper) this.keeper = null;
      opts.onLost?.();
    });
    this.keeper = keeper;
    return [...keeper.inherited.values()];
  }

  /** Takes over a sandbox an earlier owner started through the same keeper; its agent must answer. */
  async adopt(rec: AdoptRecord): Promise<Sandbox> {
    const proc = this.keeper?.processOf(rec.pid);
    if (!proc) throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', `the keeper holds no VM with pid ${rec.pid}`);
    const vm = await Vm.adopt(rec.dir, proc);
    try {
      const agent = await vm.connectAgent(5_000);
      await agent.ping({ timeoutMs: 10_000 });
      return new Sandbox(vm, rec.tag, rec.timings, rec.language, rec.createdAt);
    } catch (e) {
      vm.agent?.close();
      vm.qmp.close();
      throw e;
    }
  }

  /** Kills a VM the keeper holds that nobody adopts (and removes its run dir). */
  async reap(pid: number, dir: string): Promise<void> {
    const proc = this.keeper?.processOf(pid);
    if (proc) {
      proc.kill('SIGKILL');
      await proc.exited;
    }
    await this.cleanupDir(dir);
  }

  private async cleanupDir(dir: string): Promise<void> {
    const { openVmDir } = await import('./runtime/dir.js');
    const handle = await openVmDir(dir).catch(() => null);
    await handle?.remove();
  }

  /** Detach from the keeper without stopping VMs (a crash-like exit for tests), or stop it and its VMs. */
  async releaseKeeper(opts: { stopVms: boolean }): Promise<void> {
    const k = this.keeper;
    this.keeper = null;
    if (!k) return;
    if (opts.stopVms) await k.shutdown();
    else k.detach();
  }

  /** A cold boot of a recipe's image (no snapshot): the baseline that fork-from-warm beats. */
  async bootCold(recipe: string | Recipe, opts: { memMib?: number; vcpus?: number } = {}) {
    const r = typeof recipe === 'string' ? await loadRecipe(recipe) : recipe;
    const env = await this.platform.resolve();
    const image = await ensureImage(this.layout, r);
    const { vm } = await bootFromImage(env, 'cold', { memMib: opts.memMib ?? r.default_mem_mib, vcpus: opts.vcpus ?? 1, imagePath: image.path, memShare: false, ...this.launcherOpt() });
    return vm;
  }

  doctor() {
    return runDoctor(this.layout, this.platform);
  }

  cleanup(opts: { dryRun?: boolean } = {}) {
    return cleanupStale({ dryRun: opts.dryRun ?? false, snapshotsDir: this.layout.snapshots });
  }
}
