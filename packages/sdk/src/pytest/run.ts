/**
 * Parallel pytest on forkd (`forkd test`): one sandbox of a warm snapshot (pytest and the heavy
 * libraries already imported), the project uploaded into it and collected there (so the project's
 * modules and tests are imported once, in that parent), then forked into N children that each run
 * their shard with pytest.main in the interpreter they inherited (one shard runs in that sandbox,
 * without a fork). Results merge into one report.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PYTEST_LIMITS } from '@forkd/protocol';
import { errorFor } from '../errors.js';
import type { Controller } from '../controller.js';
import { PYTEST_RUNNER_SOURCE } from './runner-source.js';
import { shardTests, type CollectedTest, type ShardMode } from './shard.js';
import { totalsOf, type ShardResult, type TestResult, type Totals } from './junit.js';

export interface ParallelPytestOpts {
  /** The warm snapshot (e.g. one made from recipes/ci-parallel-pytest.json). */
  template: string;
  /** The project on this machine (uploaded). */
  projectDir: string;
  /** Where it goes in the guest. */
  guestDir?: string;
  children: number;
  shardBy?: ShardMode;
  /** Environment for the tests (set in each child before its run). */
  env?: Record<string, string>;
  /** pytest arguments for collection (selection: -k, -m, paths relative to the project). */
  pytestArgs?: string[];
  /** Seconds per test from an earlier run, to balance by time rather than count. */
  durations?: Record<string, number>;
  /** Per eval call (collection, each shard's run). */
  timeoutMs?: number;
  onProgress?: (message: string) => void;
}

export interface ShardRun extends ShardResult {
  exitCode: number;
  /** Modules the child imported during its run (none of the project's unless its files changed). */
  importedCount: number;
  imported: string[];
  importedProject: string[];
  /** Project modules dropped because their file changed since collection. */
  reloaded: string[];
  /** From the fork's answer to this child's report. */
  wallMs: number;
}

export interface ParallelPytestResult {
  parentId: string;
  forkTag: string;
  collected: number;
  collectionErrors: TestResult[];
  shards: ShardRun[];
  totals: Totals;
  /** The merged list, collection errors first. */
  tests: TestResult[];
  timings: { create_ms: number; upload_ms: number; collect_ms: number; fork_ms: number; run_ms: number; total_ms: number };
}

const SKIP_DIRS = new Set(['.git', '__pycache__', '.pytest_cache', '.mypy_cache', '.venv', 'venv', 'node_modules', '.tox']);

/** The project's files (relative paths), without caches, VCS data and virtualenvs; capped. */
export async function projectFiles(dir: string): Promise<Array<{ rel: string; abs: string; size: number }>> {
  const out: Array<{ rel: string; abs: string; size: number }> = [];
  let bytes = 0;
  async function walk(sub: string): Promise<void> {
    const entries = await fs.readdir(path.join(dir, sub), { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) await walk(rel);
      } else if (e.isFile() && !e.name.endsWith('.pyc')) {
        const abs = path.join(dir, rel);
        const size = (await fs.stat(abs)).size;
        bytes += size;
        out.push({ rel, abs, size });
        if (out.length > PYTEST_LIMITS.maxProjectFiles) throw errorFor('FORKD_E_INVALID_ARGUMENT', `project ${dir} has more than ${PYTEST_LIMITS.maxProjectFiles} files`);
        if (bytes > PYTEST_LIMITS.maxProjectBytes) throw errorFor('FORKD_E_INVALID_ARGUMENT', `project ${dir} is over ${PYTEST_LIMITS.maxProjectBytes} bytes`);
      }
    }
  }
  try {
    await walk('');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw errorFor('FORKD_E_INVALID_ARGUMENT', `cannot read project ${dir}: ${(e as Error).message}`);
    throw e;
  }
  return out;
}

interface EvalJson<T> { value: T }

async function pyCall<T>(c: Controller, id: string, code: string, timeoutMs: number, what: string): Promise<EvalJson<T>> {
  const r = await c.eval(id, { code, language: 'python', timeout_secs: Math.ceil(timeoutMs / 1000) });
  if (r.error) throw errorFor('FORKD_E_TEST_RUN_FAILED', `${what} in ${id}: ${r.error_type ?? 'Error'}: ${r.error}\n${r.traceback ?? ''}`.trim());
  if (r.result_json === undefined || r.result_json === null) throw errorFor('FORKD_E_TEST_RUN_FAILED', `${what} in ${id} returned no JSON value (${r.result ?? 'nothing'})`);
  return { value: r.result_json as T };
}

export async function runParallelPytest(c: Controller, opts: ParallelPytestOpts): Promise<ParallelPytestResult> {
  const n = opts.children;
  if (!Number.isInteger(n) || n < 1 || n > PYTEST_LIMITS.maxChildren) throw errorFor('FORKD_E_INVALID_ARGUMENT', `children must be 1..${PYTEST_LIMITS.maxChildren}, not ${n}`);
  const guestDir = opts.guestDir ?? '/root/project';
  if (!/^\/[A-Za-z0-9._/-]+$/.test(guestDir)) throw errorFor('FORKD_E_INVALID_ARGUMENT', `guest directory ${JSON.stringify(guestDir)}: an absolute path of letters, digits, . _ - /`);
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const say = opts.onProgress ?? (() => undefined);
  const files = await projectFiles(opts.projectDir);
  const t0 = performance.now();
  say(`starting a sandbox of ${opts.template}`);
  const lifetimeMs = Math.max(timeoutMs * 2, 600_000);
  const [parentInfo] = await c.spawnSandboxes({ snapshot_tag: opts.template, n: 1, timeout_ms: lifetimeMs });
  const parent = parentInfo!.id;
  const kids: string[] = [];
  let forkTag = '';
  try {
    const tCreated = performance.now();
    say(`uploading ${files.length} files to ${guestDir}`);
    const queue = [...files];
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let f = queue.shift(); f; f = queue.shift()) await c.writeFile(parent, `${guestDir}/${f.rel}`, await fs.readFile(f.abs));
    }));
    const tUploaded = performance.now();
    say('collecting in the parent (imports the project once)');
    await pyCall(c, parent, `${PYTEST_RUNNER_SOURCE}\n0`, timeoutMs, 'loading the runner');
    const collected = (await pyCall<{ exit_code: number; items: Array<CollectedTest & { collect_error?: string }>; output: string }>(c, parent,
      `_forkd_pytest.collect(${JSON.stringify(guestDir)}, ${JSON.stringify(opts.pytestArgs ?? [])})`, timeoutMs, 'collection')).value;
    const items = collected.items.filter((i) => !i.collect_error);
    const collectionErrors: TestResult[] = collected.items.filter((i) => i.collect_error).map((i) => ({ nodeid: i.nodeid, outcome: 'error', seconds: 0, phase: 'collect', message: lastLine(i.collect_error!), details: i.collect_error! }));
    if (items.length > PYTEST_LIMITS.maxTests) throw errorFor('FORKD_E_INVALID_ARGUMENT', `${items.length} tests collected: over ${PYTEST_LIMITS.maxTests}`);
    if (![0, 2, 5].includes(collected.exit_code)) throw errorFor('FORKD_E_TEST_RUN_FAILED', `pytest collection exited with ${collected.exit_code}: ${collected.output}`);
    const tCollected = performance.now();
    const shards = shardTests(items, n, opts.shardBy ?? 'file', opts.durations);
    let runs: ShardRun[] = [];
    let tForked = tCollected;
    const runShard = async (sb: string, shard: CollectedTest[], i: number): Promise<ShardRun> => {
      const r = (await pyCall<{ exit_code: number; tests: TestResult[]; seconds: number; imported: string[]; imported_count: number; imported_project: string[]; reloaded: string[]; output: string }>(c, sb,
        `_forkd_pytest.run(${JSON.stringify(shard.map((t) => t.nodeid))}, ${JSON.stringify(opts.env ?? {})})`, timeoutMs, `shard ${i}`)).value;
      if (![0, 1, 5].includes(r.exit_code)) throw errorFor('FORKD_E_TEST_RUN_FAILED', `shard ${i} (${sb}): pytest exited with ${r.exit_code}: ${r.output}`);
      say(`shard ${i}: ${summary(totalsOf(r.tests))} in ${r.seconds.toFixed(1)} s`);
      return { shard: i, sandboxId: sb, seconds: r.seconds, tests: r.tests, exitCode: r.exit_code, importedCount: r.imported_count, imported: r.imported, importedProject: r.imported_project, reloaded: r.reloaded, wallMs: performance.now() - tForked };
    };
    if (shards.length === 1) {
      // One shard: the sandbox that collected runs it; a fork would only add its capture and a restore.
      say(`${items.length} tests in one shard: running them in the collecting sandbox (no fork)`);
      runs = [await runShard(parent, shards[0]!, 0)];
    } else if (shards.length > 1) {
      say(`${items.length} tests in ${shards.length} shards: forking ${shards.length} children`);
      const forked = await c.forkSandbox(parent, { count: shards.length, timeout_ms: lifetimeMs });
      forkTag = forked.snapshot_tag;
      kids.push(...forked.sandboxes.map((s) => s.id));
      tForked = performance.now();
      runs = await Promise.all(shards.map((shard, i) => runShard(kids[i]!, shard, i)));
    }
    const tDone = performance.now();
    const tests = [...collectionErrors, ...runs.flatMap((r) => r.tests)];
    return {
      parentId: parent,
      forkTag,
      collected: items.length,
      collectionErrors,
      shards: runs,
      totals: totalsOf(tests),
      tests,
      timings: { create_ms: tCreated - t0, upload_ms: tUploaded - tCreated, collect_ms: tCollected - tUploaded, fork_ms: tForked - tCollected, run_ms: tDone - tForked, total_ms: tDone - t0 },
    };
  } finally {
    await Promise.all([...kids, parent].map((id) => c.killSandbox(id).catch(() => undefined)));
    // The fork's capture is this run's alone: gone with its children.
    if (forkTag) await c.deleteSnapshot(forkTag).catch(() => undefined);
  }
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

export function summary(t: Totals): string {
  const parts = [`${t.passed} passed`];
  if (t.failed) parts.push(`${t.failed} failed`);
  if (t.errors) parts.push(`${t.errors} errors`);
  if (t.skipped) parts.push(`${t.skipped} skipped`);
  return parts.join(', ');
}
