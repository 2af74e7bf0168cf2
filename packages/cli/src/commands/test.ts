/**
 * `forkd test [DIR]`: a pytest suite fanned out over N forked children of a warm snapshot (see
 * @forkd/sdk's runParallelPytest): shards by file or by test, merges the results, writes JUnit XML
 * (--junit FILE), shows each failure (test id, assertion message, the end of its traceback) and
 * exits 1 when any test failed or errored (5 when nothing was collected, as pytest).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { ForkdError, PYTEST_LIMITS } from '@forkd/protocol';
import { pytestSummary, runParallelPytest, toJunitXml, type ParallelPytestResult, type ShardMode } from '@forkd/sdk';
import { keyValues, type CliContext } from '../client.js';
import { escapeControls, parseIntStrict, printJson } from '../output.js';

interface TestFlags {
  template: string;
  children: string;
  shardBy: ShardMode;
  junit?: string;
  env?: string[];
  pytestArg?: string[];
  guestDir?: string;
  timeoutSecs?: string;
  json?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];
const DETAIL_LINES = 12;

export function registerTestCommand(program: Command, { run, client }: CliContext): void {
  program.command('test').description('run a pytest suite in N forked children of a warm snapshot (the project is uploaded, collected once in a parent, then each child runs its shard in the interpreter it inherited)')
    .argument('[dir]', 'the project directory', '.')
    .option('--template <tag>', 'warm snapshot with pytest (made from recipes/ci-parallel-pytest.json)', 'ci-parallel-pytest')
    .option('-n, --children <n>', `children to fan out over (1-${PYTEST_LIMITS.maxChildren})`, '4')
    .addOption(new Option('--shard-by <how>', 'whole files per child, or tests split evenly').choices(['file', 'test']).default('file'))
    .option('--junit <file>', 'write the merged results as JUnit XML')
    .option('--env <KEY=VALUE>', 'environment for the tests (repeatable)', collect)
    .option('--pytest-arg <arg>', 'argument for pytest\'s collection, e.g. -k EXPR (repeatable)', collect)
    .option('--guest-dir <path>', 'where the project goes in the guest', '/root/project')
    .option('--timeout-secs <s>', 'per step (collection, each shard)', '600')
    .option('--json', 'JSON output')
    .action(run(async (dir: string, o: TestFlags) => testCmd(await client(), dir, o)));
}

export async function testCmd(c: Parameters<typeof runParallelPytest>[0], dir: string, o: TestFlags): Promise<number> {
  const projectDir = path.resolve(dir);
  const children = parseIntStrict('--children', o.children);
  const timeoutSecs = parseIntStrict('--timeout-secs', o.timeoutSecs ?? '600');
  const started = performance.now();
  const r = await runParallelPytest(c, {
    template: o.template,
    projectDir,
    children,
    shardBy: o.shardBy,
    ...(o.guestDir ? { guestDir: o.guestDir } : {}),
    ...(o.env ? { env: keyValues(o.env, '--env') } : {}),
    ...(o.pytestArg ? { pytestArgs: o.pytestArg } : {}),
    timeoutMs: timeoutSecs * 1000,
    onProgress: (m) => { if (!o.json) process.stderr.write(`${m}\n`); },
  });
  if (o.junit) await writeJunit(o.junit, r);
  const code = r.totals.failed + r.totals.errors > 0 ? 1 : r.totals.tests === 0 ? 5 : 0;
  if (o.json) {
    printJson({ ...r, exit_code: code, junit: o.junit ? path.resolve(o.junit) : null });
    return code;
  }
  printFailures(r);
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`${pytestSummary(r.totals)} in ${secs} s (${r.collected} tests on ${r.forkTag ? `${r.shards.length} children` : 'one sandbox'} of ${o.template}; collected in ${(r.timings.collect_ms / 1000).toFixed(1)} s, forked in ${(r.timings.fork_ms / 1000).toFixed(1)} s, ran in ${(r.timings.run_ms / 1000).toFixed(1)} s)\n`);
  if (o.junit) process.stdout.write(`JUnit XML: ${path.resolve(o.junit)}\n`);
  return code;
}

async function writeJunit(file: string, r: ParallelPytestResult): Promise<void> {
  const shards = [...r.shards];
  if (r.collectionErrors.length) shards.unshift({ shard: -1, sandboxId: r.parentId, seconds: 0, tests: r.collectionErrors, exitCode: 2, importedCount: 0, imported: [], importedProject: [], reloaded: [], wallMs: 0 });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await fs.writeFile(tmp, toJunitXml(shards));
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `cannot write --junit ${file}: ${(e as Error).message}`);
  }
}

function printFailures(r: ParallelPytestResult): void {
  const bad = r.tests.filter((t) => t.outcome === 'failed' || t.outcome === 'error');
  for (const t of bad) {
    const label = t.outcome === 'failed' ? 'FAILED' : `ERROR (${t.phase ?? 'run'})`;
    process.stdout.write(`${label} ${escapeControls(t.nodeid)} - ${escapeControls((t.message ?? '').split('\n')[0]!)}\n`);
    const tail = (t.details ?? '').trimEnd().split('\n').slice(-DETAIL_LINES);
    if (tail.length && tail.join('') !== '') process.stdout.write(`${tail.map((l) => `    ${escapeControls(l)}`).join('\n')}\n`);
  }
}
