import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { z } from 'zod';
import { ForkdError } from '@forkd/protocol';
import { GUEST_DIR } from '@forkd/agent/bundle-path';
import { type HomeLayout, imageDir, STAGING_PREFIX } from '../home/paths.js';
import { AGENT_PACKAGES, type Recipe } from '../recipe/recipe.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { exists, sha256, writeFileAtomic } from '../util/fsx.js';
import { stagingOwnerSuffix } from '../util/staging.js';
import { runTool } from '../qemu/tools.js';
import { debootstrap } from './debootstrap.js';
import { GUEST_HOSTS, GUEST_INIT_SCRIPT, GUEST_RESOLV_CONF } from './guest-init.js';
import { compileGuestHelpers, GUEST_HELPERS } from './guest-helpers.js';

/**
 * The guest library (forkd.fork() from inside the VM), bundle file -> where in the image: Debian's
 * python3 has /usr/lib/python3/dist-packages on sys.path, Debian's node has /usr/share/nodejs in its
 * global require paths, and /node_modules (the root's) is where ESM `import 'forkd'` finds it from anywhere.
 */
export const GUEST_LIBRARY = [
  { file: 'forkd.py', to: ['usr/lib/python3/dist-packages/forkd.py'] },
  { file: 'forkd.cjs', to: ['usr/share/nodejs/forkd/index.js', 'node_modules/forkd/index.js'] },
] as const;

/** Bump when the way images are assembled changes, so old cached images are not reused. */
const BUILDER_VERSION = 1;

export const ImageInfoSchema = z.object({
  key: z.string(),
  recipe: z.string(),
  suite: z.string(),
  packages: z.array(z.string()),
  disk_mib: z.number().int(),
  agent_sha256: z.string(),
  created_at: z.string(),
  path: z.string(),
  build_ms: z.number(),
});
export type ImageInfo = z.output<typeof ImageInfoSchema>;

async function agentFiles(): Promise<Array<{ name: string; data: Buffer }>> {
  let names: string[];
  try {
    names = (await fs.readdir(GUEST_DIR)).sort();
  } catch {
    throw new ForkdError('FORKD_E_INTERNAL', `guest agent bundle missing at ${GUEST_DIR}: run \`npm run build\``);
  }
  if (!names.includes('agent.mjs') || GUEST_HELPERS.some((h) => !names.includes(h.source)) || GUEST_LIBRARY.some((l) => !names.includes(l.file))) throw new ForkdError('FORKD_E_INTERNAL', `guest agent bundle incomplete at ${GUEST_DIR}: run \`npm run build\``);
  return Promise.all(names.map(async (name) => ({ name, data: await fs.readFile(path.join(GUEST_DIR, name)) })));
}

function packageList(recipe: Recipe): string[] {
  return [...new Set([...AGENT_PACKAGES, ...recipe.packages])].sort();
}

/** Content key of an image: every input that changes its bytes. */
export async function imageKey(recipe: Recipe): Promise<{ key: string; agentSha: string; packages: string[] }> {
  const files = await agentFiles();
  const agentSha = sha256(JSON.stringify(files.map((f) => [f.name, sha256(f.data)])));
  const packages = packageList(recipe);
  const key = sha256(JSON.stringify({ v: BUILDER_VERSION, suite: recipe.suite, packages, disk: recipe.disk_mib, agentSha, init: GUEST_INIT_SCRIPT, hosts: GUEST_HOSTS, resolv: GUEST_RESOLV_CONF, helpers: GUEST_HELPERS, library: GUEST_LIBRARY }));
  return { key, agentSha, packages };
}

export async function readImageInfo(layout: HomeLayout, key: string): Promise<ImageInfo | null> {
  try {
    return ImageInfoSchema.parse(JSON.parse(await fs.readFile(path.join(imageDir(layout, key), 'image.json'), 'utf8')));
  } catch {
    return null;
  }
}

export async function listImages(layout: HomeLayout): Promise<ImageInfo[]> {
  let names: string[] = [];
  try {
    names = await fs.readdir(layout.images);
  } catch {
    return [];
  }
  const infos = await Promise.all(names.filter((n) => !n.startsWith('.')).map((n) => readImageInfo(layout, n)));
  return infos.filter((i): i is ImageInfo => i !== null);
}

/** Builds (or finds cached) the root filesystem image for a recipe. */
export async function ensureImage(layout: HomeLayout, recipe: Recipe, opts: { onProgress?: ProgressFn; rebuild?: boolean } = {}): Promise<ImageInfo & { cached: boolean }> {
  const onProgress = opts.onProgress ?? noProgress;
  const { key, agentSha, packages } = await imageKey(recipe);
  const dir = imageDir(layout, key);
  if (!opts.rebuild) {
    const info = await readImageInfo(layout, key);
    if (info && (await exists(info.path))) {
      onProgress({ phase: 'image', message: `image ${key.slice(0, 12)} (recipe ${recipe.name}) is cached`, fraction: 1 });
      return { ...info, cached: true };
    }
  }
  const started = Date.now();
  const rootfs = await ensureRootfs(layout, recipe.suite, packages, onProgress);
  await fs.mkdir(layout.images, { recursive: true });
  const staging = path.join(layout.images, `${STAGING_PREFIX}${key.slice(0, 16)}-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(staging, { recursive: true });
  try {
    const tree = path.join(staging, 'rootfs');
    onProgress({ phase: 'image', message: 'copying base root filesystem' });
    await runTool('cp', ['-a', '--reflink=auto', rootfs, tree]);
    onProgress({ phase: 'image', message: 'installing the forkd agent' });
    await installAgent(tree);
    const imagePath = path.join(staging, 'rootfs.ext4');
    onProgress({ phase: 'image', message: `mkfs.ext4 (${recipe.disk_mib} MiB)` });
    await runTool('mkfs.ext4', ['-q', '-F', '-L', 'forkd-root', '-m', '0', '-E', 'root_owner=0:0', '-d', tree, imagePath, `${recipe.disk_mib}M`]);
    await fs.rm(tree, { recursive: true, force: true });
    const info: ImageInfo = {
      key,
      recipe: recipe.name,
      suite: recipe.suite,
      packages,
      disk_mib: recipe.disk_mib,
      agent_sha256: agentSha,
      created_at: new Date().toISOString(),
      path: path.join(dir, 'rootfs.ext4'),
      build_ms: Date.now() - started,
    };
    await fs.chmod(imagePath, 0o444);
    await writeFileAtomic(path.join(staging, 'image.json'), JSON.stringify(info, null, 2));
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(staging, dir);
    onProgress({ phase: 'image', message: `image ${key.slice(0, 12)} built in ${((Date.now() - started) / 1000).toFixed(1)} s`, fraction: 1 });
    return { ...info, cached: false };
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  }
}

async function installAgent(tree: string): Promise<void> {
  const opt = path.join(tree, 'opt', 'forkd');
  await fs.mkdir(opt, { recursive: true });
  for (const f of await agentFiles()) await fs.writeFile(path.join(opt, f.name), f.data, { mode: 0o644 });
  await compileGuestHelpers(opt);
  for (const lib of GUEST_LIBRARY) {
    for (const to of lib.to) {
      const dest = path.join(tree, to);
      await fs.mkdir(path.dirname(dest), { recursive: true });
      await fs.copyFile(path.join(opt, lib.file), dest);
      await fs.chmod(dest, 0o644);
      // CommonJS whatever a parent directory's package.json says; `import 'forkd'` works from ESM too.
      if (to.endsWith('/index.js')) await fs.writeFile(path.join(path.dirname(dest), 'package.json'), '{"name":"forkd","main":"index.js","type":"commonjs"}\n', { mode: 0o644 });
    }
  }
  await fs.writeFile(path.join(tree, 'sbin', 'forkd-init'), GUEST_INIT_SCRIPT, { mode: 0o755 });
  await fs.writeFile(path.join(tree, 'etc', 'hostname'), 'forkd\n');
  await fs.writeFile(path.join(tree, 'etc', 'hosts'), GUEST_HOSTS);
  // Replaces whatever debootstrap left (a copy of the build host's, or a dangling symlink).
  await fs.rm(path.join(tree, 'etc', 'resolv.conf'), { force: true });
  await fs.writeFile(path.join(tree, 'etc', 'resolv.conf'), GUEST_RESOLV_CONF);
}

/** debootstrap output for a package set, cached: only agent changes then need just copy + mkfs. */
async function ensureRootfs(layout: HomeLayout, suite: string, packages: string[], onProgress: ProgressFn): Promise<string> {
  const key = sha256(JSON.stringify({ suite, packages, mirror: process.env.FORKD_DEBIAN_MIRROR ?? '' })).slice(0, 32);
  const dir = path.join(layout.rootfsCache, key);
  const marker = `${dir}.complete`;
  if ((await exists(marker)) && (await exists(dir))) return dir;
  await fs.mkdir(layout.debCache, { recursive: true });
  const staging = path.join(layout.rootfsCache, `${STAGING_PREFIX}${key}-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(staging, { recursive: true });
  try {
    onProgress({ phase: 'debootstrap', message: `debootstrap ${suite} minbase + ${packages.join(' ')}`, fraction: 0 });
    await debootstrap({ dir: staging, suite, packages, cacheDir: layout.debCache, onProgress });
    // Shrink: package lists and downloaded archives are not needed in the guest.
    for (const sub of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      const d = path.join(staging, sub);
      for (const e of await fs.readdir(d).catch(() => [] as string[])) {
        if (e.endsWith('.deb') || (sub.endsWith('lists') && e !== 'lock' && e !== 'partial')) await fs.rm(path.join(d, e), { force: true, recursive: true });
      }
    }
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(staging, dir);
    await writeFileAtomic(marker, new Date().toISOString());
    return dir;
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  }
}
