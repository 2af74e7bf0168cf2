/** The sandbox verbs (spawn, ls, exec, eval, files, fork, branch, workspaces, jobs), through the daemon. */
import { Option, type Command } from 'commander';
import { BranchBody, CreateWorkspaceFields, EvalBody, ExecBody, NetworkPolicyBody, SpawnBody, SuspendBody } from '@forkd/api';
import { ForkdError } from '@forkd/protocol';
import { localFlag, type CliContext } from '../client.js';
import { parseIntStrict } from '../output.js';
import { schemaFlags, withFlags } from '../schema-flags.js';
import { evalCmd, execCmd, filesGet, filesLs, filesPut, killCmd, lsCmd, networkCmd, pingCmd, portCmd, spawnCmd } from './sandboxes.js';
import { branchCmd, forkSandboxCmd, jobCmd, workspaceCmd } from './branching.js';
import { parseSeeds, parseVaryFlags } from '../vary-flags.js';
import { printForkReport, runFork, runForkLocal } from './fork.js';
import { quickstart } from './quickstart.js';
import { runCodeCmd } from './run-code.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];
type Opts = Record<string, unknown> & { json?: boolean };
const jsonOf = (o: Opts) => (o.json ? { json: true } : {});
/** --vary and --seeds as REST's vary and seeds. */
function varyOpts(vary: string[] | undefined, seeds: string | undefined) {
  const v = parseVaryFlags(vary);
  const s = parseSeeds(seeds);
  return { ...(v ? { vary: v } : {}), ...(s ? { seeds: s } : {}) };
}

/** forkd's spawn flags for features not offered here: accepted and sent, so the daemon's refusal shows. */
const forkdOnly = { description: "forkd's flag, not offered by this forkd (the daemon says so)" };
/** Egress policy flags (spawn, network). */
const egressSpecs = {
  allow_internet_access: { description: "the public internet (never the host, other children, link-local or private ranges); default: the daemon's --default-egress" },
  allow_out: { flags: '--allow-out <entry>', description: 'allowed destination: IP, CIDR, host name or *.wildcard, optional :port' },
  deny_out: { flags: '--deny-out <entry>', description: 'denied destination (wins over --allow-out; 0.0.0.0/0 = deny by default)' },
} as const;
const notOffered = { prewarm: forkdOnly, live_fork: forkdOnly, hugepages: forkdOnly } as const;

export function registerRemoteCommands(program: Command, { run, client, engine }: CliContext): void {
  const spawn = schemaFlags(SpawnBody.shape, {
    snapshot_tag: { flags: '--tag <tag>', required: true },
    n: { flags: '-n, --count <n>', description: 'how many' },
    timeout_ms: { description: 'kill each sandbox this long after spawn (ms)' },
    envs: { flags: '--env <KEY=VALUE>', description: 'environment for every command' },
    metadata: { flags: '--metadata <KEY=VALUE>', description: 'metadata' },
    network: { description: 'each sandbox gets its own network namespace and way out (egress policy applies)' },
    per_child_netns: { description: "forkd's name for --network" },
    ...egressSpecs,
    ...notOffered,
  });
  withFlags(program.command('spawn').description('spawn N sandboxes from a snapshot (through the daemon); they stay until killed or timed out'), spawn)
    .option('--json', 'JSON output')
    .action(run(async (o: Opts) => spawnCmd(await client(), { body: spawn.read(o) as Parameters<typeof spawnCmd>[1]['body'], ...jsonOf(o) })));

  const network = schemaFlags(NetworkPolicyBody.shape, egressSpecs);
  withFlags(program.command('network').description("replace a live sandbox's egress policy (nothing given: the daemon's default)").argument('<id>'), network)
    .option('--json', 'JSON output')
    .action(run(async (id: string, o: Opts) => networkCmd(await client(), id, network.read(o), o)));

  program.command('ls').description('list live sandboxes').option('--tag <tag>', 'only those from this snapshot').option('--json', 'JSON output')
    .action(run(async (o: { tag?: string; json?: boolean }) => lsCmd(await client(), o)));

  program.command('kill').description('kill sandboxes').argument('[ids...]').option('--all', 'every sandbox').option('--tag <tag>', 'every sandbox from this snapshot').option('--json', 'JSON output')
    .action(run(async (ids: string[], o: { all?: boolean; tag?: string; json?: boolean }) => killCmd(await client(), ids, o)));

  program.command('port').description('expose a guest TCP port on the host; prints host:port (E2B getHost)').argument('<id>').argument('<port>').option('--json', 'JSON output')
    .action(run(async (id: string, port: string, o: { json?: boolean }) => portCmd(await client(), id, port, o)));
  program.command('ping').description("check a sandbox's agent").argument('<id>').option('--json', 'JSON output')
    .action(run(async (id: string, o: { json?: boolean }) => pingCmd(await client(), id, o)));

  const exec = schemaFlags(ExecBody.shape, {
    cmd: { flags: '--sh <line>', description: 'a shell command line instead of argv' },
    timeout_secs: { description: 'kill it after this long (seconds)' },
    cwd: { flags: '--cwd <dir>', description: 'working directory' },
    envs: { flags: '--env <KEY=VALUE>', description: 'environment' },
  });
  withFlags(program.command('exec').description('run a command in a sandbox, streaming its output; exits with its exit code')
    .argument('<id>').argument('[argv...]', 'command and arguments, after --'), exec)
    .option('--json', 'JSON output (collected, not streamed)')
    .action(run(async (id: string, argv: string[], o: Opts) => execCmd(await client(), id, argv, { body: exec.read(o), ...jsonOf(o) })));

  const evalFlags = schemaFlags(EvalBody.shape, {
    language: { flags: '--lang <language>', description: 'default: the snapshot language' },
    timeout_secs: { description: 'timeout (seconds)' },
  });
  withFlags(program.command('eval').description("evaluate code in a sandbox's persistent interpreter").argument('<id>').argument('<code>'), evalFlags)
    .option('--json', 'JSON output')
    .option('--rich', 'Python with rich results (run_code): display() outputs, DataFrames as HTML, plots as PNG')
    .option('--out-dir <dir>', 'write PNG/JPEG results to files in DIR (named and printed); implies --rich')
    .action(run(async (id: string, code: string, o: Opts & { rich?: boolean; outDir?: string }) => {
      if (!o.rich && o.outDir === undefined) return evalCmd(await client(), id, { code, ...evalFlags.read(o) }, o);
      const { language, ...rest } = evalFlags.read(o);
      if (language === 'js') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--rich and --out-dir run Python cells (run_code); JavaScript has no rich results');
      return runCodeCmd(await client(), id, { code, ...rest }, { ...jsonOf(o), ...(o.outDir !== undefined ? { outDir: o.outDir } : {}) });
    }));

  const files = program.command('files').description('files inside a sandbox');
  files.command('ls').argument('<id>').argument('<path>').option('--depth <n>', 'recurse').option('--json', 'JSON output')
    .action(run(async (id: string, p: string, o: { depth?: string; json?: boolean }) => filesLs(await client(), id, p, { ...(o.depth ? { depth: parseIntStrict('--depth', o.depth) } : {}), ...(o.json ? { json: true } : {}) })));
  files.command('get').description('download (to stdout without LOCAL or with -)').argument('<id>').argument('<remote>').argument('[local]').option('--json', 'JSON output')
    .action(run(async (id: string, remote: string, local: string | undefined, o: { json?: boolean }) => filesGet(await client(), id, remote, local, o)));
  files.command('put').description('upload a local file').argument('<id>').argument('<local>').argument('<remote>').option('--json', 'JSON output')
    .action(run(async (id: string, local: string, remote: string, o: { json?: boolean }) => filesPut(await client(), id, local, remote, o)));

  const forkSpawn = schemaFlags(SpawnBody.shape, { snapshot_tag: { flags: '--tag <tag>', required: true }, n: { flags: '-n, --count <n>', description: 'number of children' }, ...notOffered });
  localFlag(withFlags(program.command('fork').description('fork N children from a snapshot, run a command or code in each, report timings, tear down'), forkSpawn))
    .option('--exec <cmd>', 'shell command line to run in each child').option('--eval <code>', "code in the snapshot's language")
    .addOption(new Option('--lang <language>', 'language for --eval').choices(['python', 'js']))
    .option('--timeout-ms <ms>', 'per-call timeout (default: the exec and eval routes\')').option('--json', 'JSON output')
    .option('--vary <NAME=V1,V2,...>', 'one value per child: in its commands\' environment and its interpreter\'s variables (repeatable)', collect)
    .option('--seeds <S1,S2,...>', 'each child\'s RNG seed (default: random, reported)')
    .action(run(async (o: Opts & { exec?: string; eval?: string; lang?: 'python' | 'js'; timeoutMs?: string; local?: boolean; vary?: string[]; seeds?: string }) => {
      if (o.exec !== undefined && o.eval !== undefined) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--exec and --eval are exclusive');
      const { snapshot_tag: tag, n, ...unoffered } = forkSpawn.read(o) as { snapshot_tag: string; n: number };
      const opts = {
        tag,
        n,
        ...(Object.keys(unoffered).length ? { spawnFlags: unoffered } : {}),
        ...(o.exec !== undefined ? { exec: o.exec } : {}),
        ...(o.eval !== undefined ? { eval: o.eval } : {}),
        ...(o.lang ? { lang: o.lang } : {}),
        ...(o.timeoutMs !== undefined ? { timeoutMs: parseIntStrict('--timeout-ms', o.timeoutMs) } : {}),
        ...varyOpts(o.vary, o.seeds),
        json: o.json ?? false,
      };
      const report = o.local ? await runForkLocal(engine(), opts) : await runFork(await client(), opts);
      printForkReport(report, o.json ?? false);
      return report.children.every((c) => c.ok) ? 0 : 1;
    }));

  program.command('fork-sandbox').description('fork a running sandbox: capture it once, start N children from that instant, each with its --vary values and seed').argument('<id>')
    .option('-n, --count <n>', 'children', '1').addOption(new Option('--mode <mode>', 'live: short pause; full: paused for the whole capture').choices(['full', 'live']))
    .option('--vary <NAME=V1,V2,...>', 'one value per child (repeatable)', collect).option('--seeds <S1,S2,...>', 'each child\'s RNG seed (default: random, reported)')
    .option('--json', 'JSON output')
    .action(run(async (id: string, o: { count: string; mode?: 'full' | 'live'; vary?: string[]; seeds?: string; json?: boolean }) =>
      forkSandboxCmd(await client(), id, { count: parseIntStrict('-n', o.count), ...(o.mode ? { mode: o.mode } : {}), ...varyOpts(o.vary, o.seeds) }, jsonOf(o))));

  localFlag(program.command('quickstart').description('build the default image and snapshot if missing, fork 10 children, eval in each'), 'no daemon: run the engine in this process')
    .option('-n, --count <n>', 'children', '10').option('--json', 'JSON output')
    .action(run(async (o: { count: string; json?: boolean; local?: boolean }) =>
      quickstart(o.local ? { engine: engine() } : { controller: await client() }, { n: parseIntStrict('-n', o.count), ...(o.json ? { json: true } : {}) })));

  const branch = schemaFlags(BranchBody.shape, {
    tag: { description: 'tag of the new snapshot (default branch-<id>-<time>-<rand>)' },
    mode: { description: 'live: memory copied while it runs (short pause); full: paused for the whole copy; diff: forkd\'s name for full' },
  });
  withFlags(program.command('branch').description('capture a running sandbox as a snapshot layer; it keeps running').argument('<id>'), branch)
    .option('--no-wait', 'return at once with a job to follow (forkd job ID)').option('--json', 'JSON output')
    .action(run(async (id: string, o: Opts & { wait: boolean }) => branchCmd(await client(), id, { ...(branch.read(o) as { tag?: string; mode?: 'full' | 'live' | 'diff' }), wait: o.wait, ...jsonOf(o) })));

  program.command('job').description('a long-running job (snapshot creation, branch, diff, compact)').argument('<id>').option('--wait', 'follow it to the end').option('--json', 'JSON output')
    .action(run(async (id: string, o: { wait?: boolean; json?: boolean }) => jobCmd(await client(), id, o)));

  const ws = program.command('workspace').description('named long-lived sandboxes that suspend to disk and resume');
  const wsCreate = schemaFlags(CreateWorkspaceFields.shape, {
    snapshot_tag: { flags: '--snapshot <tag>', description: 'start from this snapshot' },
    sandbox_id: { flags: '--sandbox <id>', description: 'or adopt this running sandbox' },
    metadata: { flags: '--metadata <KEY=VALUE>', description: 'metadata' },
    envs: { flags: '--env <KEY=VALUE>', description: 'environment for every command' },
    network: { description: 'the workspace\'s sandbox gets its own network, kept across suspend/resume' },
    per_child_netns: { description: "forkd's name for --network" },
  });
  withFlags(ws.command('create').argument('<name>'), wsCreate).option('--json', 'JSON output')
    .action(run(async (name: string, o: Opts) => {
      const body = wsCreate.read(o);
      if ((body.snapshot_tag === undefined) === (body.sandbox_id === undefined)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'give --snapshot TAG or --sandbox ID');
      return workspaceCmd(await client(), 'create', name, { body, ...jsonOf(o) });
    }));
  const suspend = schemaFlags(SuspendBody.shape, { diff: { description: 'forkd\'s flag (every suspend is stored as a layer)' } });
  withFlags(ws.command('suspend').argument('<name>'), suspend).option('--json', 'JSON output')
    .action(run(async (name: string, o: Opts) => workspaceCmd(await client(), 'suspend', name, { body: suspend.read(o), ...jsonOf(o) })));
  for (const action of ['resume', 'get', 'delete'] as const) {
    ws.command(action).argument('<name>').option('--json', 'JSON output').action(run(async (name: string, o: { json?: boolean }) => workspaceCmd(await client(), action, name, o)));
  }
  ws.command('list').alias('ls').option('--json', 'JSON output').action(run(async (o: { json?: boolean }) => workspaceCmd(await client(), 'list', undefined, o)));
}

