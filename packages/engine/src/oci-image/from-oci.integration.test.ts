/**
 * Any OCI image as a forkd image, on real VMs: an image the test makes from its own files (a
 * static busybox, no Node.js, no Python), pushed to a real registry on loopback, turned into a
 * forkd image, snapshotted and forked: exec, files and JS eval work, the layers' whiteouts and
 * hard links are right, the config's Env and WorkingDir apply to commands. Run under the VM lock.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Sandbox } from '../sandbox/sandbox.js';
import { testEngine } from '../testing/fixture.js';
import { Engine } from '../engine.js';
import { runTool } from '../qemu/tools.js';
import { startRegistry, type TestRegistry } from '../testing/registry.js';
import { imageOf, pushImage, type TestEntry } from '../testing/oci-image.js';
import { parseRecipe } from '../recipe/recipe.js';

const engine = testEngine();
const run = crypto.randomBytes(3).toString('hex');
const tag = `it-from-oci-${run}`;
let registry: TestRegistry;
let tmp = '';
const live: Sandbox[] = [];
const homes: string[] = [];

const APPLETS = ['sh', 'cat', 'echo', 'ls', 'pwd', 'env', 'test', 'stat', 'id'];

async function layers(): Promise<TestEntry[][]> {
  const busybox = await fs.readFile('/bin/busybox');
  const base: TestEntry[] = [
    { name: 'bin/', type: 'dir' },
    { name: 'bin/busybox', type: 'file', data: busybox, mode: 0o755 },
    ...APPLETS.map((a): TestEntry => ({ name: `bin/${a}`, type: 'symlink', target: 'busybox' })),
    { name: 'etc/', type: 'dir' },
    { name: 'etc/passwd', type: 'file', data: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
    { name: 'etc/motd', type: 'file', data: 'layer one\n' },
    { name: 'etc/gone', type: 'file', data: 'removed by a whiteout\n' },
    { name: 'opt/', type: 'dir' },
    { name: 'opt/app/', type: 'dir' },
    { name: 'opt/app/old-a', type: 'file', data: 'a' },
    { name: 'opt/app/old-b', type: 'file', data: 'b' },
    { name: 'usr/', type: 'dir' },
    { name: 'usr/lib', type: 'symlink', target: '/opt' },
    { name: 'home/app/owned', type: 'file', data: 'mine', uid: 1000, gid: 1000, mode: 0o600 },
    // an image's own /.forkd (here a link out to /etc) gives way to the agent's runtime
    { name: '.forkd', type: 'symlink', target: '/etc' },
  ];
  const top: TestEntry[] = [
    { name: 'etc/.wh.gone', type: 'file', data: '' },
    { name: 'opt/app/.wh..wh..opq', type: 'file', data: '' },
    { name: 'opt/app/new', type: 'file', data: 'only this\n' },
    { name: 'etc/motd', type: 'file', data: 'layer two\n' },
    { name: 'bin/sh-again', type: 'hardlink', target: 'bin/busybox' },
    // through the lower layer's symlink usr/lib -> /opt: lands in /opt, inside the image
    { name: 'usr/lib/via-link', type: 'file', data: 'through a symlink\n' },
  ];
  return [base, top];
}

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-from-oci-'));
  registry = await startRegistry();
  const img = imageOf(await layers(), { Env: ['PATH=/bin', 'GREETING=hello-from-oci'], WorkingDir: '/opt/app', User: 'app' });
  await pushImage(registry.host, 'forkd/tiny', 'v1', img, tmp);
});
after(async () => {
  await Promise.all(live.map((s) => s.kill()));
  await engine.removeSnapshot(tag).catch(() => undefined);
  await registry?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
  for (const h of homes) await fs.rm(h, { recursive: true, force: true });
});

test('an OCI image without Node.js becomes a forkd image; children exec, move files and eval JS', async () => {
  const info = await engine.imageFromOci(`${registry.host}/forkd/tiny:v1`, { name: `tiny-${run}`, diskMib: 256 });
  assert.equal(info.source_kind, 'registry');
  assert.equal(info.oci?.layers, 2);
  const again = await engine.imageFromOci(`${registry.host}/forkd/tiny:v1`, { name: `tiny-${run}`, diskMib: 256 });
  assert.equal(again.cached, true, 'the same image again is cached by manifest digest');

  await engine.createSnapshot({ tag, recipe: parseRecipe(JSON.stringify({ name: `tiny-${run}`, from_image: `tiny-${run}`, language: 'js', default_mem_mib: 256, min_mem_mib: 192 })) });
  const children = await engine.spawn({ tag, n: 2 });
  live.push(...children);
  const [a, b] = children as [Sandbox, Sandbox];

  const sh = async (s: Sandbox, cmd: string) => {
    const r = await s.commands.exec({ shell: cmd, timeout_ms: 20_000 });
    assert.equal(r.exit_code, 0, `${cmd}: ${r.stderr}`);
    return r.stdout.trim();
  };
  assert.equal(await sh(a, 'test ! -e /usr/bin/node && test ! -e /usr/bin/python3 && echo none'), 'none', 'the image has no Node.js or Python of its own');
  assert.equal(await sh(a, 'cat /etc/motd'), 'layer two');
  assert.equal(await sh(a, 'test -d /.forkd && test ! -L /.forkd && test ! -e /etc/init && test ! -e /etc/agent && echo replaced'), 'replaced');
  assert.equal(await sh(a, 'test -e /etc/gone || echo whited-out'), 'whited-out');
  assert.equal(await sh(a, 'ls /opt/app'), 'new', 'the opaque directory shows only the upper layer');
  assert.equal(await sh(a, 'cat /opt/via-link'), 'through a symlink');
  assert.equal(await sh(a, 'stat -c %h /bin/sh-again'), '2', 'the hard link shares the busybox inode');
  assert.equal(await sh(a, 'stat -c %u:%g:%a /home/app/owned'), '1000:1000:600');
  assert.equal(await sh(a, 'echo $GREETING; pwd'), 'hello-from-oci\n/opt/app', 'the config Env and WorkingDir apply');
  assert.equal(await sh(a, 'echo $(id -u):$(id -g) $HOME'), '1000:1000 /home/app', 'commands run as the config User');

  await a.files.write('/tmp/from-host.txt', [Buffer.from('written through the files API')]);
  assert.equal(await sh(a, 'cat /tmp/from-host.txt'), 'written through the files API');
  assert.equal(await sh(b, 'test -e /tmp/from-host.txt || echo absent'), 'absent', 'siblings are apart');

  const r = await b.eval('js', 'globalThis.n = (globalThis.n ?? 40) + 2; n');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.match(JSON.stringify(r), /42/);
  await Promise.all(children.map((c) => c.kill()));

  // The image carries its runtime, so its snapshot travels like any other: push, pull onto a
  // store that has neither the image nor the snapshot, fork there.
  const pushed = await engine.pushSnapshot({ tag, ref: `${registry.host}/forkd/tiny-snap:v1` });
  const home = `${engine.layout.root}-from-oci-${run}`;
  homes.push(home);
  await fs.mkdir(home, { recursive: true });
  await runTool('cp', ['-al', engine.layout.cache, path.join(home, 'cache')]);
  const other = new Engine({ home, accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto', network: false });
  const pulled = await other.pullSnapshot({ ref: `${registry.host}/forkd/tiny-snap@${pushed.digest}` });
  assert.equal(pulled.imageFetched, true);
  const [kid] = await other.spawn({ tag, n: 1 });
  live.push(kid!);
  assert.equal(await sh(kid!, 'cat /etc/motd; echo $GREETING'), 'layer two\nhello-from-oci');
  const kidEval = await kid!.eval('js', 'globalThis.n = (globalThis.n ?? 40) + 2; n');
  assert.match(JSON.stringify(kidEval), /42/);
});
