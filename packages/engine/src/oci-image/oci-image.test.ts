/**
 * OCI image to forkd image, the host half (no VM): layer tars read, layers applied with
 * whiteouts, hard links and ownership, every escape refused, sources resolved to linux/amd64.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { readLayerTar } from './layer-tar.js';
import { RootfsTree, nameComponents } from './rootfs-tree.js';
import { resolveImage, layoutDirSource, dockerArchiveSource } from './source.js';
import { runtimeConfigOf } from './build.js';
import { realpathInRoot } from './runtime.js';
import { tarOf, imageOf, writeLayoutDir, type TestEntry } from '../testing/oci-image.js';
import { sha256Digest } from '../oci/digest.js';

let tmp = '';
before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-oci-image-'));
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const code = (c: string) => (e: unknown) => e instanceof ForkdError && e.code === c;
async function* once(b: Buffer): AsyncGenerator<Uint8Array> {
  // odd chunk sizes: the reader must not depend on block-aligned chunks
  for (let i = 0; i < b.length; i += 333) yield b.subarray(i, i + 333);
}

let n = 0;
async function applyLayers(layers: TestEntry[][], maxBytes = 1 << 30): Promise<string> {
  const root = path.join(tmp, `root-${++n}`);
  await fs.mkdir(root);
  const tree = new RootfsTree(root, maxBytes);
  for (const l of layers) {
    tree.startLayer();
    await readLayerTar(once(tarOf(l)), (e, d) => tree.apply(e, d));
  }
  return root;
}

test('entry names: ./a//b is a/b, ".." anywhere is refused', () => {
  assert.deepEqual(nameComponents('./a//b/'), ['a', 'b']);
  assert.deepEqual(nameComponents('/etc/passwd'), ['etc', 'passwd']);
  assert.throws(() => nameComponents('a/../../etc/passwd'), code('FORKD_E_ARTIFACT_UNSAFE_PATH'));
});

test('layers apply in order: whiteouts remove, an opaque dir hides the lower layer, hard links share an inode', async () => {
  const root = await applyLayers([
    [{ name: 'etc/a', type: 'file', data: 'one' }, { name: 'etc/gone', type: 'file', data: 'x' }, { name: 'd/old', type: 'file', data: 'o' }, { name: 'bin/tool', type: 'file', data: 'elf', mode: 0o755, uid: 5, gid: 6 }],
    [{ name: 'etc/.wh.gone', type: 'file', data: '' }, { name: 'd/new', type: 'file', data: 'n' }, { name: 'd/.wh..wh..opq', type: 'file', data: '' }, { name: 'etc/a', type: 'file', data: 'two' }, { name: 'bin/tool2', type: 'hardlink', target: 'bin/tool' }],
  ]);
  assert.equal(await fs.readFile(path.join(root, 'etc/a'), 'utf8'), 'two');
  await assert.rejects(fs.stat(path.join(root, 'etc/gone')));
  assert.deepEqual(await fs.readdir(path.join(root, 'd')), ['new'], 'the opaque marker keeps what its own layer added, even before it');
  const [s1, s2] = await Promise.all([fs.stat(path.join(root, 'bin/tool')), fs.stat(path.join(root, 'bin/tool2'))]);
  assert.equal(s1.ino, s2.ino);
  assert.equal(s1.mode & 0o7777, 0o755);
  assert.deepEqual([s1.uid, s1.gid], [5, 6]);
});

test('a symlink in the image never leads a later entry outside the tree', async () => {
  const outside = path.join(tmp, 'outside');
  await fs.mkdir(outside, { recursive: true });
  const root = await applyLayers([
    [{ name: 'escape', type: 'symlink', target: outside }, { name: 'up', type: 'symlink', target: '../../../..' }],
    [{ name: 'escape/pwned', type: 'file', data: 'x' }, { name: 'up/tmp/pwned2', type: 'file', data: 'y' }],
  ]);
  assert.deepEqual(await fs.readdir(outside), [], 'nothing written at the absolute target on the host');
  // the absolute target is re-rooted in the tree; ".." stops at the tree's root
  assert.equal(await fs.readFile(path.join(root, outside, 'pwned'), 'utf8'), 'x');
  assert.equal(await fs.readFile(path.join(root, 'tmp/pwned2'), 'utf8'), 'y');
});

test('a hard link to something that is not in the image is refused; so is ".."', async () => {
  await assert.rejects(applyLayers([[{ name: 'x', type: 'hardlink', target: 'etc/shadow' }]]), code('FORKD_E_ARTIFACT_INVALID'));
  await assert.rejects(applyLayers([[{ name: 'x', type: 'hardlink', target: '../../etc/passwd' }]]), code('FORKD_E_ARTIFACT_UNSAFE_PATH'));
  await assert.rejects(applyLayers([[{ name: '../x', type: 'file', data: 'z' }]]), code('FORKD_E_ARTIFACT_UNSAFE_PATH'));
});

test('files beyond the disk asked for are FORKD_E_IMAGE_TOO_LARGE; a short tar is TRUNCATED', async () => {
  await assert.rejects(applyLayers([[{ name: 'big', type: 'file', data: Buffer.alloc(5000) }]], 4096), code('FORKD_E_IMAGE_TOO_LARGE'));
  const t = tarOf([{ name: 'f', type: 'file', data: Buffer.alloc(2000, 1) }]);
  await assert.rejects(readLayerTar(once(t.subarray(0, 1200)), async () => undefined), code('FORKD_E_ARTIFACT_TRUNCATED'));
  const bad = Buffer.from(t);
  bad[0] = 0x41; // checksum no longer matches
  await assert.rejects(readLayerTar(once(bad), async () => undefined), code('FORKD_E_ARTIFACT_INVALID'));
});

test('sources: an index resolves to linux/amd64; other platforms and unknown manifest types are refused', async () => {
  const img = imageOf([[{ name: 'a', type: 'file', data: 'a' }]], {});
  const dir = path.join(tmp, 'layout');
  await writeLayoutDir(dir, img);
  const r = await resolveImage(layoutDirSource(dir), null);
  assert.equal(r.manifestDigest, sha256Digest(img.manifest));
  assert.equal(r.layers.length, 1);

  const arm = path.join(tmp, 'layout-arm');
  await writeLayoutDir(arm, img);
  const idx = JSON.parse(await fs.readFile(path.join(arm, 'index.json'), 'utf8'));
  idx.manifests[0].platform = { os: 'linux', architecture: 'arm64' };
  await fs.writeFile(path.join(arm, 'index.json'), JSON.stringify(idx));
  await assert.rejects(resolveImage(layoutDirSource(arm), null), (e: unknown) => code('FORKD_E_IMAGE_PLATFORM')(e) && /linux\/arm64/.test((e as Error).message));

  const odd = path.join(tmp, 'layout-odd');
  await writeLayoutDir(odd, img);
  const oddManifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.thing+json', config: {}, layers: [] }));
  await fs.writeFile(path.join(odd, 'blobs/sha256', sha256Digest(oddManifest).slice(7)), oddManifest);
  await fs.writeFile(path.join(odd, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.example.thing+json', digest: sha256Digest(oddManifest), size: oddManifest.length, platform: { os: 'linux', architecture: 'amd64' } }] }));
  await assert.rejects(resolveImage(layoutDirSource(odd), null), (e: unknown) => code('FORKD_E_ARTIFACT_INVALID')(e) && /unknown manifest type/.test((e as Error).message));
});

test('a docker save archive (manifest.json + layer.tar) reads as an image whose layers are checked by diff_id', async () => {
  const layer = tarOf([{ name: 'hello', type: 'file', data: 'hi' }]);
  const cfg = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', config: { Env: ['A=1'] }, rootfs: { type: 'layers', diff_ids: [sha256Digest(layer)] } }));
  const archive = tarOf([
    { name: 'manifest.json', type: 'file', data: JSON.stringify([{ Config: 'cfg.json', RepoTags: ['x:latest'], Layers: ['abc/layer.tar', 'dup/layer.tar'] }]) },
    { name: 'cfg.json', type: 'file', data: cfg },
    { name: 'abc/layer.tar', type: 'file', data: layer },
    { name: 'dup/layer.tar', type: 'symlink', target: '../abc/layer.tar' },
  ]);
  const file = path.join(tmp, 'save.tar');
  await fs.writeFile(file, archive);
  const staging = path.join(tmp, 'save-staging');
  await fs.mkdir(staging);
  const src = await dockerArchiveSource(file, staging);
  const r = await resolveImage(src, null);
  assert.equal(r.layers.length, 2);
  assert.equal(r.layers[0]!.digest, sha256Digest(layer));
  assert.equal(r.config.digest, sha256Digest(cfg));
});

test('image config: Env becomes a map, WorkingDir must be absolute', () => {
  assert.deepEqual(runtimeConfigOf(['PATH=/bin:/usr/bin', 'X=a=b', 'bad-name=1', 'NOEQ'], 'rel/dir', 'app'), { env: { PATH: '/bin:/usr/bin', X: 'a=b' }, workdir: null, user: 'app' });
});

test('runtime libraries: absolute and relative symlinks of the Debian root resolve inside it', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-root-'));
  try {
    await fs.mkdir(path.join(root, 'lib/x86_64-linux-gnu'), { recursive: true });
    await fs.mkdir(path.join(root, 'lib64'));
    await fs.writeFile(path.join(root, 'lib/x86_64-linux-gnu/ld-2.so'), 'x');
    await fs.symlink('ld-2.so', path.join(root, 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'));
    await fs.symlink('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', path.join(root, 'lib64/ld-linux-x86-64.so.2'));
    assert.equal(await realpathInRoot(root, '/lib64/ld-linux-x86-64.so.2'), path.join(root, 'lib/x86_64-linux-gnu/ld-2.so'));
    await fs.symlink('/../../../etc/passwd', path.join(root, 'lib64/escape'));
    await assert.rejects(realpathInRoot(root, '/lib64/escape'), /ENOENT/);
    await fs.symlink('loop', path.join(root, 'lib64/loop'));
    await assert.rejects(realpathInRoot(root, '/lib64/loop'), /too many symlinks/);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
