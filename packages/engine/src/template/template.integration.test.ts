/**
 * Templates on real VMs: a template (the python recipe's packages as a leading apt step, so its base
 * is the cached python image; a copied file, envs, a workdir, a command, a service with a ready
 * check) builds its image in a build VM and its warm snapshot; a child has the file, the envs and
 * the running service. Rebuilding it unchanged starts no VM (the build reports every step cached);
 * changing the last step reruns only that step; a failing step names itself, its exit code and its
 * output, and leaves no image, layer, staging file or VM behind.
 * Three build VMs and one parent boot in all (the image builds only run the steps).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import type { Engine } from '../engine.js';
import type { Recipe } from '../recipe/recipe.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { ProgressEvent } from '../progress.js';
import { putTemplateFile } from './files.js';
import { templateLayersDir } from './build.js';

let engine: Engine;
let runDir: string;
const live: Sandbox[] = [];
const TAG = 'itest-template';
const HELLO = `hello from the host ${crypto.randomBytes(4).toString('hex')}\n`;
const helloSha = crypto.createHash('sha256').update(HELLO).digest('hex');

before(async () => {
  runDir = path.join('/run', `forkd-itest-tpl-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(runDir, { mode: 0o700 });
  process.env.FORKD_RUN_DIR = runDir;
  const { Engine } = await import('../engine.js');
  engine = new Engine({ accel: 'auto', network: false });
  await putTemplateFile(engine.layout, helloSha, Buffer.from(HELLO));
});
after(async () => {
  await Promise.all(live.map((s) => s.kill().catch(() => undefined)));
  await engine?.removeSnapshot(TAG).catch(() => undefined);
  await engine?.cleanup().catch(() => undefined);
  fs.rmSync(runDir, { recursive: true, force: true });
});

/** What the SDKs' Template builders send (Template().fromDebian().aptInstall(...).copy(...)...). */
function template(lastCmd: string): unknown {
  return {
    name: 'itest-template',
    language: 'python',
    disk_mib: 2048,
    default_mem_mib: 512,
    steps: [
      { type: 'apt', packages: ['python3-numpy'] },
      { type: 'copy', files: [{ sha256: helloSha, dest: '/opt/app/hello.txt', mode: 0o644 }] },
      { type: 'env', envs: { GREETING: 'hi-from-template' } },
      { type: 'workdir', path: '/opt/app' },
      { type: 'run', cmd: lastCmd },
    ],
    services: [{ name: 'start', start: 'exec python3 -m http.server 8123 --bind 127.0.0.1', ready: { port: 8123 }, timeout_secs: 120 }],
  };
}
const FIRST = 'echo "built-$GREETING" > built.txt && pwd > where.txt && echo step-ran';

function recorder() {
  const events: ProgressEvent[] = [];
  return { events, onProgress: (e: ProgressEvent) => void events.push(e), booted: () => events.some((e) => e.phase === 'boot') };
}
const vmDirs = () => new Set(fs.readdirSync(runDir).filter((n) => n.startsWith('vm-')));
const staging = () => [engine.layout.images, templateLayersDir(engine.layout)].flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d) : []).filter((n) => n.startsWith('.staging-')));

let recipe: Recipe;

test('a template builds its image and warm snapshot; a child has the copied file, the envs, the workdir and the running service', async () => {
  await engine.removeSnapshot(TAG).catch(() => undefined);
  recipe = await engine.resolveTemplate(template(FIRST));
  const r = recorder();
  const built = await engine.buildTemplate({ tag: TAG, recipe, onProgress: r.onProgress });
  assert.equal(built.image.steps.length, 5);
  assert.deepEqual(built.image.steps[0]!.in_base, true, 'the leading apt step joined the base image (the python image, cached)');
  assert.equal(built.image.base_key, (await engine.buildImage(await engine.loadRecipe('python'))).key, 'same base as the python recipe');
  assert.match(built.image.steps[4]!.output_tail, /step-ran/);
  assert.equal(built.snapshot.manifest.envs?.GREETING, 'hi-from-template');

  const [kid] = await engine.spawn({ tag: TAG, n: 1 });
  live.push(kid!);
  const sh = async (cmd: string) => {
    const res = await kid!.commands.exec({ shell: cmd });
    assert.equal(res.exit_code, 0, `${cmd}: ${res.stderr}`);
    return res.stdout;
  };
  assert.equal(await sh('cat /opt/app/hello.txt'), HELLO, 'the copied file');
  assert.equal(await sh('cat /opt/app/built.txt'), 'built-hi-from-template\n', 'the run step saw the env');
  assert.equal(await sh('cat /opt/app/where.txt'), '/opt/app\n', 'the run step ran in the workdir');
  assert.equal(await sh('echo "$GREETING"'), 'hi-from-template\n', "a child's command has the template's env");
  const ev = await kid!.eval('python', "__import__('os').environ['GREETING']");
  assert.ok(ev.ok && /hi-from-template/.test(JSON.stringify(ev)), `the warm interpreter has the env: ${JSON.stringify(ev)}`);
  // The service, started in the parent in the workdir, serves the copied file in the child.
  assert.equal(await sh("python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8123/hello.txt').read().decode(),end='')\""), HELLO);
  await kid!.kill();
  live.pop();
});

test('rebuilding an unchanged template is a cache hit: every step cached, the snapshot reused, no VM started', async () => {
  const r = recorder();
  const again = await engine.buildTemplate({ tag: TAG, recipe: await engine.resolveTemplate(template(FIRST)), onProgress: r.onProgress });
  assert.equal(again.image.cached, true);
  assert.deepEqual(again.image.steps.map((s) => s.cached), [true, true, true, true, true]);
  assert.equal(again.snapshot_cached, true);
  assert.equal(r.booted(), false, 'no VM booted');
});

test('changing the last step reruns only it, on the cached layers of the others', async () => {
  const r = recorder();
  const before = vmDirs();
  const img = await engine.buildImage(await engine.resolveTemplate(template('echo changed > changed.txt && echo second-ran')), { onProgress: r.onProgress }) as Awaited<ReturnType<Engine['buildTemplate']>>['image'];
  assert.deepEqual(img.steps.map((s) => s.cached), [true, true, true, true, false]);
  assert.match(img.steps[4]!.output_tail, /second-ran/);
  assert.deepEqual(r.events.filter((e) => e.phase === 'template' && /^step \d\/5: /.test(e.message)).map((e) => e.message.slice(0, 7)), ['step 5/'], 'only step 5 ran');
  assert.deepEqual([...vmDirs()].filter((n) => !before.has(n)), [], 'the build VM is gone');
});

test('a failing step reports its index, exit code and output, and leaves nothing half-built', async () => {
  const images = fs.readdirSync(engine.layout.images).sort();
  const layers = fs.readdirSync(templateLayersDir(engine.layout)).sort();
  const before = vmDirs();
  const bad = await engine.resolveTemplate(template('echo about-to-fail; echo why >&2; exit 7'));
  await assert.rejects(engine.buildTemplate({ tag: 'itest-template-bad', recipe: bad }), (e: unknown) => {
    assert.ok(e instanceof ForkdError, String(e));
    assert.equal(e.code, 'FORKD_E_TEMPLATE_STEP_FAILED');
    assert.equal(e.details?.step_index, 4);
    assert.equal(e.details?.exit_code, 7);
    assert.match(String(e.details?.output), /about-to-fail[\s\S]*why/);
    assert.match(e.message, /step 5 .*exited with 7/);
    return true;
  });
  assert.deepEqual(fs.readdirSync(engine.layout.images).sort(), images, 'no image');
  assert.deepEqual(fs.readdirSync(templateLayersDir(engine.layout)).sort(), layers, 'no layer of the failed step');
  assert.deepEqual(staging(), [], 'no staging file');
  assert.deepEqual([...vmDirs()].filter((n) => !before.has(n)), [], 'no VM run dir');
  await assert.rejects(engine.getSnapshot('itest-template-bad'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND');
});
