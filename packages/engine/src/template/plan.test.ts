/**
 * The template plan, pure: leading apt steps join the base image; every other step's cache key
 * chains the base image's key and every step up to it, so a change reruns that step and those
 * after it, never those before; a copied file is keyed by its bytes' digest, not its path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecipeSchema } from '@forkd/protocol';
import { planTemplate, splitBase, stepContext, templateRuntime, templateSnapshotKey } from './plan.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const recipe = (over: Record<string, unknown> = {}, steps?: unknown[]) => RecipeSchema.parse({
  name: 't',
  packages: ['python3'],
  steps: steps ?? [
    { type: 'apt', packages: ['python3-numpy'] },
    { type: 'apt', packages: ['curl', 'python3'] },
    { type: 'copy', files: [{ sha256: A, dest: '/srv/a' }] },
    { type: 'env', envs: { X: '1' } },
    { type: 'workdir', path: '/srv' },
    { type: 'run', cmd: 'make' },
  ],
  ...over,
});

test('leading apt steps join the base packages (once each); the rest are planned in order with their indices', () => {
  const { base, folded, rest } = splitBase(recipe());
  assert.deepEqual(base.packages, ['python3', 'python3-numpy', 'curl']);
  assert.deepEqual(base.steps, []);
  assert.deepEqual(folded, [0, 1]);
  assert.deepEqual(rest.map((r) => [r.index, r.step.type]), [[2, 'copy'], [3, 'env'], [4, 'workdir'], [5, 'run']]);
  // An apt step after another step runs in the build VM.
  const late = splitBase(recipe({}, [{ type: 'run', cmd: 'true' }, { type: 'apt', packages: ['curl'] }]));
  assert.deepEqual(late.folded, []);
  assert.deepEqual(late.rest.map((r) => r.step.type), ['run', 'apt']);
});

test('keys chain: the same template and base give the same keys; a change keys that step and the later ones anew', () => {
  const keys = (r: ReturnType<typeof recipe>, base = 'base-1') => planTemplate(r, base).steps.map((s) => s.key);
  const k = keys(recipe());
  assert.deepEqual(keys(recipe()), k, 'deterministic');
  assert.equal(new Set(k).size, k.length);
  const lastChanged = keys(recipe({}, [...recipe().steps.slice(0, 5), { type: 'run', cmd: 'make all' }]));
  assert.deepEqual(lastChanged.slice(0, 3), k.slice(0, 3), 'the steps before the change keep their keys');
  assert.notEqual(lastChanged[3], k[3]);
  const envChanged = keys(recipe({}, [...recipe().steps.slice(0, 3), { type: 'env', envs: { X: '2' } }, ...recipe().steps.slice(4)]));
  assert.equal(envChanged[0], k[0]);
  assert.ok(envChanged.slice(1).every((x, i) => x !== k[i + 1]), 'an env change rekeys every later step (they run with it)');
  assert.ok(keys(recipe(), 'base-2').every((x, i) => x !== k[i]), 'another base image rekeys every step');
});

test("a copy is keyed by its file's digest and destination, not by anything on the host", () => {
  const copy = (sha: string, dest = '/srv/a', mode?: number) => planTemplate(recipe({}, [{ type: 'copy', files: [{ sha256: sha, dest, ...(mode !== undefined ? { mode } : {}) }] }]), 'b').steps[0]!.key;
  assert.equal(copy(A), copy(A));
  assert.notEqual(copy(A), copy(B), 'other bytes');
  assert.notEqual(copy(A), copy(A, '/srv/b'), 'another destination');
  assert.notEqual(copy(A), copy(A, '/srv/a', 0o755), 'another mode');
});

test('envs and the working directory apply in order, and reach the services and the snapshot key', () => {
  const r = recipe({ services: [{ name: 's', start: 'serve', ready: { port: 80 }, timeout_secs: 60 }], language: 'python' });
  assert.deepEqual(stepContext(r.steps, 4), { envs: { X: '1' }, workdir: undefined });
  assert.deepEqual(stepContext(r.steps), { envs: { X: '1' }, workdir: '/srv' });
  const rt = templateRuntime(r);
  assert.deepEqual(rt.services[0]!.env, { X: '1' });
  assert.equal(rt.services[0]!.cwd, '/srv');
  assert.match(rt.warmup.python ?? '', /environ\.update/);
  const other = recipe({ services: [{ name: 's', start: 'serve', ready: { port: 81 }, timeout_secs: 60 }], language: 'python' });
  assert.equal(templateSnapshotKey(r, 'img', 512), templateSnapshotKey(r, 'img', 512));
  assert.notEqual(templateSnapshotKey(r, 'img', 512), templateSnapshotKey(other, 'img', 512), 'another service');
  assert.notEqual(templateSnapshotKey(r, 'img', 512), templateSnapshotKey(r, 'img', 768), 'other memory');
  assert.notEqual(templateSnapshotKey(r, 'img', 512), templateSnapshotKey(r, 'img2', 512), 'another image');
});
