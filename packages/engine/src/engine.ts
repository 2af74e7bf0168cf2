import { type HomeLayout, homeLayout } from './home/paths.js';
import { Platform, type AccelRequest } from './platform.js';
import { loadRecipe, loadRecipeByName, resolveRecipe, type Recipe } from './recipe/recipe.js';
import { ensureTemplateImage, type TemplateImage } from './template/build.js';
import { templateSnapshotKey } from './template/plan.js';
import { writeFileAtomic } from './util/fsx.js';
import { ensureImage, listImages } from './image/build.js';
import { buildImageFromOci } from './oci-image/index.js';
import { checkMachineSize, createSnapshot } from './snapshot/create.js';
import { SnapshotCatalog } from './snapshot/catalog.js';
import { poolKey, spawnChildren, startPooledChild, type SpawnOptions } from './sandbox/spawn.js';
import { WarmPool, type WarmPoolSettings } from './sandbox/warm-pool.js';
import { readSnapshot, type SnapshotEntry as SnapshotEntryT } from './snapshot/store.js';
import { runDoctor } from './doctor.js';
import { bootFromImage } from './vm/boot.js';
import { startServices } from './vm/services.js';
import { cleanupStale } from './runtime/index.js';
import type { ProgressFn } from './progress.js';
import type { QemuStarter } from './qemu/start.js';
import { KeeperClient, type KeeperAttachOptions, type KeeperVmT } from './keeper/index.js';
import { Vm } from './vm/vm.js';
import { Sandbox, agentOf, branchSourceOf, enableIdlePause, holdAwake, type SandboxTimings } from './sandbox/sandbox.js';
import type { IdlePauseSettings } from './vm/idle-pause.js';
import { promises as fs } from 'node:fs';
import { ForkdError, assertValidTag, type ServiceStatusT, type EvalLanguageT } from '@forkd/protocol';
import { branchSandbox, type BranchMode } from './snapshot/branch.js';
import { branchProven } from './sandbox/branch-proven.js';
import { compactSnapshot } from './snapshot/compact.js';
import { packSnapshot, pullSnapshot, pushSnapshot, unpackSnapshot, type PullOptions, type RegistryAccess } from './oci/index.js';
import { pruneMemoryCache } from './snapshot/memory.js';
import { cgroupRootName, detectCgroups, removeCgroupRoot, sweepCgroups, type CgroupHost } from './quota/cgroup.js';
import { runtimeDir } from './runtime/index.js';
import path from 'node:path';
import { ChildNetworks, deleteNetns, sweepStaleNetns, type NetworkConfig } from './network/index.js';

/** What a daemon recorded about a sandbox, enough to take it over after a restart. */
export interface AdoptRecord {
  dir: string;
  pid: number;
  tag: string;
  language: EvalLanguageT;
  timings: SandboxTimings;
  createdAt: Date;
  /** The envs the guest was given (setEnvs); later commands get them too. */
  envs?: Record<string, string>;
}

/** A cold-booted VM, as the benchmark sees it. */
export interface ColdBoot {
  eval: Sandbox['eval'];
  runCode: Sandbox['runCode'];
  kill(): Promise<void>;
  /** The recipe's services, started (each ready) as part of the cold boot. */
  services: ServiceStatusT[];
}

export interface EngineOptions {
  home?: string;
  /** Where snapshots live (default <home>/snapshots). */
  snapshotRoot?: string;
  kernel?: string;
  accel?: AccelRequest;
  /** Where the cgroup hierarchy is mounted (default /sys/fs/cgroup): v2 or v1 is detected there. */
  cgroupBase?: string;
  /**
   * Children's networks: the pool and uplink of `network` children. As root every child gets its
   * own namespace (its ports reachable, nothing else); false: no namespaces, devices without backend.
   */
  network?: NetworkConfig | false;
  /** Warm pool settings (demand sizing); sizes per tag are set with configurePool. */
  pool?: Partial<WarmPoolSettings>;
  /** Stop children nobody has called for afterMs (vm/idle-pause.ts); absent: never. */
  idlePause?: IdlePauseSettings;
}

/**
 * The engine's whole surface: recipe -> image -> parent -> snapshot -> children. No HTTP here;
 * the CLI and the daemon both call this.
 */
export class Engine {
  readonly layout: HomeLayout;
  readonly platform: Platform;
  /** Listing, reading, chains and removal of snapshots. */
  readonly snapshots: SnapshotCatalog;
  /** Set by attachKeeper: VMs then outlive this process for the keeper's grace period. */
  private keeper: KeeperClient | null = null;
  private cgroupsP: Promise<CgroupHost> | null = null;
  private readonly cgroupBase: string;
  /** This engine's root cgroup name: one per home, so daemons (and test runs) never share one. */
  readonly cgroupRoot: string;
  /** Null when this process cannot make namespaces (not root) or was told not to. */
  readonly networks: ChildNetworks | null;
  /** Children started ahead for spawns (sandbox/warm-pool.ts); empty until configurePool or demand. */
  readonly pool: WarmPool;
  /** Whether one more VM fits (the daemon's admission sets it); the pool fills only then. */
  poolRoom: () => boolean = () => true;
  /** Told when a pool fill fails. */
  onPoolError: (tag: string, err: unknown) => void = () => undefined;
  /** Told when an idle pause or wake fails (the sandbox keeps running or is woken by its next call). */
  onIdlePauseError: (sandbox: string, what: string, err: unknown) => void = () => undefined;
  private readonly idlePause: IdlePauseSettings | null;

  constructor(opts: EngineOptions = {}) {
    this.layout = homeLayout(opts.home, opts.snapshotRoot);
    this.networks = opts.network === false || process.getuid?.() !== 0 ? null : new ChildNetworks(opts.network ?? {});
    this.snapshots = new SnapshotCatalog(this.layout);
    this.cgroupBase = opts.cgroupBase ?? '/sys/fs/cgroup';
    this.idlePause = opts.idlePause && opts.idlePause.afterMs > 0 ? opts.idlePause : null;
    this.cgroupRoot = cgroupRootName(this.layout.root);
    this.platform = new Platform(this.layout, { ...(opts.kernel ? { kernel: opts.kernel } : {}), ...(opts.accel ? { accel: opts.accel } : {}) });
    this.pool = new WarmPool({
      fill: (tag) => startPooledChild(this.layout, this.platform, { tag, ...this.starterOpt(), ...(this.networks ? { networks: this.networks } : {}) }),
      currentKey: async (tag) => poolKey(await readSnapshot(this.layout, tag)),
      hasRoom: () => this.poolRoom(),
      onError: (tag, err) => this.onPoolError(tag, err),
    }, opts.pool);
  }

  /** Keeps n children of tag started ahead (0: none beyond demand). Filled in the background. */
  configurePool(tag: string, n: number): void {
    assertValidTag(tag);
    this.pool.configure(tag, n);
  }

  /** A recipe by name only (never a path): what the daemon resolves for REST callers. Built templates count. */
  async recipe(name: string): Promise<Recipe> {
    return loadRecipeByName(name, { templatesDir: this.templatesDir });
  }

  /** A recipe by name or local file (the CLI's); `from` may name a built template. */
  loadRecipe(nameOrPath: string): Promise<Recipe> {
    return loadRecipe(nameOrPath, { templatesDir: this.templatesDir });
  }

  /** A template (recipe JSON) from a client, its `from` chain merged and validated. */
  resolveTemplate(raw: unknown, source = 'template'): Promise<Recipe> {
    return resolveRecipe(raw, source, { templatesDir: this.templatesDir });
  }

  /** Where built templates' descriptions are kept (what `from` may name besides recipes/). */
  get templatesDir(): string {
    return path.join(this.layout.root, 'templates');
  }

  async buildImage(recipe: string | Recipe, opts: { onProgress?: ProgressFn; rebuild?: boolean } = {}) {
    const r = typeof recipe === 'string' ? await this.loadRecipe(recipe) : recipe;
    if (r.steps.length > 0 && !opts.rebuild) return ensureTemplateImage(this.layout, await this.platform.resolve(opts.onProgress), r, { ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), networks: this.networks, ...this.starterOpt() });
    return ensureImage(this.layout, r, opts);
  }

  /** `forkd image from-oci`: an OCI image (layout dir, docker save archive or registry reference) as a forkd image. */
  async imageFromOci(source: string, o: Parameters<typeof buildImageFromOci>[2]) {
    return buildImageFromOci(this.layout, source, o);
  }

  /**
   * Builds a template: its image (steps cached per layer) and its warm snapshot, tagged `tag`. An
   * unchanged template whose snapshot is here costs nothing (no VM); a changed one replaces the
   * snapshot (children running from the old one keep running). Its description is kept, so later
   * templates can extend it (`from`).
   */
  async buildTemplate(opts: { tag: string; recipe: Recipe; memMib?: number; onProgress?: ProgressFn }): Promise<{ image: TemplateImage; snapshot: SnapshotEntryT; snapshot_cached: boolean }> {
    const tag = assertValidTag(opts.tag);
    const recipe = opts.recipe;
    const memMib = opts.memMib ?? recipe.default_mem_mib;
    checkMachineSize(recipe, memMib, 1);
    const image = await ensureTemplateImage(this.layout, await this.platform.resolve(opts.onProgress), recipe, { ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), networks: this.networks, ...this.starterOpt() });
    const key = templateSnapshotKey(recipe, image.key, memMib);
    const existing = await this.snapshots.read(tag).catch(() => null);
    let snapshot: SnapshotEntryT;
    let cached = false;
    if (existing && existing.manifest.template_key === key) {
      opts.onProgress?.({ phase: 'done', message: `snapshot ${tag} is up to date`, fraction: 1 });
      snapshot = existing;
      cached = true;
    } else {
      if (existing) await this.removeSnapshot(tag);
      snapshot = await this.createSnapshot({ tag, recipe, memMib, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), templateKey: key });
    }
    await fs.mkdir(this.templatesDir, { recursive: true });
    await writeFileAtomic(path.join(this.templatesDir, `${recipe.name}.json`), JSON.stringify({ ...recipe, from: undefined }, null, 2));
    return { image, snapshot, snapshot_cached: cached };
  }

  listImages() {
    return listImages(this.layout);
  }

  async createSnapshot(opts: { tag: string; recipe: string | Recipe; memMib?: number; vcpus?: number; onProgress?: ProgressFn; templateKey?: string }) {
    const recipe = typeof opts.recipe === 'string' ? await this.loadRecipe(opts.recipe) : opts.recipe;
    return createSnapshot(this.layout, this.platform, { ...opts, recipe, ...this.starterOpt(), networks: this.networks });
  }

  listSnapshots() {
    return this.snapshots.list();
  }

  getSnapshot(tag: string) {
    return this.snapshots.read(tag);
  }

  /** Removes a snapshot; one with layers on it only with cascade (they go first, leaves first). */
  async removeSnapshot(tag: string, opts: { cascade?: boolean } = {}): Promise<string[]> {
    // Its pooled children map its files: they go first (and a layer's, with cascade).
    const dependents = opts.cascade ? await this.snapshots.dependents(tag).catch(() => [] as string[]) : [];
    const drain = () => Promise.all([tag, ...dependents].map((t) => this.pool.drain(t)));
    await drain();
    try {
      return await this.snapshots.remove(tag, opts);
    } finally {
      await drain(); // a fill that finished meanwhile
    }
  }

  /** Snapshots layered on tag (directly or not), leaves first. */
  dependents(tag: string) {
    return this.snapshots.dependents(tag);
  }

  /** Root first; throws FORKD_E_SNAPSHOT_INCOMPATIBLE when the chain is broken. */
  ancestors(tag: string): Promise<string[]> {
    return this.snapshots.ancestors(tag);
  }

  /** A snapshot with its chain (root first) and the layers made directly on it. */
  snapshotDetail(tag: string) {
    return this.snapshots.detail(tag);
  }

  /** Every snapshot as a forest of layers under their parents. */
  snapshotTree() {
    return this.snapshots.tree();
  }

  /** Captures a running sandbox as a snapshot layer; the sandbox keeps running. A live capture is proven by a restore. */
  branch(sb: Sandbox, opts: { tag: string; mode?: BranchMode; onProgress?: ProgressFn; downtimeLimitMs?: number }) {
    // A capture needs the guest running (and its clock right): it wakes an idle-paused one.
    return holdAwake(sb, () => branchProven(this.layout, this.platform, sb, { ...opts, mode: opts.mode ?? 'live', ...this.starterOpt() }));
  }

  /**
   * snapshot-diff: runs a shell command line in a child of `from` and keeps the result as layer
   * `to` (only the memory pages and disk blocks that changed). The command must exit 0.
   */
  async diffSnapshot(opts: { from: string; to: string; cmd: string; timeoutMs?: number; onProgress?: ProgressFn }) {
    const onProgress = opts.onProgress ?? (() => undefined);
    assertValidTag(opts.to);
    if (await this.snapshots.read(opts.to).then(() => true, () => false)) throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${opts.to} already exists`, { tag: opts.to });
    onProgress({ phase: 'diff', message: `starting a child of ${opts.from}` });
    const [child] = await this.spawn({ tag: opts.from, n: 1 });
    try {
      onProgress({ phase: 'diff', message: `running: ${opts.cmd.slice(0, 200)}` });
      const timeoutMs = opts.timeoutMs ?? 600_000;
      const r = await agentOf(child!).exec({ shell: opts.cmd, timeout_ms: timeoutMs }, { timeoutMs: timeoutMs + 10_000 });
      if (r.exit_code !== 0) {
        throw new ForkdError('FORKD_E_COMMAND_FAILED', `the command ${r.timed_out ? 'timed out' : r.error ? `failed: ${r.error}` : `exited with ${r.exit_code}`}; no layer was made. stderr: ${r.stderr.slice(-2000)}`, { exit_code: r.exit_code, stdout: r.stdout.slice(-2000), stderr: r.stderr.slice(-2000) });
      }
      return (await holdAwake(child!, () => branchSandbox(this.layout, branchSourceOf(child!), { tag: opts.to, mode: 'full', origin: { kind: 'diff', source: opts.from }, onProgress, ...this.starterOpt() }))).snapshot;
    } finally {
      await child!.kill();
    }
  }

  /** Flattens a snapshot (e.g. a chain head) into a new one with no parent. */
  compactSnapshot(opts: { from: string; to: string; onProgress?: ProgressFn }) {
    return compactSnapshot(this.layout, opts.from, opts.to, opts.onProgress);
  }

  /** Pushes a snapshot (and every link of its chain the registry lacks) to an OCI registry. */
  pushSnapshot(opts: RegistryAccess & { tag: string; ref: string; sign?: string; onProgress?: ProgressFn }) {
    return pushSnapshot(this.layout, opts.tag, opts.ref, opts, opts.onProgress);
  }

  /** Pulls a snapshot from an OCI registry: only the links this store lacks travel. */
  pullSnapshot(opts: PullOptions & { ref: string; onProgress?: ProgressFn }) {
    return pullSnapshot(this.layout, this.platform, opts.ref, opts, opts.onProgress);
  }

  /** Writes a snapshot and its chain as an OCI layout in one tar file. */
  packSnapshot(opts: { tag: string; file: string; description?: string; onProgress?: ProgressFn }) {
    return packSnapshot(this.layout, opts.tag, opts.file, opts.description !== undefined ? { description: opts.description } : {}, opts.onProgress);
  }

  unpackSnapshot(opts: { file: string; tag?: string; force?: boolean; onProgress?: ProgressFn }) {
    return unpackSnapshot(this.layout, this.platform, opts.file, { ...(opts.tag !== undefined ? { tag: opts.tag } : {}), ...(opts.force ? { force: true } : {}) }, opts.onProgress);
  }

  async spawn(opts: SpawnOptions): Promise<Sandbox[]> {
    const children = await spawnChildren(this.layout, this.platform, { ...this.starterOpt(), cgroups: { host: () => this.cgroups(), rootName: this.cgroupRoot }, ...(this.networks ? { networks: this.networks } : {}), pool: this.pool, ...opts });
    for (const sb of children) this.watchIdle(sb);
    return children;
  }

  /** Puts a sandbox under the idle pause when this engine has one. */
  private watchIdle(sb: Sandbox): void {
    if (this.idlePause) enableIdlePause(sb, this.idlePause, (what, e) => this.onIdlePauseError(sb.id, what, e));
  }

  /** The host's cgroup hierarchy (v2, v1 or none) and usable controllers, detected once. */
  cgroups(): Promise<CgroupHost> {
    this.cgroupsP ??= detectCgroups(this.cgroupBase);
    return this.cgroupsP;
  }

  /**
   * Removes this engine's root cgroup(s) if empty: for a daemon that stops (no spawn may race it).
   * One still holding a VM's cgroup (left to the keeper) stays; the keeper removes it at its end.
   */
  async removeCgroupRoot(): Promise<string[]> {
    return removeCgroupRoot(await this.cgroups(), this.cgroupRoot);
  }

  /**
   * The keeper while one is attached. Once a keeper was wanted, a lost one is never silently
   * replaced by this process (its VMs would die with the daemon, not outlive it): until the
   * re-attach completes, launches fail with FORKD_E_UNAVAILABLE.
   */
  private starterOpt(): { starter?: QemuStarter } {
    if (this.keeper) return { starter: this.keeper };
    if (this.keeperWanted) throw new ForkdError('FORKD_E_UNAVAILABLE', 'the VM keeper is restarting: try again in a moment');
    return {};
  }
  private keeperWanted = false;

  /**
   * From now on QEMU processes are children of a keeper process (started if needed) instead of
   * this one, so they survive this process for graceMs and can be adopted by its successor.
   * Returns the VMs the keeper already holds (an earlier owner's). `lost` fires if the keeper dies.
   */
  async attachKeeper(opts: KeeperAttachOptions & { onLost?: () => void }): Promise<KeeperVmT[]> {
    this.keeperWanted = true;
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
    // Patient: giving up means losing a live sandbox, and a restart often meets a loaded host.
    const net = await Vm.recordedNetwork(rec.dir);
    if (net && !this.networks) throw new ForkdError('FORKD_E_NOT_IMPLEMENTED', `sandbox in ${rec.dir} has a network namespace, and this process has no networking (not root?)`);
    const network = net ? this.networks!.adopt(net) : null;
    const vm = await Vm.adopt(rec.dir, proc, { qmpTimeoutMs: 20_000, network });
    try {
      // A ping written while the guest is still closing the old connection's port is lost with it,
      // so waiting long on one connection only delays; short tries on fresh connections, each
      // twice as patient as the last (2 + 4 + 8 + 16 s), recover in ~2 s and still wait out a loaded host.
      for (let attempt = 1, pingMs = 2000; ; attempt++, pingMs *= 2) {
        try {
          const agent = await vm.connectAgent(15_000);
          await agent.ping({ timeoutMs: pingMs });
          // Its owner may have left it idle-paused (adoption resumed it): its clock is late by that pause.
          await agent.clock({ timeoutMs: 10_000 }).catch(() => undefined);
          const sb = new Sandbox(vm, rec.tag, rec.timings, rec.language, rec.createdAt, rec.envs);
          this.watchIdle(sb);
          return sb;
        } catch (e) {
          vm.agent?.close();
          vm.agent = null;
          if (attempt >= 4 || proc.hasExited) throw e;
        }
      }
    } catch (e) {
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
    const net = await Vm.recordedNetwork(dir);
    if (net) {
      if (this.networks) await this.networks.adopt(net).release().catch(() => undefined);
      else await deleteNetns(net.netns).catch(() => undefined);
    }
    await this.cleanupDir(dir);
  }

  /**
   * For a daemon's start, before it launches anything: VM dirs owned by the attached keeper that it
   * holds no QEMU for, i.e. children a killed daemon was still making (namespace made, QEMU not yet
   * started or already gone). Nobody else removes them: their owner, the keeper, is alive. Each is
   * removed like a reaped VM (its network released, its run dir with cgroups and overlay).
   */
  async sweepUnheldKeeperDirs(): Promise<string[]> {
    const k = this.keeper;
    if (!k) return [];
    const { readOwner } = await import('./runtime/dir.js');
    const owner = await k.owner();
    const held = new Set([...k.inherited.values()].map((v) => path.resolve(v.run_dir)));
    const run = runtimeDir();
    const removed: string[] = [];
    for (const name of await fs.readdir(run).catch(() => [] as string[])) {
      if (!/^vm-[0-9a-f]{16}$/.test(name)) continue;
      const dir = path.join(run, name);
      const rec = await readOwner(dir);
      if (!rec || rec.owner_pid !== owner.pid || rec.owner_starttime !== owner.starttime || held.has(dir)) continue;
      if (rec.qemu_pid !== null && k.processOf(rec.qemu_pid)) continue;
      await this.reap(-1, dir);
      removed.push(dir);
    }
    return removed;
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
    this.keeperWanted = false;
    if (!k) return;
    if (opts.stopVms) await k.shutdown();
    else k.detach();
  }

  /**
   * A cold boot of a recipe's image (no snapshot): the baseline that fork-from-warm beats. Only
   * eval and kill are handed out: the VM and its agent stay inside the engine.
   */
  async bootCold(recipe: string | Recipe, opts: { memMib?: number; vcpus?: number } = {}): Promise<ColdBoot> {
    const r = typeof recipe === 'string' ? await this.loadRecipe(recipe) : recipe;
    const memMib = opts.memMib ?? r.default_mem_mib;
    checkMachineSize(r, memMib, opts.vcpus ?? 1); // before any build or boot: nothing to undo
    const env = await this.platform.resolve();
    const image = r.steps.length > 0 ? await ensureTemplateImage(this.layout, env, r, { networks: this.networks, ...this.starterOpt() }) : await ensureImage(this.layout, r);
    const { vm } = await bootFromImage(env, 'cold', { memMib, vcpus: opts.vcpus ?? 1, imagePath: image.path, memShare: false, ...this.starterOpt() });
    // A cold start of a recipe includes its services: that is what a child gets for free.
    let services: ServiceStatusT[];
    try {
      services = await vm.guard(startServices(vm.agent!, r.services), 'starting services');
    } catch (e) {
      await vm.kill();
      throw e;
    }
    return {
      services,
      eval: (language, code, o = {}) => vm.agent!.eval(language, code, { ...(o.timeoutMs !== undefined ? { evalTimeoutMs: o.timeoutMs } : {}) }),
      runCode: (code, o = {}) => vm.agent!.runCode(code, { ...(o.timeoutMs !== undefined ? { evalTimeoutMs: o.timeoutMs } : {}) }),
      kill: () => vm.kill(),
    };
  }

  doctor() {
    return runDoctor(this.layout, this.platform, this.cgroups());
  }

  /** Kills VMs and removes files dead owners left behind, and assembled memory images of deleted snapshots. */
  /**
   * Removes the run dirs (and kills the QEMUs) of forkd processes that died, e.g. a `fork --local`
   * killed with -9; the cheap part of cleanup, run at the start of every command.
   */
  async sweepDeadOwners(): Promise<string[]> {
    const removed = (await cleanupStale({ deadOwnersOnly: true })).removed;
    if (this.networks) removed.push(...(await sweepStaleNetns()));
    return removed;
  }

  async cleanup(opts: { dryRun?: boolean } = {}) {
    const report = await cleanupStale({ dryRun: opts.dryRun ?? false, snapshotsDir: this.layout.snapshots, stagingDirs: [this.layout.images, this.layout.rootfsCache, this.layout.runtimeCache] });
    if (process.getuid?.() === 0) report.removed.push(...(await sweepStaleNetns({ dryRun: opts.dryRun ?? false })));
    const live = (await this.snapshots.list()).map((e) => e.manifest);
    report.removed.push(...(await pruneMemoryCache(this.layout, live, opts.dryRun ?? false)));
    report.removed.push(...(await this.sweepOrphans(opts.dryRun ?? false)));
    return report;
  }

  /**
   * Overlays and cgroups whose VM run dir is gone (the daemon and its keeper both died, or the host
   * rebooted and /run was emptied): an overlay is made after its run dir and recorded in it, so one
   * without a run dir belongs to nobody.
   */
  private async sweepOrphans(dryRun: boolean): Promise<string[]> {
    const run = runtimeDir();
    const alive = (vmName: string) => fs.access(path.join(run, vmName)).then(() => true, () => false);
    const removed: string[] = [];
    for (const f of await fs.readdir(this.layout.overlays).catch(() => [] as string[])) {
      const m = /^(vm-[0-9a-f]{16})\.qcow2$/.exec(f);
      if (!m || (await alive(m[1]!))) continue;
      removed.push(path.join(this.layout.overlays, f));
      if (!dryRun) await fs.rm(path.join(this.layout.overlays, f), { force: true });
    }
    if (!dryRun) removed.push(...(await sweepCgroups(await this.cgroups(), this.cgroupRoot, alive)));
    return removed;
  }
}
