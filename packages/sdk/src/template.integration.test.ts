/**
 * Template.build through a real daemon and real VMs: the SDK hashes and uploads a host directory,
 * the daemon builds the image (a layer per step) and the warm snapshot as a job whose progress
 * carries the step's output, and Sandbox.create(name) forks it: the files, the envs and the service
 * are there. Building it again uploads nothing and reports every step and the snapshot cached.
 * Bad input is refused with its code before any VM: an invalid template, too little memory, a copy of
 * a file never uploaded, an upload whose bytes do not match its digest.
 * A failing step (one build VM on the cached layers) and a start command that exits (one parent boot on
 * the cached image) report their codes, the step and the output, and leave no snapshot.
 * Two build VMs and two parent boots in all (the base is the python recipe's image, a leading apt step).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { Controller, Sandbox, Template, waitForPort, type ForkdSdkError } from './index.js';

let d: TestDaemon;
let ctl: Controller;
let dir: string;
const run = crypto.randomBytes(3).toString('hex');
const name = `sdk-tpl-${run}`;
const conn = () => ({ socketPath: d.socketPath });
const live: Sandbox[] = [];

before(async () => {
  d = await startTestDaemon({ fixture: false });
  ctl = new Controller(conn());
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-sdk-tpl-'));
  fs.mkdirSync(path.join(dir, 'app', 'lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'app', 'index.html'), `<title>${run}</title>\n`);
  fs.writeFileSync(path.join(dir, 'app', 'lib', 'tool.sh'), '#!/bin/sh\necho tool-ok\n', { mode: 0o755 });
});
after(async () => {
  for (const sb of live) await sb.kill().catch(() => undefined);
  await ctl?.deleteSnapshot(name, { force: true }).catch(() => undefined);
  await d?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const template = () => new Template()
  .fromDebian()
  .aptInstall('python3-numpy')
  .setResources({ diskMib: 2048 })
  .copy(path.join(dir, 'app'), '/srv/app')
  .setEnvs({ APP_MODE: `mode-${run}` })
  .setWorkdir('/srv/app')
  .runCmd('./lib/tool.sh > built.txt && echo "mode is $APP_MODE"')
  .setLanguage('python')
  .setStartCmd('exec python3 -m http.server 8080 --bind 127.0.0.1', waitForPort(8080));

test('Template.build makes the snapshot a sandbox forks: the copied tree, the envs, the running start command', async () => {
  const logs: string[] = [];
  const r = await Template.build(template(), name, { ...conn(), onBuildLogs: (ev) => logs.push(`${ev.phase}: ${ev.message}`) });
  assert.equal(r.snapshot.tag, name);
  assert.deepEqual(r.steps.map((s) => s.type), ['apt', 'copy', 'env', 'workdir', 'run']);
  assert.equal(r.steps[0]!.in_base, true);
  assert.match(r.steps[4]!.output_tail, new RegExp(`mode is mode-${run}`));
  assert.ok(logs.some((l) => /step 5/.test(l)), `progress names the steps: ${logs.join(' | ')}`);

  const sb = await Sandbox.create(name, conn());
  live.push(sb);
  assert.equal((await sb.commands.run('cat /srv/app/built.txt')).stdout, 'tool-ok\n');
  assert.equal((await sb.commands.run('stat -c %a /srv/app/lib/tool.sh')).stdout, '755\n', 'the file mode travelled');
  assert.equal((await sb.commands.run('echo $APP_MODE')).stdout, `mode-${run}\n`);
  const page = await sb.commands.run("python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8080/index.html').read().decode(),end='')\"");
  assert.equal(page.stdout, `<title>${run}</title>\n`, 'the start command serves the workdir');
});

test('building it again is a cache hit: no file uploaded, every step and the snapshot reused', async () => {
  const r = await Template.build(template(), name, conn());
  assert.equal(r.image_cached, true);
  assert.equal(r.snapshot_cached, true);
  assert.ok(r.steps.every((s) => s.cached));
  const { missing } = await ctl.call('templateFilesMissing', { body: { sha256: [crypto.createHash('sha256').update(`<title>${run}</title>\n`).digest('hex')] } });
  assert.deepEqual(missing, [], 'the file is stored by content');
});

test('bad templates are refused with their code before any VM', async () => {
  const code = (e: unknown) => (e as ForkdSdkError).code;
  await assert.rejects(Template.build(new Template().aptInstall('Not A Package'), `${name}-bad`, conn()), (e) => code(e) === 'FORKD_E_INVALID_ARGUMENT' || code(e) === 'FORKD_E_RECIPE_INVALID');
  await assert.rejects(Template.build(new Template().fromTemplate('python'), `${name}-small`, { ...conn(), memMib: 128 }), (e) => code(e) === 'FORKD_E_MEMORY_TOO_SMALL' || code(e) === 'FORKD_E_INVALID_ARGUMENT');
  await assert.rejects(Template.build(new Template().fromTemplate('no-such-recipe'), `${name}-nf`, conn()), (e) => code(e) === 'FORKD_E_RECIPE_NOT_FOUND');
  const ghost = crypto.randomBytes(32).toString('hex');
  const job = await ctl.call('buildTemplate', { body: { tag: `${name}-ghost`, template: { name: 'ghost', from: 'python', steps: [{ type: 'copy', files: [{ sha256: ghost, dest: '/x' }] }] } as never } });
  await assert.rejects(ctl.waitJob((job as { id: string }).id), (e) => code(e) === 'FORKD_E_TEMPLATE_FILE_MISSING');
  const res = await fetchPut(ghost, 'not those bytes');
  assert.equal(res.status, 400);
  assert.equal(res.code, 'FORKD_E_INVALID_ARGUMENT');
  const { missing } = await ctl.call('templateFilesMissing', { body: { sha256: [ghost] } });
  assert.deepEqual(missing, [ghost], 'a refused upload keeps nothing');
  assert.ok(!(await ctl.listSnapshots()).some((s) => s.tag.startsWith(`${name}-`) && s.status === 'ready'), 'no snapshot of a refused template');
});

test('a failing step and a start command that exits report their code, step and output, and leave no snapshot', async () => {
  const failing = template().runCmd('echo about-to-fail; echo why >&2; exit 7');
  await assert.rejects(Template.build(failing, `${name}-fail`, conn()), (e) => {
    const err = e as ForkdSdkError;
    assert.equal(err.code, 'FORKD_E_TEMPLATE_STEP_FAILED');
    assert.equal(err.details?.step_index, 5);
    assert.equal(err.details?.exit_code, 7);
    assert.match(String(err.details?.output), /about-to-fail[\s\S]*why/);
    return true;
  });
  const exits = template().setStartCmd('echo start-broke >&2; exit 3', waitForPort(8080));
  await assert.rejects(Template.build(exits, `${name}-exit`, conn()), (e) => {
    const err = e as ForkdSdkError;
    assert.equal(err.code, 'FORKD_E_SERVICE_EXITED', err.message);
    assert.equal(err.details?.exit_code, 3);
    assert.match(String(err.details?.output), /start-broke/);
    return true;
  });
  const left = (await ctl.listSnapshots()).filter((s) => (s.tag === `${name}-fail` || s.tag === `${name}-exit`) && s.status !== 'failed');
  assert.deepEqual(left, [], 'no snapshot of a failed build (only its failed job is listed)');
  assert.deepEqual((await ctl.listSandboxes()).filter((s) => s.snapshot_tag.startsWith(`${name}-`)), [], 'no sandbox of a failed build');
});

async function fetchPut(digest: string, body: string): Promise<{ status: number; code: string }> {
  const { send, readBody } = await import('./transport.js');
  const res = await send(ctl.endpoint, { method: 'PUT', path: `/v1/template-files/${digest}`, body: Buffer.from(body) });
  const text = (await readBody(res)).toString('utf8');
  return { status: res.status, code: (JSON.parse(text) as { error: { code: string } }).error.code };
}
