/** Registers the commands that go through the daemon (REST), forkd-style verbs. */
import { Option, type Command } from 'commander';
import { ForkdError } from '@forkd/protocol';
import { daemonClient, keyValues, type DaemonFlags } from '../client.js';
import { parseIntStrict, printJson, table, bytes } from '../output.js';
import { evalCmd, execCmd, filesGet, filesLs, filesPut, killCmd, lsCmd, pingCmd, spawnCmd } from './sandboxes.js';
import { branchCmd, compactCmd, diffCmd, jobCmd, rmiCmd, treeCmd, workspaceCmd } from './branching.js';

type Runner = <A extends unknown[]>(fn: (...args: A) => Promise<number | void>) => (...args: A) => Promise<void>;
const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerRemoteCommands(program: Command, run: Runner): void {
  program
    .option('--daemon-url <url>', 'daemon to use: http://host:port or unix:/path (default $FORKD_URL, else the local daemon, started on demand)')
    .option('--daemon-token <token>', 'bearer token for the daemon (default $FORKD_TOKEN)');
  const client = () => daemonClient(program.opts<DaemonFlags>());
  const secs = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${name} must be a positive number`);
    return n;
  };

  program.command('spawn').description('spawn N sandboxes from a snapshot (through the daemon); they stay until killed or timed out')
    .requiredOption('--tag <tag>', 'snapshot tag').option('-n, --count <n>', 'how many', '1')
    .option('--timeout-ms <ms>', 'kill each sandbox this long after spawn')
    .option('--env <KEY=VALUE>', 'environment for every command (repeatable)', collect).option('--metadata <KEY=VALUE>', 'metadata (repeatable)', collect)
    .option('--json', 'JSON output')
    .action(run(async (o: { tag: string; count: string; timeoutMs?: string; env?: string[]; metadata?: string[]; json?: boolean }) => spawnCmd(await client(), {
      tag: o.tag, n: parseIntStrict('-n', o.count), envs: keyValues(o.env, '--env'), metadata: keyValues(o.metadata, '--metadata'),
      ...(o.timeoutMs !== undefined ? { timeoutMs: parseIntStrict('--timeout-ms', o.timeoutMs) } : {}), ...(o.json ? { json: true } : {}),
    })));

  program.command('ls').description('list live sandboxes').option('--tag <tag>', 'only those from this snapshot').option('--json', 'JSON output')
    .action(run(async (o: { tag?: string; json?: boolean }) => lsCmd(await client(), o)));

  program.command('kill').description('kill sandboxes').argument('[ids...]').option('--all', 'every sandbox').option('--tag <tag>', 'every sandbox from this snapshot').option('--json', 'JSON output')
    .action(run(async (ids: string[], o: { all?: boolean; tag?: string; json?: boolean }) => killCmd(await client(), ids, o)));

  program.command('ping').description("check a sandbox's agent").argument('<id>').option('--json', 'JSON output')
    .action(run(async (id: string, o: { json?: boolean }) => pingCmd(await client(), id, o)));

  program.command('exec').description('run a command in a sandbox, streaming its output; exits with its exit code')
    .argument('<id>').argument('[argv...]', 'command and arguments, after --').option('--sh <line>', 'a shell command line instead of argv')
    .option('--timeout-secs <n>', 'kill it after this long', '30').option('--cwd <dir>', 'working directory').option('--env <KEY=VALUE>', 'environment (repeatable)', collect)
    .option('--json', 'JSON output (collected, not streamed)')
    .action(run(async (id: string, argv: string[], o: { sh?: string; timeoutSecs: string; cwd?: string; env?: string[]; json?: boolean }) => execCmd(await client(), id, argv, {
      ...(o.sh !== undefined ? { sh: o.sh } : {}), timeoutSecs: secs('--timeout-secs', o.timeoutSecs), ...(o.cwd ? { cwd: o.cwd } : {}), envs: keyValues(o.env, '--env'), ...(o.json ? { json: true } : {}),
    })));

  program.command('eval').description("evaluate code in a sandbox's persistent interpreter").argument('<id>').argument('<code>')
    .addOption(new Option('--lang <language>', 'default: the snapshot language').choices(['python', 'js'])).option('--timeout-secs <n>', 'timeout', '60').option('--json', 'JSON output')
    .action(run(async (id: string, code: string, o: { lang?: 'python' | 'js'; timeoutSecs: string; json?: boolean }) => evalCmd(await client(), id, code, { timeoutSecs: secs('--timeout-secs', o.timeoutSecs), ...(o.lang ? { lang: o.lang } : {}), ...(o.json ? { json: true } : {}) })));

  const files = program.command('files').description('files inside a sandbox');
  files.command('ls').argument('<id>').argument('<path>').option('--depth <n>', 'recurse').option('--json', 'JSON output')
    .action(run(async (id: string, p: string, o: { depth?: string; json?: boolean }) => filesLs(await client(), id, p, { ...(o.depth ? { depth: parseIntStrict('--depth', o.depth) } : {}), ...(o.json ? { json: true } : {}) })));
  files.command('get').description('download (to stdout without LOCAL or with -)').argument('<id>').argument('<remote>').argument('[local]').option('--json', 'JSON output')
    .action(run(async (id: string, remote: string, local: string | undefined, o: { json?: boolean }) => filesGet(await client(), id, remote, local, o)));
  files.command('put').description('upload a local file').argument('<id>').argument('<local>').argument('<remote>').option('--json', 'JSON output')
    .action(run(async (id: string, local: string, remote: string, o: { json?: boolean }) => filesPut(await client(), id, local, remote, o)));

  const info = run(async (tag: string, o: { json?: boolean }) => {
    const d = await (await client()).snapshotInfo(tag);
    if (o.json) return printJson(d);
    const rows: Array<[string, string | number]> = [
      ['tag', d.tag], ['recipe', d.recipe ?? '-'], ['language', d.language], ['accel', d.accel], ['memory', `${d.mem_mib} MiB, ${d.vcpus} vCPU`],
      ['parent', d.parent_tag ?? '-'], ['chain depth', d.chain_depth], ['ancestors', d.ancestors.join(' > ') || '-'], ['dependents', d.dependents.join(', ') || '-'],
      ['from', d.branched_from ?? '-'], ['memory on disk', `${bytes(d.memory_physical_bytes)} of ${bytes(d.memory_logical_bytes)}`], ['disk layer', bytes(d.disk_physical_bytes)],
      ['layer storage', bytes(d.layer_physical_bytes)], ['vmstate', bytes(d.vmstate_bytes)], ['qemu / kernel', `${d.qemu_version} / ${d.kernel_version}`],
      ['live sandboxes', d.live_sandboxes], ['created', new Date(d.created_at_unix * 1000).toISOString()],
    ];
    process.stdout.write(`${table(['FIELD', 'VALUE'], rows)}\n`);
  });
  program.command('branch').description('capture a running sandbox as a snapshot layer; it keeps running')
    .argument('<id>').option('--tag <tag>', 'tag of the new snapshot (default branch-<id>-<time>-<rand>)')
    .addOption(new Option('--mode <mode>', 'live: memory copied while it runs (short pause); full: paused for the whole copy').choices(['live', 'full']).default('live'))
    .option('--no-wait', 'return at once with a job to follow (forkd job ID)').option('--json', 'JSON output')
    .action(run(async (id: string, o: { tag?: string; mode: 'live' | 'full'; wait: boolean; json?: boolean }) => branchCmd(await client(), id, o)));

  program.command('snapshot-diff').description('run a command in a child of --from and keep the result as layer --tag (only what changed)')
    .requiredOption('--from <tag>', 'base snapshot').requiredOption('--tag <tag>', 'the new layer').requiredOption('--exec <cmd>', 'a shell command line (&& and pipes work)')
    .option('--exec-timeout-secs <n>', 'command timeout', '600').option('--json', 'JSON output')
    .action(run(async (o: { from: string; tag: string; exec: string; execTimeoutSecs: string; json?: boolean }) => diffCmd(await client(), { from: o.from, tag: o.tag, exec: o.exec, timeoutSecs: secs('--exec-timeout-secs', o.execTimeoutSecs), ...(o.json ? { json: true } : {}) })));

  program.command('snapshot-compact').description('flatten a snapshot (a chain head) into a new self-contained one')
    .requiredOption('--from <tag>', 'the snapshot to flatten').requiredOption('--to <tag>', 'the new snapshot').option('--json', 'JSON output')
    .action(run(async (o: { from: string; to: string; json?: boolean }) => compactCmd(await client(), o)));

  program.command('rmi').description('remove snapshots (refused while layers or sandboxes depend on them)').argument('<tags...>')
    .option('--cascade', 'also remove every snapshot layered on them').option('--force', 'even while sandboxes run from them (they keep running)').option('--json', 'JSON output')
    .action(run(async (tags: string[], o: { cascade?: boolean; force?: boolean; json?: boolean }) => rmiCmd(await client(), tags, o)));

  program.command('job').description('a long-running job (snapshot creation, branch, diff, compact)').argument('<id>').option('--wait', 'follow it to the end').option('--json', 'JSON output')
    .action(run(async (id: string, o: { wait?: boolean; json?: boolean }) => jobCmd(await client(), id, o)));

  const ws = program.command('workspace').description('named long-lived sandboxes that suspend to disk and resume');
  ws.command('create').argument('<name>').option('--snapshot <tag>', 'start from this snapshot').option('--sandbox <id>', 'or adopt this running sandbox').option('--json', 'JSON output')
    .action(run(async (name: string, o: { snapshot?: string; sandbox?: string; json?: boolean }) => {
      if (Boolean(o.snapshot) === Boolean(o.sandbox)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'give --snapshot TAG or --sandbox ID');
      return workspaceCmd(await client(), 'create', name, o);
    }));
  for (const action of ['suspend', 'resume', 'get', 'delete'] as const) {
    ws.command(action).argument('<name>').option('--json', 'JSON output').action(run(async (name: string, o: { json?: boolean }) => workspaceCmd(await client(), action, name, o)));
  }
  ws.command('list').alias('ls').option('--json', 'JSON output').action(run(async (o: { json?: boolean }) => workspaceCmd(await client(), 'list', undefined, o)));

  program.command('snapshot-info').description('snapshot detail: sizes, chain, dependents (through the daemon)').argument('<tag>').option('--json', 'JSON output').action(info);
  const snapshot = program.commands.find((c) => c.name() === 'snapshot');
  const tree = run(async (o: { json?: boolean }) => treeCmd(await client(), o));
  snapshot?.command('tree').description('the snapshots, their layers and the sandboxes running from each').option('--json', 'JSON output').action(tree);
  program.command('snapshot-tree').description('the snapshots, their layers and the sandboxes running from each').option('--json', 'JSON output').action(tree);
  snapshot?.command('info').description('snapshot detail: sizes, chain, dependents (through the daemon)').argument('<tag>').option('--json', 'JSON output').action(info);
}
