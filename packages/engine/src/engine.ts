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

export interface EngineOptions {
  home?: string;
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

  constructor(opts: EngineOptions = {}) {
    this.layout = homeLayout(opts.home);
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
    return createSnapshot(this.layout, this.platform, { ...opts, recipe });
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
    return spawnChildren(this.layout, this.platform, opts);
  }

  /** A cold boot of a recipe's image (no snapshot): the baseline that fork-from-warm beats. */
  async bootCold(recipe: string | Recipe, opts: { memMib?: number; vcpus?: number } = {}) {
    const r = typeof recipe === 'string' ? await loadRecipe(recipe) : recipe;
    const env = await this.platform.resolve();
    const image = await ensureImage(this.layout, r);
    const { vm } = await bootFromImage(env, 'cold', { memMib: opts.memMib ?? r.default_mem_mib, vcpus: opts.vcpus ?? 1, imagePath: image.path, memShare: false });
    return vm;
  }

  doctor() {
    return runDoctor(this.layout, this.platform);
  }

  cleanup(opts: { dryRun?: boolean } = {}) {
    return cleanupStale({ dryRun: opts.dryRun ?? false, snapshotsDir: this.layout.snapshots });
  }
}
