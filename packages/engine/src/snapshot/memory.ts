/**
 * Guest memory of snapshots. A flat snapshot holds its whole RAM in memory.bin. A layer (branch,
 * diff) holds only the pages that differ from its parent's RAM: memory.layer (sparse, pages at
 * their offsets) plus memory.pages (a bitmap, 1 bit per 4 KiB page: a page that became all zeros
 * is in the bitmap and a hole in the file). Children need one whole image to map, so each layer's
 * full image is assembled once and kept in <snapshots>/.memory/ (same filesystem as the snapshots,
 * so images move there by rename), keyed by the snapshot instance: spawning from a chain head costs
 * what spawning from a flat snapshot costs.
 */
import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import { runTool } from '../qemu/tools.js';
import { sealForJail } from '../qemu/jail.js';
import { exists, fsyncPath } from '../util/fsx.js';
import { PAGE_SIZE, isLayer, type SnapshotManifest } from './manifest.js';
import { readSnapshot, type SnapshotEntry } from './store.js';
import { ancestors } from './chain.js';

const CHUNK = 8 * 1024 * 1024;

export function memoryCacheDir(layout: HomeLayout): string {
  return path.join(layout.snapshots, '.memory');
}

/** The assembled image of a layer: the tag plus its vmstate hash, so a re-created tag never reuses a stale image. */
export function assembledPath(layout: HomeLayout, m: SnapshotManifest): string {
  return path.join(memoryCacheDir(layout), `${m.tag}-${m.files.vmstate.sha256.slice(0, 16)}.bin`);
}

const building = new Map<string, Promise<string>>();

/** The file children map: memory.bin of a flat snapshot, the assembled image of a layer (built if missing). */
export async function memoryFileFor(layout: HomeLayout, entry: SnapshotEntry): Promise<string> {
  if (!isLayer(entry.manifest)) return path.join(entry.dir, 'memory.bin');
  const target = assembledPath(layout, entry.manifest);
  if (await exists(target)) return target;
  let p = building.get(target);
  if (!p) {
    p = assemble(layout, entry, target).finally(() => building.delete(target));
    building.set(target, p);
  }
  return p;
}

/** Rebuilds a layer's image: the nearest ancestor with a whole image, then each layer's pages in order. */
async function assemble(layout: HomeLayout, head: SnapshotEntry, target: string): Promise<string> {
  await ancestors(layout, head); // a broken or re-created chain must not be assembled
  const chain: SnapshotEntry[] = [head];
  let base: string | null = null;
  for (let e = head; ; ) {
    const parentTag = e.manifest.parent_tag;
    if (parentTag === null) throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `layer ${e.tag} has no parent`);
    if (chain.length > 256) throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `the chain of ${head.tag} is too deep or has a cycle`);
    const parent = await readSnapshot(layout, parentTag).catch(() => {
      throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot ${e.tag} depends on ${parentTag}, which is missing`, { missing: parentTag });
    });
    if (!isLayer(parent.manifest)) {
      base = path.join(parent.dir, 'memory.bin');
      break;
    }
    const cached = assembledPath(layout, parent.manifest);
    if (await exists(cached)) {
      base = cached;
      break;
    }
    chain.unshift(parent);
    e = parent;
  }
  await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  const tmp = `${target}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    await runTool('cp', ['--sparse=always', base, tmp]);
    const fh = await fs.open(tmp, fsc.O_RDWR);
    try {
      for (const layer of chain) await applyLayer(fh, layer.dir);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await sealForJail(tmp); // a guest's RAM: the daemon's, readable by VMs through their view, nobody else
    await fs.rename(tmp, target);
    return target;
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** Contiguous runs of set bits in a page bitmap. */
export function* pageRuns(bitmap: Uint8Array, pages: number): Generator<[number, number]> {
  let i = 0;
  while (i < pages) {
    if ((bitmap[i >> 3]! & (1 << (i & 7))) === 0) {
      i++;
      continue;
    }
    const start = i;
    while (i < pages && (bitmap[i >> 3]! & (1 << (i & 7))) !== 0) i++;
    yield [start, i - start];
  }
}

async function applyLayer(target: fs.FileHandle, dir: string): Promise<void> {
  const bitmap = await fs.readFile(path.join(dir, 'memory.pages'));
  const layer = await fs.open(path.join(dir, 'memory.layer'), 'r');
  const buf = Buffer.alloc(CHUNK);
  try {
    for (const [first, count] of pageRuns(bitmap, bitmap.length * 8)) {
      for (let off = first * PAGE_SIZE, end = (first + count) * PAGE_SIZE; off < end; off += CHUNK) {
        const n = Math.min(CHUNK, end - off);
        const { bytesRead } = await layer.read(buf, 0, n, off);
        if (bytesRead < n) buf.fill(0, bytesRead, n); // a trailing hole reads short
        await target.write(buf, 0, n, off);
      }
    }
  } finally {
    await layer.close();
  }
}

/**
 * Writes the layer of `full` over `parent` (two whole images of the same size): the differing
 * pages go to layerPath at their offsets, their bitmap to pagesPath. Returns the changed pages.
 */
export async function writeLayer(full: string, parent: string, layerPath: string, pagesPath: string): Promise<{ changedPages: number }> {
  const size = (await fs.stat(full)).size;
  if ((await fs.stat(parent)).size !== size) throw new ForkdError('FORKD_E_SNAPSHOT_FAILED', 'memory images of a layer and its parent differ in size');
  const pages = Math.ceil(size / PAGE_SIZE);
  const bitmap = new Uint8Array(Math.ceil(pages / 8));
  const a = await fs.open(full, 'r');
  const b = await fs.open(parent, 'r');
  const out = await fs.open(layerPath, 'wx', 0o400); // read by the daemon only (assembly)
  const bufA = Buffer.alloc(CHUNK);
  const bufB = Buffer.alloc(CHUNK);
  let changed = 0;
  try {
    await out.truncate(size);
    for (let off = 0; off < size; off += CHUNK) {
      const n = Math.min(CHUNK, size - off);
      const [ra, rb] = await Promise.all([a.read(bufA, 0, n, off), b.read(bufB, 0, n, off)]);
      if (ra.bytesRead < n) bufA.fill(0, ra.bytesRead, n);
      if (rb.bytesRead < n) bufB.fill(0, rb.bytesRead, n);
      if (bufA.compare(bufB, 0, n, 0, n) === 0) continue;
      let runStart = -1;
      const flush = async (end: number) => {
        if (runStart >= 0) await out.write(bufA, runStart, end - runStart, off + runStart);
        runStart = -1;
      };
      for (let p = 0; p < n; p += PAGE_SIZE) {
        const e = Math.min(p + PAGE_SIZE, n);
        if (bufA.compare(bufB, p, e, p, e) === 0) {
          await flush(p);
          continue;
        }
        const page = (off + p) / PAGE_SIZE;
        bitmap[page >> 3]! |= 1 << (page & 7);
        changed++;
        // Changed to all zeros: the bitmap records it; the layer keeps a hole.
        if (isZero(bufA, p, e)) await flush(p);
        else if (runStart < 0) runStart = p;
      }
      await flush(n);
    }
    await out.sync();
  } finally {
    await Promise.all([a.close(), b.close(), out.close()]);
  }
  await fs.writeFile(pagesPath, bitmap, { mode: 0o400, flag: 'wx' });
  await fsyncPath(pagesPath);
  return { changedPages: changed };
}

const ZERO = Buffer.alloc(PAGE_SIZE);
function isZero(buf: Buffer, start: number, end: number): boolean {
  return buf.compare(ZERO, 0, end - start, start, end) === 0;
}

/** Removes assembled images whose snapshot no longer exists (or was re-created). */
export async function pruneMemoryCache(layout: HomeLayout, live: SnapshotManifest[], dryRun: boolean): Promise<string[]> {
  const keep = new Set(live.filter(isLayer).map((m) => assembledPath(layout, m)));
  const dir = memoryCacheDir(layout);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const out: string[] = [];
  for (const n of names) {
    const p = path.join(dir, n);
    if (keep.has(p)) continue;
    // A tmp file may be an image being assembled right now: only old ones are abandoned.
    if (n.endsWith('.tmp') && Date.now() - (await fs.stat(p).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs < 600_000) continue;
    out.push(p);
    if (!dryRun) await fs.rm(p, { force: true });
  }
  return out;
}
