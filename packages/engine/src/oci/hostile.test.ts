/**
 * Packs from elsewhere: a valid one lands whole (sparse memory, disk layer rebased onto this
 * store's image); each hostile one is refused with its own code, with nothing written outside the
 * unpack's staging and nothing left in it. No VM: the host is described (SYNTH_HOST), the tools
 * (zstd, qemu-img) are real.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { homeLayout, type HomeLayout } from '../home/paths.js';
import { readSnapshot } from '../snapshot/store.js';
import { runTool } from '../qemu/tools.js';
import { SYNTH_HOST, synthFiles, synthLink, type SynthFiles } from '../testing/oci-artifact.js';
import { writePack } from './layout.js';
import { unpackFor } from './ops.js';
import { tarHeader, tarPadding, TAR_END } from './tar.js';
import { MEDIA, ANNOTATION } from './format.js';
import type { ExportedLink } from './export.js';
import { sha256Digest } from './digest.js';

let tmp: string;
let synth: SynthFiles;
let valid: ExportedLink;

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-oci-hostile-'));
  synth = await synthFiles(path.join(tmp, 'src'));
  valid = await synthLink(synth);
});
after(async () => fs.rm(tmp, { recursive: true, force: true }));

let n = 0;
async function freshStore(): Promise<HomeLayout> {
  const layout = homeLayout(path.join(tmp, `home-${n++}`));
  await fs.mkdir(layout.snapshots, { recursive: true });
  await fs.mkdir(layout.images, { recursive: true }); // the store's own directories exist; nothing goes in them
  return layout;
}

/** Everything under the store, so a refused unpack can be shown to have left nothing. */
async function storeListing(layout: HomeLayout): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      out.push(path.relative(layout.root, p));
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(layout.root);
  return out.sort();
}

interface RawEntry {
  name: string;
  data?: Buffer;
  flag?: string;
  size?: number;
}

function rawHeader(e: RawEntry): Buffer {
  const size = e.size ?? e.data?.length ?? 0;
  const h = tarHeader('x', size, 'file', 0);
  h.fill(0, 0, 100);
  h.write(e.name.slice(0, 100), 0, 'utf8');
  if (e.flag) h.write(e.flag, 156, 'ascii');
  if (e.flag === '2' || e.flag === '1') h.write('/etc/passwd', 157, 'utf8');
  h.write('        ', 148, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

async function rawTar(file: string, entries: RawEntry[]): Promise<void> {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(rawHeader(e));
    if (e.data) parts.push(e.data, tarPadding(e.data.length));
  }
  parts.push(TAR_END);
  await fs.writeFile(file, Buffer.concat(parts));
}

/** The valid pack's entries (index, layout marker, every blob) to mutate. */
async function validEntries(link: ExportedLink = valid): Promise<RawEntry[]> {
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.layoutIndex, manifests: [{ mediaType: MEDIA.manifest, digest: link.digest, size: link.manifest.length, annotations: { [ANNOTATION.refName]: link.tag } }] }));
  const out: RawEntry[] = [
    { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', data: index },
    { name: `blobs/sha256/${link.digest.slice(7)}`, data: link.manifest },
  ];
  for (const b of link.blobs) out.push({ name: `blobs/sha256/${b.digest.slice(7)}`, data: await fs.readFile(b.path) });
  return out;
}

async function expectRefused(file: string, code: string, host = SYNTH_HOST): Promise<void> {
  const layout = await freshStore();
  const before = await storeListing(layout);
  await assert.rejects(unpackFor(layout, host, file), (e: unknown) => {
    assert.ok(e instanceof ForkdError, `not a ForkdError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
  assert.deepEqual(await storeListing(layout), before, 'nothing written, nothing left in staging');
}

test('a valid pack unpacks: memory sparse, disk layer rebased onto this store, image installed', async () => {
  const file = path.join(tmp, 'valid.tar');
  await writePack([valid], 'synth', file);
  const layout = await freshStore();
  const r = await unpackFor(layout, SYNTH_HOST, file, { tag: 'landed' });
  assert.equal(r.tag, 'landed');
  assert.equal(r.imageFetched, true);
  const s = await readSnapshot(layout, 'landed');
  assert.equal(s.manifest.kernel.path, SYNTH_HOST.kernelPath);
  const mem = await fs.stat(path.join(s.dir, 'memory.bin'));
  assert.equal(mem.size, 16 * 1024 * 1024);
  assert.ok(mem.blocks * 512 < 1024 * 1024, `memory.bin holds ${mem.blocks * 512} bytes: zero pages must be holes`);
  const info = JSON.parse((await runTool('qemu-img', ['info', '--output=json', '-f', 'qcow2', path.join(s.dir, 'disk.qcow2')])).stdout) as { 'backing-filename': string };
  assert.equal(path.resolve(s.dir, info['backing-filename']), s.manifest.image.path, 'the backing is this store image, not the artifact\'s path');
  assert.equal(await fs.readFile(path.join(s.dir, 'vmstate')).then(sha256Digest), `sha256:${s.manifest.files.vmstate.sha256}`);
  assert.ok(!(await storeListing(layout)).some((p) => p.includes('.staging-')), 'no staging left');
  // The same pack again: the head is already here, nothing is written.
  const again = await unpackFor(layout, SYNTH_HOST, file, { tag: 'landed' });
  assert.deepEqual(again.imported, []);
});

test('an absolute path is FORKD_E_ARTIFACT_UNSAFE_PATH', async () => {
  const f = path.join(tmp, 'abs.tar');
  await rawTar(f, [{ name: '/etc/forkd-evil', data: Buffer.from('x') }, ...(await validEntries())]);
  await expectRefused(f, 'FORKD_E_ARTIFACT_UNSAFE_PATH');
});

test('a `..` path is FORKD_E_ARTIFACT_UNSAFE_PATH', async () => {
  const f = path.join(tmp, 'dotdot.tar');
  await rawTar(f, [...(await validEntries()), { name: 'blobs/../../../forkd-evil', data: Buffer.from('x') }]);
  await expectRefused(f, 'FORKD_E_ARTIFACT_UNSAFE_PATH');
});

test('a symbolic link, a hard link and a device are FORKD_E_ARTIFACT_ENTRY_TYPE', async () => {
  for (const flag of ['2', '1', '3', '4', '6']) {
    const f = path.join(tmp, `type-${flag}.tar`);
    await rawTar(f, [...(await validEntries()), { name: 'blobs/sha256/evil', flag }]);
    await expectRefused(f, 'FORKD_E_ARTIFACT_ENTRY_TYPE');
  }
});

test('a duplicate entry is FORKD_E_ARTIFACT_DUPLICATE', async () => {
  const entries = await validEntries();
  const f = path.join(tmp, 'dup.tar');
  await rawTar(f, [...entries, entries[3]!]);
  await expectRefused(f, 'FORKD_E_ARTIFACT_DUPLICATE');
});

test('a truncated pack is FORKD_E_ARTIFACT_TRUNCATED', async () => {
  const good = path.join(tmp, 'good-for-cut.tar');
  await writePack([valid], 'synth', good);
  const bytes = await fs.readFile(good);
  const f = path.join(tmp, 'cut.tar');
  await fs.writeFile(f, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  await expectRefused(f, 'FORKD_E_ARTIFACT_TRUNCATED');
});

test('a blob whose bytes do not match its name is FORKD_E_DIGEST_MISMATCH', async () => {
  const entries = await validEntries();
  const blob = entries[4]!;
  const data = Buffer.from(blob.data!);
  data[data.length >> 1] = data[data.length >> 1]! ^ 0xff;
  const f = path.join(tmp, 'mismatch.tar');
  await rawTar(f, [...entries.slice(0, 4), { name: blob.name, data }, ...entries.slice(5)]);
  await expectRefused(f, 'FORKD_E_DIGEST_MISMATCH');
});

test('an oversized manifest is FORKD_E_ARTIFACT_TOO_LARGE', async () => {
  const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
  const digest = sha256Digest(big);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MEDIA.manifest, digest, size: big.length }] }));
  const f = path.join(tmp, 'bigmanifest.tar');
  await rawTar(f, [{ name: 'oci-layout', data: Buffer.from('{}') }, { name: 'index.json', data: index }, { name: `blobs/sha256/${digest.slice(7)}`, data: big }]);
  await expectRefused(f, 'FORKD_E_ARTIFACT_TOO_LARGE');
});

test('an unexpected file in the pack is FORKD_E_ARTIFACT_INVALID', async () => {
  const f = path.join(tmp, 'extra.tar');
  await rawTar(f, [...(await validEntries()), { name: 'run-me.sh', data: Buffer.from('#!/bin/sh\n') }]);
  await expectRefused(f, 'FORKD_E_ARTIFACT_INVALID');
});

async function packOf(link: ExportedLink, name: string): Promise<string> {
  const f = path.join(tmp, `${name}.tar`);
  await writePack([link], link.tag, f);
  return f;
}

test('a forged config (device state that is not the one declared) is FORKD_E_ARTIFACT_INVALID', async () => {
  const link = await synthLink(synth, { config: (c) => void (c.snapshot.files.vmstate.sha256 = '0'.repeat(64)) });
  await expectRefused(await packOf(link, 'forged'), 'FORKD_E_ARTIFACT_INVALID');
});

test('a config naming a tag with a path in it is FORKD_E_ARTIFACT_UNSAFE_PATH', async () => {
  const link = await synthLink(synth, { config: (c) => void (c.snapshot.parent_tag = '../../etc') , manifest: (m) => void (m.annotations[ANNOTATION.parent] = sha256Digest('x')) });
  await expectRefused(await packOf(link, 'tagpath'), 'FORKD_E_ARTIFACT_UNSAFE_PATH');
});

test('a media type that lies (memory.bin as a root filesystem) is FORKD_E_ARTIFACT_INVALID', async () => {
  const link = await synthLink(synth, { manifest: (m) => void (m.layers[0]!.mediaType = MEDIA.rootfs) });
  await expectRefused(await packOf(link, 'liar'), 'FORKD_E_ARTIFACT_INVALID');
});

test("a layer claiming another layer's blob is FORKD_E_ARTIFACT_DUPLICATE", async () => {
  const link = await synthLink(synth, { manifest: (m) => void (m.layers[0] = { ...m.layers[0]!, digest: m.layers[1]!.digest, size: m.layers[1]!.size }) });
  await expectRefused(await packOf(link, 'claim'), 'FORKD_E_ARTIFACT_DUPLICATE');
});

test('a file that is not what its annotation says is FORKD_E_DIGEST_MISMATCH after decompression', async () => {
  const link = await synthLink(synth, { manifest: (m) => void (m.layers[2]!.annotations![ANNOTATION.fileDigest] = sha256Digest('other')) });
  await expectRefused(await packOf(link, 'filedigest'), 'FORKD_E_DIGEST_MISMATCH');
});

test('a decompression bomb (non-zero bytes far beyond the ratio cap) is FORKD_E_ARTIFACT_RATIO', async () => {
  const bomb = await synthFiles(path.join(tmp, 'bomb'));
  await fs.writeFile(bomb.files['memory.bin']!, Buffer.alloc(16 * 1024 * 1024, 0xaa));
  await expectRefused(await packOf(await synthLink(bomb), 'bomb'), 'FORKD_E_ARTIFACT_RATIO');
});

test('a file declared larger than its config allows is FORKD_E_ARTIFACT_INVALID before any download', async () => {
  const link = await synthLink(synth, { manifest: (m) => void (m.layers[0]!.annotations![ANNOTATION.fileSize] = String(1024 * 1024 * 1024)) });
  await expectRefused(await packOf(link, 'oversize'), 'FORKD_E_ARTIFACT_INVALID');
});

test('a disk layer with an external data file is FORKD_E_ARTIFACT_INVALID', async () => {
  const s = await synthFiles(path.join(tmp, 'datafile'));
  await fs.rm(s.files['disk.qcow2']!);
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${path.join(s.dir, 'stolen.raw')}`, s.files['disk.qcow2']!, '32M']);
  await expectRefused(await packOf(await synthLink(s), 'datafile'), 'FORKD_E_ARTIFACT_INVALID');
});

test('a snapshot from another host is FORKD_E_SNAPSHOT_INCOMPATIBLE naming both sides', async () => {
  const f = await packOf(valid, 'compat');
  const layout = await freshStore();
  await assert.rejects(unpackFor(layout, { ...SYNTH_HOST, qemuVersion: '8.2.2', kernelSha256: 'f'.repeat(64) }, f), (e: unknown) => {
    assert.ok(e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_INCOMPATIBLE');
    assert.match(e.message, /qemu version: artifact 7\.2\.0, this host 8\.2\.2/);
    assert.match(e.message, /kernel sha256: artifact k+, this host f+/);
    return true;
  });
  assert.deepEqual(await storeListing(layout), ['images', 'snapshots']);
});

test('unpack onto a taken tag is FORKD_E_SNAPSHOT_EXISTS; with force the other snapshot is replaced', async () => {
  const layout = await freshStore();
  await unpackFor(layout, SYNTH_HOST, await packOf(valid, 'first'), { tag: 'taken' });
  const other = await synthLink(await synthFiles(path.join(tmp, 'other')));
  const f = await packOf(other, 'second');
  await assert.rejects(unpackFor(layout, SYNTH_HOST, f, { tag: 'taken' }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_EXISTS');
  const before = (await readSnapshot(layout, 'taken')).manifest.files.vmstate.sha256;
  const r = await unpackFor(layout, SYNTH_HOST, f, { tag: 'taken', force: true });
  assert.deepEqual(r.imported, ['taken']);
  assert.notEqual((await readSnapshot(layout, 'taken')).manifest.files.vmstate.sha256, before);
  assert.ok(!(await storeListing(layout)).some((p) => p.includes('.staging-')));
});
