/**
 * Builds a template's image: its base image (recipe packages plus leading apt steps, the image
 * builder's debootstrap, cached by package set), then its remaining steps in ONE build VM, each
 * step's disk changes kept as a qcow2 layer on the previous step's:
 *
 *   base rootfs.ext4 (raw) <- layer(step 1).qcow2 <- layer(step 2).qcow2 <- ...
 *
 * After a step exits 0 the guest syncs and QMP blockdev-snapshot-sync switches the VM's disk to a
 * fresh overlay: the file the step wrote is frozen and copied into <home>/template-layers/<key>.qcow2
 * (its backing rewritten to the previous layer's absolute path), <key>.json marking it complete.
 * Keys chain (template/plan.ts), so a rebuild reuses the longest prefix of layers whose steps did not
 * change, and an unchanged template is a cache hit before any VM starts (its flattened image is kept
 * under <home>/images/<last key>). The snapshot boots from that flat raw image, like any recipe's.
 *
 * A failing step: FORKD_E_TEMPLATE_STEP_FAILED with the step's index, type, exit code and output;
 * the build VM, its run dir and the unfinished layer are removed, the image is not written. Layers
 * of steps that completed before it stay: they are correct cache entries for the next try.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError, LIMITS, type TemplateStepT } from '@forkd/protocol';
import { type HomeLayout, imageDir, STAGING_PREFIX } from '../home/paths.js';
import type { Recipe } from '../recipe/recipe.js';
import { ensureImage, readImageInfo, type ImageInfo } from '../image/build.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { exists, writeFileAtomic } from '../util/fsx.js';
import { stagingOwnerSuffix } from '../util/staging.js';
import { runTool } from '../qemu/tools.js';
import type { QemuStarter } from '../qemu/start.js';
import type { PlatformEnv } from '../platform.js';
import type { ChildNetworks } from '../network/index.js';
import { bootFromImage } from '../vm/boot.js';
import type { Vm } from '../vm/vm.js';
import { describeStep, planTemplate, stepContext, stepNeedsNetwork, type PlannedStep } from './plan.js';
import { readTemplateFile, templateFileBytes } from './files.js';

export interface StepReport {
  index: number;
  type: TemplateStepT['type'];
  description: string;
  /** Its layer was reused (or it joined the base image's package set). */
  cached: boolean;
  /** In the base image (a leading apt step: debootstrap on the host). */
  in_base: boolean;
  duration_ms: number;
  /** The newest output of its command(s), when it ran. */
  output_tail: string;
}

export type TemplateImage = ImageInfo & { cached: boolean; base_key: string; steps: StepReport[] };

export interface TemplateBuildOptions {
  onProgress?: ProgressFn;
  starter?: QemuStarter;
  /** Needed when an uncached step asks for the network (apt after other steps, pip, npm, run with network). */
  networks?: ChildNetworks | null;
  /** The build VM's memory (default: the recipe's default_mem_mib). */
  memMib?: number;
}

const OUTPUT_TAIL = 4096;

export function templateLayersDir(layout: HomeLayout): string {
  return path.join(layout.root, 'template-layers');
}

interface LayerRecord {
  key: string;
  /** Absolute path of the file this layer is backed by, and its format. */
  backing: string;
  backing_format: 'raw' | 'qcow2';
  step_index: number;
  step_type: string;
  created_at: string;
  duration_ms: number;
  output_tail: string;
}

const layerFile = (layout: HomeLayout, key: string) => path.join(templateLayersDir(layout), `${key}.qcow2`);
const layerRecordFile = (layout: HomeLayout, key: string) => path.join(templateLayersDir(layout), `${key}.json`);

async function readLayer(layout: HomeLayout, key: string): Promise<LayerRecord | null> {
  try {
    const rec = JSON.parse(await fs.readFile(layerRecordFile(layout, key), 'utf8')) as LayerRecord;
    if (rec.key !== key || !(await exists(layerFile(layout, key))) || !(await exists(rec.backing))) return null;
    return rec;
  } catch {
    return null;
  }
}

/** Every file under a layer down to its raw base (what the build VM's jail must show read-only). */
async function chainBelow(layout: HomeLayout, rec: LayerRecord): Promise<string[]> {
  const out: string[] = [rec.backing];
  let fmt = rec.backing_format;
  let file = rec.backing;
  while (fmt === 'qcow2') {
    const below = await readLayer(layout, path.basename(file, '.qcow2'));
    if (!below) throw new ForkdError('FORKD_E_IMAGE_BUILD_FAILED', `template layer ${file} lost its record`);
    out.push(below.backing);
    fmt = below.backing_format;
    file = below.backing;
  }
  return out;
}

/** Builds (or finds cached) the image of a recipe with steps. A recipe without steps gets ensureImage's. */
export async function ensureTemplateImage(layout: HomeLayout, env: PlatformEnv, recipe: Recipe, opts: TemplateBuildOptions = {}): Promise<TemplateImage> {
  const onProgress = opts.onProgress ?? noProgress;
  if (recipe.from !== undefined) throw new ForkdError('FORKD_E_RECIPE_INVALID', `recipe ${recipe.name} extends ${recipe.from}, which was not resolved (load it with loadRecipe/resolveRecipe)`);
  const started = Date.now();
  const probe = planTemplate(recipe, 'probe');
  const base = await ensureImage(layout, probe.base, { onProgress });
  const plan = planTemplate(recipe, base.key);
  const folded: StepReport[] = plan.folded.map((i) => ({ index: i, type: 'apt', description: describeStep(recipe.steps[i]!), cached: base.cached, in_base: true, duration_ms: 0, output_tail: '' }));
  if (plan.steps.length === 0) return { ...base, recipe: recipe.name, base_key: base.key, steps: folded };

  const lastKey = plan.steps[plan.steps.length - 1]!.key;
  const cachedImage = await readImageInfo(layout, lastKey);
  const cachedReport = (p: PlannedStep, rec: LayerRecord | null): StepReport => ({ index: p.index, type: p.step.type, description: describeStep(p.step), cached: true, in_base: false, duration_ms: rec?.duration_ms ?? 0, output_tail: rec?.output_tail ?? '' });
  if (cachedImage && (await exists(cachedImage.path))) {
    const reports = await Promise.all(plan.steps.map(async (p) => cachedReport(p, await readLayer(layout, p.key))));
    onProgress({ phase: 'template', message: `template ${recipe.name}: every step cached (image ${lastKey.slice(0, 12)})`, fraction: 1 });
    return { ...cachedImage, cached: true, base_key: base.key, steps: [...folded, ...reports] };
  }

  // The longest prefix of steps whose layers are here.
  const reports: StepReport[] = [...folded];
  let first = 0;
  let below: { file: string; format: 'raw' | 'qcow2'; chain: string[] } = { file: base.path, format: 'raw', chain: [] };
  for (; first < plan.steps.length; first++) {
    const p = plan.steps[first]!;
    const rec = await readLayer(layout, p.key);
    if (!rec || rec.backing !== below.file) break;
    reports.push(cachedReport(p, rec));
    onProgress({ phase: 'template', message: `step ${p.index + 1}/${recipe.steps.length} cached: ${describeStep(p.step)}` });
    below = { file: layerFile(layout, p.key), format: 'qcow2', chain: [below.file, ...below.chain] };
  }
  if (first < plan.steps.length) {
    reports.push(...(await runSteps(layout, env, recipe, plan.steps.slice(first), below, opts)));
  }
  const image = await flatten(layout, recipe, lastKey, base, started, onProgress);
  return { ...image, cached: false, base_key: base.key, steps: reports };
}

/** Boots one build VM on `below` and runs the steps in order, keeping a layer per step. */
async function runSteps(layout: HomeLayout, env: PlatformEnv, recipe: Recipe, steps: PlannedStep[], below: { file: string; format: 'raw' | 'qcow2'; chain: string[] }, opts: TemplateBuildOptions): Promise<StepReport[]> {
  const onProgress = opts.onProgress ?? noProgress;
  const total = recipe.steps.length;
  const wantsNet = steps.some((p) => stepNeedsNetwork(p.step));
  if (wantsNet && !opts.networks) {
    const p = steps.find((s) => stepNeedsNetwork(s.step))!;
    throw new ForkdError('FORKD_E_NOT_IMPLEMENTED', `step ${p.index + 1} (${describeStep(p.step)}) needs the network in the build VM, which needs networking (a daemon running as root); put apt packages first (they join the base image) or copy a local wheel/tarball and install with network: false`, { step_index: p.index });
  }
  const networks = opts.networks ?? null;
  // Every copied file must be here, and all of them within the build's limit, before a VM boots:
  // a missing file or too many bytes fail now, not after the steps before them ran.
  let copyBytes = 0;
  for (const p of steps) {
    if (p.step.type !== 'copy') continue;
    for (const f of p.step.files) {
      const bytes = await templateFileBytes(layout, f.sha256);
      if (bytes === null) throw new ForkdError('FORKD_E_TEMPLATE_FILE_MISSING', `step ${p.index + 1} copies file ${f.sha256} to ${f.dest}, which was never uploaded (PUT /v1/template-files/${f.sha256})`, { step_index: p.index, step_type: 'copy', sha256: f.sha256 });
      copyBytes += bytes;
      const max = LIMITS.templates.maxCopyTotalBytes;
      if (copyBytes > max) throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `step ${p.index + 1} (copy to ${f.dest}) brings the template's copied files over ${max} bytes; copy less, or build the data into an earlier template`, { step_index: p.index, step_type: 'copy', max_bytes: max });
    }
  }
  await fs.mkdir(templateLayersDir(layout), { recursive: true });
  onProgress({ phase: 'template', message: `starting the build VM for steps ${steps[0]!.index + 1}-${steps[steps.length - 1]!.index + 1} of ${total}${wantsNet ? ' (with network)' : ''}` });
  const boot = await bootFromImage(env, 'template-build', {
    memMib: opts.memMib ?? recipe.default_mem_mib,
    vcpus: 1,
    imagePath: below.file,
    imageFormat: below.format,
    backingChain: below.chain,
    memShare: false,
    onProgress,
    ...(opts.starter ? { starter: opts.starter } : {}),
    ...(wantsNet ? { network: (id: string, tapOwner?: number) => networks!.create(id, { network: true, ...(tapOwner !== undefined ? { tapOwner } : {}) }) } : {}),
  });
  const vm = boot.vm;
  const reports: StepReport[] = [];
  const tmpFiles: string[] = [];
  try {
    let active = boot.diskPath; // the file the next step writes
    let backing = below;
    for (const p of steps) {
      const t0 = Date.now();
      onProgress({ phase: 'template', message: `step ${p.index + 1}/${total}: ${describeStep(p.step)}` });
      const ctx = stepContext(recipe.steps, p.index);
      const output = await runStep(layout, vm, p, ctx, (line) => onProgress({ phase: 'template-log', message: `step ${p.index + 1}: ${line}` }));
      await execOk(vm, p, { shell: 'sync' }, {}, () => undefined); // the step's writes reach the virtual disk
      // Freeze the file the step wrote: the VM now writes a new overlay on top of it.
      const next = path.join(vm.dir, `step-${p.index + 1}.qcow2`);
      await vm.qmp.execute('blockdev-snapshot-sync', { device: 'root', 'snapshot-file': next, format: 'qcow2', mode: 'absolute-paths' }, { timeoutMs: 60_000 });
      const layer = layerFile(layout, p.key);
      const tmp = path.join(templateLayersDir(layout), `${STAGING_PREFIX}${p.key.slice(0, 16)}-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
      tmpFiles.push(tmp);
      await fs.copyFile(active, tmp);
      await runTool('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-b', backing.file, '-F', backing.format, tmp]);
      await fs.chmod(tmp, 0o444);
      await fs.rename(tmp, layer);
      const rec: LayerRecord = { key: p.key, backing: backing.file, backing_format: backing.format, step_index: p.index, step_type: p.step.type, created_at: new Date().toISOString(), duration_ms: Date.now() - t0, output_tail: output };
      await writeFileAtomic(layerRecordFile(layout, p.key), JSON.stringify(rec, null, 2));
      reports.push({ index: p.index, type: p.step.type, description: describeStep(p.step), cached: false, in_base: false, duration_ms: rec.duration_ms, output_tail: output });
      onProgress({ phase: 'template', message: `step ${p.index + 1}/${total} done in ${(rec.duration_ms / 1000).toFixed(1)} s` });
      backing = { file: layer, format: 'qcow2', chain: [backing.file, ...backing.chain] };
      active = next;
    }
    return reports;
  } catch (e) {
    let err = e;
    if (e instanceof ForkdError && e.code !== 'FORKD_E_TEMPLATE_STEP_FAILED' && e.code !== 'FORKD_E_TEMPLATE_FILE_MISSING') {
      const tail = await vm.consoleTail().catch(() => '');
      if (tail) err = new ForkdError(e.code, e.message, { ...e.details, console: tail }, { cause: e });
    }
    throw err;
  } finally {
    await vm.kill();
    for (const f of tmpFiles) await fs.rm(f, { force: true });
  }
}

interface ExecReq { shell?: string; argv?: string[] }

/** Runs one command of a step; anything but exit 0 is FORKD_E_TEMPLATE_STEP_FAILED naming the step. */
async function execOk(vm: Vm, p: PlannedStep, req: ExecReq, o: { env?: Record<string, string>; cwd?: string; timeoutSecs?: number }, onLine: (l: string) => void): Promise<string> {
  const timeoutMs = (o.timeoutSecs ?? LIMITS.templates.defaultStepTimeoutSecs) * 1000;
  let tail = '';
  let partial = '';
  const feed = (c: Buffer) => {
    const text = c.toString('utf8');
    tail = (tail + text).slice(-LIMITS.templates.errorOutputChars);
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) onLine(l.slice(0, 500));
  };
  const r = await vm.agent!.exec({ ...req, ...(o.env && Object.keys(o.env).length ? { env: o.env } : {}), ...(o.cwd ? { cwd: o.cwd } : {}), timeout_ms: timeoutMs }, { timeoutMs: timeoutMs + 15_000, onStdout: feed, onStderr: feed });
  if (r.exit_code !== 0) {
    const why = r.timed_out ? `timed out after ${timeoutMs / 1000} s` : r.error ? `failed: ${r.error}` : r.signal ? `was killed by ${r.signal}` : `exited with ${r.exit_code}`;
    const output = tail || (r.stdout + r.stderr).slice(-LIMITS.templates.errorOutputChars);
    throw new ForkdError('FORKD_E_TEMPLATE_STEP_FAILED', `step ${p.index + 1} (${describeStep(p.step).slice(0, 200)}) ${why}; nothing of it was kept. Output:\n${output.slice(-2000)}`, { step_index: p.index, step_type: p.step.type, exit_code: r.exit_code, timed_out: r.timed_out, output });
  }
  return tail.slice(-OUTPUT_TAIL);
}

async function runStep(layout: HomeLayout, vm: Vm, p: PlannedStep, ctx: { envs: Record<string, string>; workdir: string | undefined }, onLine: (l: string) => void): Promise<string> {
  const s = p.step;
  const base = { env: ctx.envs, ...(ctx.workdir ? { cwd: ctx.workdir } : {}) };
  switch (s.type) {
    case 'apt':
      return execOk(vm, p, { argv: ['sh', '-c', 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" && apt-get clean && rm -rf /var/lib/apt/lists/*', 'apt', ...s.packages] }, { ...base, env: { ...ctx.envs, DEBIAN_FRONTEND: 'noninteractive' } }, onLine);
    case 'pip':
      return execOk(vm, p, { argv: ['python3', '-m', 'pip', 'install', '--no-cache-dir', '--break-system-packages', '--disable-pip-version-check', ...(s.network ? [] : ['--no-index']), ...s.packages] }, { ...base, ...(s.timeout_secs ? { timeoutSecs: s.timeout_secs } : {}) }, onLine);
    case 'npm':
      return execOk(vm, p, { argv: ['npm', 'install', ...(s.global ? ['-g'] : []), '--no-audit', '--no-fund', '--no-update-notifier', ...(s.network ? [] : ['--offline']), ...s.packages] }, { ...base, ...(s.timeout_secs ? { timeoutSecs: s.timeout_secs } : {}) }, onLine);
    case 'run': {
      const argv = typeof s.cmd === 'string' ? ['sh', '-c', s.cmd] : s.cmd;
      return execOk(vm, p, { argv: s.user ? ['runuser', '-u', s.user, '--', ...argv] : argv }, { ...base, ...(s.timeout_secs ? { timeoutSecs: s.timeout_secs } : {}) }, onLine);
    }
    case 'copy': {
      for (const f of s.files) {
        let data: Buffer;
        try {
          data = await readTemplateFile(layout, f.sha256);
        } catch (e) {
          throw e instanceof ForkdError ? new ForkdError(e.code, `step ${p.index + 1} (copy to ${f.dest}): ${e.message}`, { ...e.details, step_index: p.index, step_type: 'copy' }) : e;
        }
        await vm.agent!.writeFile(f.dest, data, { mkdirs: true, ...(f.mode !== undefined ? { mode: f.mode } : {}), timeoutMs: 120_000 });
        onLine(`${f.dest}: ${data.length} bytes`);
      }
      return `${s.files.length} file(s) copied`;
    }
    case 'workdir':
      return execOk(vm, p, { argv: ['mkdir', '-p', '--', s.path] }, {}, onLine);
    case 'env':
      return `envs ${Object.keys(s.envs).join(', ')}`;
  }
}

/** The last layer flattened into a raw image under <home>/images/<key>: what snapshots boot from. */
async function flatten(layout: HomeLayout, recipe: Recipe, key: string, base: ImageInfo, started: number, onProgress: ProgressFn): Promise<ImageInfo> {
  const dir = imageDir(layout, key);
  const staging = path.join(layout.images, `${STAGING_PREFIX}${key.slice(0, 16)}-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(staging, { recursive: true });
  try {
    onProgress({ phase: 'template', message: 'flattening the layers into the template image' });
    const imagePath = path.join(staging, 'rootfs.ext4');
    await runTool('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', layerFile(layout, key), imagePath], { timeoutMs: 600_000 });
    const info: ImageInfo = { ...base, key, recipe: recipe.name, created_at: new Date().toISOString(), path: path.join(dir, 'rootfs.ext4'), build_ms: Date.now() - started };
    await fs.chmod(imagePath, 0o444);
    await writeFileAtomic(path.join(staging, 'image.json'), JSON.stringify(info, null, 2));
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(staging, dir);
    return info;
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  }
}
