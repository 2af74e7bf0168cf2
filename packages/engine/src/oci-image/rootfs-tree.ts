/**
 * Applies image layers, in order, to a directory in the store: the tree mkfs.ext4 -d turns into
 * the image. A layer is hostile input, so no name is joined to a host path as it is: every name is
 * split into components (`..` refused), and every directory on the way is resolved inside the
 * tree, following the tree's own symlinks the way the guest will see them (an absolute target
 * starts again at the tree's root, `..` stops there), so nothing lands outside it. Whiteouts
 * (`.wh.NAME`, `.wh..wh..opq`) remove what lower layers put there, as overlayfs would.
 */
import { promises as fs, createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { ForkdError } from '@forkd/protocol';
import { runTool } from '../qemu/tools.js';
import type { LayerEntry } from './layer-tar.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const MAX_SYMLINK_HOPS = 40;

export interface TreeStats {
  files: number;
  bytes: number;
  skippedDevices: number;
  xattrsSkipped: number;
}

/** The components of an entry name, or a FORKD_E_ARTIFACT_UNSAFE_PATH error. "./a//b/" is a/b; "/" or "." is the root ([]). */
export function nameComponents(name: string): string[] {
  if (name.includes('\0')) throw new ForkdError('FORKD_E_ARTIFACT_UNSAFE_PATH', `layer entry name contains NUL: ${JSON.stringify(name.slice(0, 80))}`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new ForkdError('FORKD_E_ARTIFACT_UNSAFE_PATH', `layer entry name contains "..": ${JSON.stringify(name.slice(0, 200))}`);
  return parts;
}

export class RootfsTree {
  readonly stats: TreeStats = { files: 0, bytes: 0, skippedDevices: 0, xattrsSkipped: 0 };
  /** Paths (relative, "/"-joined) the current layer created: an opaque marker keeps them. */
  private layerPaths = new Set<string>();
  private setfattr: boolean | null = null;

  constructor(
    readonly root: string,
    /** Total file bytes allowed (the disk asked for): a bigger image is refused before it fills the store. */
    private readonly maxBytes: number,
  ) {}

  startLayer(): void {
    this.layerPaths = new Set();
  }

  /**
   * The host path of a directory given by components, resolved inside the tree (symlinks
   * followed, clamped at the root). Missing directories are created when `create`.
   */
  private async resolveDir(components: string[], create: boolean, hops = { n: 0 }): Promise<{ host: string; rel: string[] }> {
    let rel: string[] = [];
    const queue = [...components];
    while (queue.length > 0) {
      const c = queue.shift()!;
      const host = path.join(this.root, ...rel, c);
      let st;
      try {
        st = await fs.lstat(host);
      } catch {
        if (!create) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `layer names ${[...rel, c].join('/')}, which does not exist`);
        await fs.mkdir(host, { mode: 0o755 });
        rel = [...rel, c];
        continue;
      }
      if (st.isSymbolicLink()) {
        if (++hops.n > MAX_SYMLINK_HOPS) throw new ForkdError('FORKD_E_ARTIFACT_UNSAFE_PATH', `too many symlinks resolving ${components.join('/')}`);
        const target = await fs.readlink(host);
        const t = target.split('/').filter((p) => p !== '' && p !== '.');
        const base = target.startsWith('/') ? [] : rel;
        const next: string[] = [...base];
        for (const p of t) {
          if (p === '..') next.pop();
          else next.push(p);
        }
        rel = [];
        queue.unshift(...next);
        continue;
      }
      if (!st.isDirectory()) {
        if (!create) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${[...rel, c].join('/')} is not a directory`);
        await fs.rm(host, { force: true });
        await fs.mkdir(host, { mode: 0o755 });
      }
      rel = [...rel, c];
    }
    return { host: path.join(this.root, ...rel), rel };
  }

  async apply(e: LayerEntry, data: AsyncIterable<Buffer>): Promise<void> {
    const parts = nameComponents(e.name);
    if (parts.length === 0) return; // the root itself: its mode is ours
    const base = parts[parts.length - 1]!;
    const parent = await this.resolveDir(parts.slice(0, -1), true);
    if (base === OPAQUE) return this.opaque(parent);
    if (base.startsWith(WHITEOUT)) {
      const victim = base.slice(WHITEOUT.length);
      if (victim === '' || victim === '.' || victim === '..') throw new ForkdError('FORKD_E_ARTIFACT_UNSAFE_PATH', `bad whiteout ${e.name}`);
      await fs.rm(path.join(parent.host, victim), { recursive: true, force: true });
      return;
    }
    const target = path.join(parent.host, base);
    this.layerPaths.add([...parent.rel, base].join('/'));
    const existing = await fs.lstat(target).catch(() => null);
    if (e.type === 'dir') {
      if (existing && !existing.isDirectory()) await fs.rm(target, { recursive: true, force: true });
      if (!existing || !existing.isDirectory()) await fs.mkdir(target);
    } else {
      if (existing) await fs.rm(target, { recursive: true, force: true });
      await this.create(e, target, data);
    }
    // A hard link is the inode its target already set up; devices are skipped.
    if (e.type === 'char' || e.type === 'block' || e.type === 'hardlink') return;
    await fs.lchown(target, e.uid, e.gid);
    if (e.type !== 'symlink') await fs.chmod(target, e.mode);
    await this.xattrs(target, e.xattrs);
    await fs.lutimes(target, e.mtime, e.mtime).catch(() => undefined);
  }

  private async create(e: LayerEntry, target: string, data: AsyncIterable<Buffer>): Promise<void> {
    switch (e.type) {
      case 'file': {
        this.stats.files++;
        this.stats.bytes += e.size;
        if (this.stats.bytes > this.maxBytes) throw new ForkdError('FORKD_E_IMAGE_TOO_LARGE', `the image's files exceed the ${Math.round(this.maxBytes / 1048576)} MiB disk asked for (ask for a larger disk)`, { max_bytes: this.maxBytes });
        await pipeline(Readable.from(data), createWriteStream(target, { flags: 'wx', mode: 0o600 }));
        return;
      }
      case 'symlink':
        await fs.symlink(e.linkname, target);
        return;
      case 'hardlink': {
        const lp = nameComponents(e.linkname);
        if (lp.length === 0) throw new ForkdError('FORKD_E_ARTIFACT_UNSAFE_PATH', `hard link ${e.name} to the root`);
        const dir = await this.resolveDir(lp.slice(0, -1), false);
        const source = path.join(dir.host, lp[lp.length - 1]!);
        const st = await fs.lstat(source).catch(() => null);
        if (!st || st.isDirectory()) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `hard link ${e.name} names ${e.linkname}, which is not a file in the image`);
        await fs.link(source, target);
        return;
      }
      case 'fifo':
        await runTool('mkfifo', ['-m', '600', target]);
        return;
      case 'char':
      case 'block':
        // The guest's /dev is a devtmpfs: device nodes in an image are never used.
        this.stats.skippedDevices++;
        return;
    }
  }

  /** Writes a file of forkd's own (e.g. etc/resolv.conf) inside the tree, replacing whatever the image had there. */
  async writeFile(components: string[], content: string): Promise<void> {
    const parent = await this.resolveDir(components.slice(0, -1), true);
    const target = path.join(parent.host, components[components.length - 1]!);
    await fs.rm(target, { recursive: true, force: true });
    await fs.writeFile(target, content, { mode: 0o644, flag: 'wx' });
  }

  /** `.wh..wh..opq`: the directory shows nothing from lower layers. */
  private async opaque(dir: { host: string; rel: string[] }): Promise<void> {
    for (const name of await fs.readdir(dir.host)) {
      const rel = [...dir.rel, name].join('/');
      if (!this.layerPaths.has(rel)) await fs.rm(path.join(dir.host, name), { recursive: true, force: true });
    }
  }

  /** Extended attributes (file capabilities matter: ping's cap_net_raw); set with setfattr when it is installed. */
  private async xattrs(target: string, xattrs: Record<string, Buffer>): Promise<void> {
    const names = Object.keys(xattrs);
    if (names.length === 0) return;
    if (this.setfattr === null) this.setfattr = await runTool('setfattr', ['--version']).then(() => true, () => false);
    for (const n of names) {
      if (!this.setfattr || !/^(security|user|trusted)\.[A-Za-z0-9._-]{1,200}$/.test(n)) {
        this.stats.xattrsSkipped++;
        continue;
      }
      await runTool('setfattr', ['-h', '-n', n, '-v', `0s${xattrs[n]!.toString('base64')}`, target]);
    }
  }
}
