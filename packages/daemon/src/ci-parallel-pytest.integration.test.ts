/**
 * The ci-parallel-pytest recipe on real VMs: `forkd test` uploads the example project (34 tests
 * over numpy, pandas, scikit-learn and the stdlib, plus two failing on purpose behind
 * FORKD_DEMO_FAILURES=1), collects it once in a parent, forks 3 children that each run their shard
 * with pytest.main in the interpreter they inherited, and merges the results: failures shown, JUnit
 * XML written, exit code 1. No child imports the project, its tests or the heavy libraries again.
 * Then the runner's module-cache guard in one persistent interpreter: a changed source file is
 * picked up on the next run, an unchanged project is not re-imported.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRecipe } from '@forkd/engine';
import { ensureRecipeSnapshot, testEngine } from '@forkd/engine/testing';
import { Controller, PYTEST_RUNNER_SOURCE, projectFiles } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '..', '..', 'cli', 'bin', 'forkd.js');
const PROJECT = path.resolve(HERE, '..', '..', '..', 'recipes', 'ci-parallel-pytest', 'project');
const HEAVY = /^(numpy|pandas|scipy|sklearn|pytest|_pytest)(\.|$)/;

let d: TestDaemon;
let tag = '';
let tmp = '';

before(async () => {
  ({ tag } = await ensureRecipeSnapshot(testEngine(), 'itest-ci-parallel-pytest', await loadRecipe('ci-parallel-pytest')));
  d = await startTestDaemon({ fixture: false });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-test-cmd-'));
});
after(async () => {
  await d?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, FORKD_URL: `unix:${d.socketPath}` }, timeout: 900_000 });
}

interface TestJson {
  exit_code: number;
  collected: number;
  totals: { tests: number; passed: number; failed: number; errors: number; skipped: number };
  tests: Array<{ nodeid: string; outcome: string; message?: string }>;
  shards: Array<{ tests: unknown[]; imported: string[]; importedCount: number; importedProject: string[]; reloaded: string[] }>;
  timings: Record<string, number>;
  forkTag: string;
}

test('forkd test: 3 children, failures shown, JUnit merged, exit 1; nothing re-imported in a child; nothing left', async () => {
  const junit = path.join(tmp, 'results.xml');
  const r = cli(['test', PROJECT, '--template', tag, '-n', '3', '--env', 'FORKD_DEMO_FAILURES=1', '--junit', junit, '--json']);
  assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
  const out = JSON.parse(r.stdout) as TestJson;
  process.stderr.write(`# forkd test -n 3: ${JSON.stringify(out.timings)}\n`);
  assert.equal(out.collected, 36);
  assert.deepEqual(out.totals, { tests: 36, passed: 34, failed: 2, errors: 0, skipped: 0 });
  assert.equal(out.shards.length, 3);
  assert.ok(out.shards.every((s) => s.tests.length >= 8), `balanced by file: ${out.shards.map((s) => s.tests.length)}`);
  const failed = out.tests.filter((t) => t.outcome === 'failed');
  assert.deepEqual(failed.map((t) => t.nodeid).sort(), ['tests/test_intentional_failures.py::test_intentional_assertion_failure', 'tests/test_intentional_failures.py::test_intentional_error']);
  assert.match(failed.find((t) => t.nodeid.endsWith('assertion_failure'))!.message!, /AssertionError: assert 'fork-daemon' == 'fork_daemon'/);
  assert.match(failed.find((t) => t.nodeid.endsWith('_error'))!.message!, /ValueError: window must be at least 1/);
  for (const s of out.shards) {
    assert.deepEqual(s.importedProject, [], 'the project and its tests come from the parent');
    assert.deepEqual(s.reloaded, []);
    assert.deepEqual(s.imported.filter((m) => HEAVY.test(m) || /^(stats_kit|test_|conftest)/.test(m)), [], `a child imported ${s.imported.join(' ')}`);
  }
  process.stderr.write(`# modules children imported while running: ${out.shards.map((s) => s.importedCount).join(', ')}\n`);

  const xml = await fs.readFile(junit, 'utf8');
  assert.match(xml, /<testsuites name="forkd test" tests="36" failures="2" errors="0" skipped="0"/);
  assert.equal((xml.match(/<testcase /g) ?? []).length, 36);
  assert.equal((xml.match(/<testsuite /g) ?? []).length, 3);
  assert.match(xml, /<failure message="AssertionError: assert &apos;fork-daemon&apos; == &apos;fork_daemon&apos;/);

  // Nothing left: no sandbox, and the fork's capture removed with its children.
  const c = new Controller({ socketPath: d.socketPath });
  assert.deepEqual(await c.listSandboxes(), []);
  assert.ok(!(await c.listSnapshots()).some((s) => s.tag === out.forkTag), 'the fork snapshot is gone');
});

test('forkd test, human output: shard by test over 2 children, all pass (the two demos skipped), exit 0; -n 1 forks nothing; bad input refused', async () => {
  const r = cli(['test', PROJECT, '--template', tag, '-n', '2', '--shard-by', 'test']);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^34 passed, 2 skipped in [\d.]+ s \(36 tests on 2 children of /m);
  assert.doesNotMatch(r.stdout, /FAILED/);
  const noDir = cli(['test', path.join(tmp, 'missing'), '--template', tag, '--json']);
  assert.notEqual(noDir.status, 0);
  assert.match(noDir.stderr + noDir.stdout, /FORKD_E_INVALID_ARGUMENT/);
  const noTag = cli(['test', PROJECT, '--template', 'no-such-snapshot', '--json']);
  assert.notEqual(noTag.status, 0);
  assert.match(noTag.stderr + noTag.stdout, /FORKD_E_SNAPSHOT_NOT_FOUND/);
  const one = cli(['test', PROJECT, '--template', tag, '-n', '1', '--json']);
  assert.equal(one.status, 0, one.stderr);
  const oneOut = JSON.parse(one.stdout) as { forkTag: string; totals: { passed: number; skipped: number }; timings: { fork_ms: number } };
  assert.deepEqual([oneOut.forkTag, oneOut.totals.passed, oneOut.totals.skipped, oneOut.timings.fork_ms], ['', 34, 2, 0], 'one shard runs in the collecting sandbox, no fork');
  const tooMany = cli(['test', PROJECT, '--template', tag, '-n', '0']);
  assert.match(tooMany.stderr, /FORKD_E_INVALID_ARGUMENT/);
  assert.deepEqual(await new Controller({ socketPath: d.socketPath }).listSandboxes(), []);
});

test('the module-cache guard: an unchanged project is not re-imported; a changed file is', async () => {
  const c = new Controller({ socketPath: d.socketPath });
  const [sb] = await c.spawnSandboxes({ snapshot_tag: tag, n: 1 });
  after(() => c.killSandbox(sb!.id).catch(() => undefined));
  for (const f of await projectFiles(PROJECT)) await c.writeFile(sb!.id, `/root/project/${f.rel}`, await fs.readFile(f.abs));
  const py = async (code: string) => {
    const e = await c.eval(sb!.id, { code, language: 'python', timeout_secs: 600 });
    assert.equal(e.error, null, `${e.error}\n${e.traceback}`);
    return e.result_json as { tests: Array<{ nodeid: string; outcome: string; message?: string }>; reloaded: string[]; imported_project: string[]; items: unknown[] };
  };
  await py(`${PYTEST_RUNNER_SOURCE}\n0`);
  assert.equal((await py("_forkd_pytest.collect('/root/project')")).items.length, 36);
  const ids = JSON.stringify(['tests/test_text.py::test_slugify']);
  const first = await py(`_forkd_pytest.run(${ids})`);
  assert.deepEqual(first.tests.map((t) => t.outcome), ['passed', 'passed', 'passed']);
  assert.deepEqual(first.reloaded, []);
  assert.deepEqual(first.imported_project, []);
  // An agent edits the code: slugify now joins with underscores.
  await c.writeFile(sb!.id, '/root/project/stats_kit/text.py', (await fs.readFile(path.join(PROJECT, 'stats_kit', 'text.py'), 'utf8')).replace('"-", s.lower()', '"_", s.lower()').replace('s.strip("-")', 's.strip("_")'));
  const second = await py(`_forkd_pytest.run(${ids})`);
  assert.ok(second.reloaded.includes('stats_kit.text') && second.reloaded.includes('test_text'), `reloaded ${second.reloaded}`);
  assert.deepEqual(second.tests.map((t) => t.outcome), ['failed', 'failed', 'failed']);
  assert.match(second.tests[0]!.message!, /assert 'hello_world' == 'hello-world'/);
  const third = await py(`_forkd_pytest.run(${ids})`);
  assert.deepEqual(third.reloaded, [], 'once re-imported, the new file is the baseline');
  assert.deepEqual(third.imported_project, []);
});
