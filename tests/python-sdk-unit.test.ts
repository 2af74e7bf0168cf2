/** The Python SDK's unit tests (no daemon, no VM): part of `npm run test:unit` too. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TESTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'sdk', 'python', 'tests');

test('python SDK unit tests', (t) => {
  const modules = readdirSync(TESTS).filter((f) => /^test_unit_.*\.py$/.test(f)).map((f) => f.replace(/\.py$/, '')).sort();
  assert.ok(modules.length >= 3, `unit test modules in ${TESTS}: ${modules.join(', ')}`);
  const r = spawnSync('python3', ['-m', 'unittest', '-v', ...modules], { cwd: TESTS, encoding: 'utf8', timeout: 120_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  const output = `${r.stdout}${r.stderr}`;
  const summary = /Ran (\d+) tests? in [\d.]+s\s+(OK.*|FAILED.*)/.exec(output);
  assert.ok(r.status === 0 && summary?.[2]?.startsWith('OK') && !/skipped/.test(summary[2]), `python SDK unit tests failed (exit ${r.status}):\n${output}`);
  t.diagnostic(`python SDK unit: ${summary![1]} tests, ${summary![2]}`);
});
