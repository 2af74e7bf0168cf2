/**
 * Bad templates are refused by the schema (what the daemon's REST layer, the CLI and the engine all
 * validate with): an unknown step type, hostile copy or workdir paths, package names that would be
 * options, too many steps or files. Each refusal names what is wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LIMITS } from './limits.js';
import { RecipeSchema } from './recipe.js';

const SHA = 'c'.repeat(64);
const withSteps = (steps: unknown[]) => RecipeSchema.safeParse({ name: 't', steps });
const refused = (steps: unknown[], why: RegExp) => {
  const r = withSteps(steps);
  assert.equal(r.success, false, `accepted: ${JSON.stringify(steps)}`);
  assert.match(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), why);
};

test('an unknown step type is refused, naming the known ones', () => {
  refused([{ type: 'frobnicate', cmd: 'x' }], /steps\.0\.type: .*'apt' \| 'pip' \| 'npm' \| 'copy' \| 'run' \| 'env' \| 'workdir'/);
  refused([{ cmd: 'x' }], /steps\.0\.type/);
  refused([{ type: 'run', cmd: 'x', shell: true }], /Unrecognized key/);
});

test('copy destinations and working directories must be normal absolute paths outside kernel filesystems', () => {
  for (const dest of ['relative/x', '/srv/../etc/passwd', '/srv/./x', '/srv//x', '/srv/x/', '/', '/proc/sysrq-trigger', '/sys/kernel/x', '/dev/sda', '/dev', 'a\0b', '']) {
    refused([{ type: 'copy', files: [{ sha256: SHA, dest }] }], /steps\.0\.files\.0\.dest/);
    if (dest !== '') refused([{ type: 'workdir', path: dest }], /steps\.0\.path/);
  }
  for (const dest of ['/srv/app/index.html', '/opt/x..y', '/devices/x', '/proc2', '/.hidden/f']) {
    assert.equal(withSteps([{ type: 'copy', files: [{ sha256: SHA, dest }] }]).success, true, dest);
  }
});

test('a copy names its file by a sha256 digest, within the per-step file limit', () => {
  refused([{ type: 'copy', files: [{ sha256: '../../etc/passwd', dest: '/x' }] }], /sha256/);
  refused([{ type: 'copy', files: [{ sha256: SHA.toUpperCase(), dest: '/x' }] }], /sha256/);
  refused([{ type: 'copy', files: [] }], /files/);
  const many = Array.from({ length: LIMITS.templates.maxCopyFiles + 1 }, (_, i) => ({ sha256: SHA, dest: `/f${i}` }));
  refused([{ type: 'copy', files: many }], /files/);
  refused([{ type: 'copy', files: [{ sha256: SHA, dest: '/x', mode: 0o10000 }] }], /mode/);
});

test('install arguments cannot be options or shell, package names must be Debian names, steps are bounded', () => {
  refused([{ type: 'pip', packages: ['--index-url=http://evil'] }], /packages\.0/);
  refused([{ type: 'npm', packages: ['x; rm -rf /'] }], /packages\.0/);
  refused([{ type: 'apt', packages: ['Not A Package'] }], /packages\.0/);
  refused([{ type: 'apt', packages: ['-oAPT::x'] }], /packages\.0/);
  refused(Array.from({ length: LIMITS.templates.maxSteps + 1 }, () => ({ type: 'run', cmd: 'true' })), /steps/);
  refused([{ type: 'run', cmd: 'true', timeout_secs: LIMITS.templates.maxStepTimeoutSecs + 1 }], /timeout_secs/);
  refused([{ type: 'env', envs: { 'BAD-NAME': 'x' } }], /envs/);
});
