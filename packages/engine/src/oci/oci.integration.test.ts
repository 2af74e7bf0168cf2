/**
 * Snapshots through a real registry (Debian's docker-registry on loopback) and packs, on real VMs:
 * a warm snapshot and a layer on it are pushed; a fresh store pulls the base (image and all) and
 * forks it; pulling the layer then moves only the layer's bytes; a pack unpacked on another fresh
 * store forks with the parent's warm state. Run under the VM lock.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Engine } from '../engine.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { ensureFixtureSnapshot, testEngine, PARENT_MARKER } from '../testing/fixture.js';
import { startRegistry, type TestRegistry } from '../testing/registry.js';
import { runTool } from '../qemu/tools.js';

const engine = testEngine();
const run = crypto.randomBytes(3).toString('hex');
const layerTag = `it-oci-${run}-layer`;
let base = '';
let registry: TestRegistry;
const live: Sandbox[] = [];
const homes: string[] = [];

/** A fresh store that shares only the host's build cache (kernel, initramfs, accel verdict). */
async function freshEngine(name: string): Promise<Engine> {
  const home = `${engine.layout.root}-oci-${run}-${name}`;
  homes.push(home);
  await fs.mkdir(home, { recursive: true });
  await runTool('cp', ['-al', engine.layout.cache, path.join(home, 'cache')]);
  return new Engine({ home, accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto', network: false });
}

before(async () => {
  registry = await startRegistry();
  base = await ensureFixtureSnapshot(engine);
  const [src] = await engine.spawn({ tag: base, n: 1 });
  live.push(src!);
  const r = await src!.eval('python', "oci_state = 'layer-' + str(41 + 1)", { timeoutMs: 30_000 });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  await engine.branch(src!, { tag: layerTag, mode: 'full' });
});
after(async () => {
  await Promise.all(live.map((s) => s.kill()));
  await engine.removeSnapshot(layerTag).catch(() => undefined);
  await registry?.stop();
  for (const h of homes) await fs.rm(h, { recursive: true, force: true });
});

async function py(sb: Sandbox, code: string): Promise<unknown> {
  const r = await sb.eval('python', code, { timeoutMs: 30_000 });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  return r.json;
}

test('push a chain, pull the base onto a fresh store (forks warm), then the head moves only its layer', async () => {
  const ref = (t: string) => `${registry.host}/forkd/itest:${t}`;
  const pushedBase = await engine.pushSnapshot({ tag: base, ref: ref('base') });
  assert.ok(pushedBase.bytes_sent > 10 * 1024 * 1024, `base push sent ${pushedBase.bytes_sent}`);
  const pushedLayer = await engine.pushSnapshot({ tag: layerTag, ref: ref('layer') });
  // The base's blobs are in the registry already: pushing the layer sends the layer (and manifests).
  const layerBlobs = pushedLayer.bytes_total - pushedBase.bytes_total;
  assert.ok(pushedLayer.bytes_sent < layerBlobs + 64 * 1024, `layer push sent ${pushedLayer.bytes_sent}, its own blobs are ${layerBlobs}`);
  assert.equal(pushedLayer.links[0]!.digest, pushedBase.digest, 'the same snapshot exports to the same digest');

  const other = await freshEngine('pull');
  const pulledBase = await other.pullSnapshot({ ref: ref('base') });
  assert.deepEqual(pulledBase.imported, [base]);
  assert.equal(pulledBase.imageFetched, true);
  const [kid] = await other.spawn({ tag: base, n: 1 });
  live.push(kid!);
  assert.equal(await py(kid!, 'forkd_parent_marker'), PARENT_MARKER);
  await kid!.kill();

  const pulledLayer = await other.pullSnapshot({ ref: ref('layer') });
  assert.deepEqual(pulledLayer.imported, [layerTag]);
  assert.equal(pulledLayer.reused, base);
  assert.equal(pulledLayer.imageFetched, false);
  assert.ok(pulledLayer.bytes_received < layerBlobs + 64 * 1024, `pulling the head moved ${pulledLayer.bytes_received} bytes; its layer is ${layerBlobs}`);
  process.stderr.write(`# base blobs ${pushedBase.bytes_total} B; layer blobs ${layerBlobs} B; head pull received ${pulledLayer.bytes_received} B\n`);
  const kids = await other.spawn({ tag: layerTag, n: 2 });
  live.push(...kids);
  for (const k of kids) assert.deepEqual(await py(k, '[oci_state, forkd_parent_marker]'), ['layer-42', PARENT_MARKER]);
  await Promise.all(kids.map((k) => k.kill()));
  assert.deepEqual((await fs.readdir(other.layout.snapshots)).filter((n) => n.startsWith('.staging-')), []);
});

test('pack the head, unpack on a fresh store under another tag, children answer with the warm state', async () => {
  const file = path.join(path.dirname(engine.layout.root), `oci-${run}.forkd.tar`);
  homes.push(file);
  const packed = await engine.packSnapshot({ tag: layerTag, file });
  assert.ok(packed.bytes > 10 * 1024 * 1024);
  const other = await freshEngine('unpack');
  const r = await other.unpackSnapshot({ file, tag: 'unpacked-head' });
  assert.equal(r.tag, 'unpacked-head');
  assert.deepEqual(r.imported, [base, 'unpacked-head']);
  const [kid] = await other.spawn({ tag: 'unpacked-head', n: 1 });
  live.push(kid!);
  assert.deepEqual(await py(kid!, '[oci_state, forkd_parent_marker]'), ['layer-42', PARENT_MARKER]);
  await kid!.kill();
  // The same pack again is refused by tag, and with force replaces it.
  await assert.rejects(other.unpackSnapshot({ file, tag: base }), /FORKD_E_SNAPSHOT_EXISTS|already exists/);
});
