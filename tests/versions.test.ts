/** One release version everywhere: every package, its internal pins, the Python SDK; zod pinned once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FORKD_VERSION } from '@forkd/protocol';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
interface Manifest { name: string; version: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> }
const manifests = readdirSync(path.join(ROOT, 'packages')).map((d) => JSON.parse(readFileSync(path.join(ROOT, 'packages', d, 'package.json'), 'utf8')) as Manifest);

test('every package is FORKD_VERSION and pins its forkd dependencies to it', () => {
  assert.ok(manifests.length >= 8);
  for (const m of manifests) {
    assert.equal(m.version, FORKD_VERSION, `${m.name} version`);
    for (const [dep, range] of Object.entries({ ...m.dependencies, ...m.devDependencies })) {
      if (dep.startsWith('@forkd/')) assert.equal(range, FORKD_VERSION, `${m.name} -> ${dep}`);
    }
  }
});

test('zod is pinned the same in every package', () => {
  const pins = new Set(manifests.map((m) => m.dependencies?.zod).filter((v) => v !== undefined));
  assert.equal(pins.size, 1, `zod pins: ${[...pins].join(', ')}`);
});

test('the Python SDK package is FORKD_VERSION', () => {
  const pyproject = readFileSync(path.join(ROOT, 'sdk', 'python', 'pyproject.toml'), 'utf8');
  assert.equal(/^version = "([^"]+)"$/m.exec(pyproject)?.[1], FORKD_VERSION);
});
