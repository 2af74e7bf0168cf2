import { Command, Option } from 'commander';
import { Engine, type AccelRequest } from '@forkd/engine';
import { ForkdError } from '@forkd/protocol';
import { parseIntStrict, printJson, reportError } from './output.js';
import { printForkReport, runFork } from './commands/fork.js';
import { imageBuild, imageList, listSnapshotsCmd, snapshotCreate } from './commands/snapshots.js';
import { cleanup, doctor } from './commands/host.js';
import { quickstart } from './commands/quickstart.js';
import { serve, SERVE_LIMITS, type ServeFlags } from './commands/serve.js';
import { registerRemoteCommands } from './commands/remote.js';

const program = new Command();
program
  .name('forkd')
  .description('microVM sandboxes forked from a warm parent: boot once, fork many')
  .version('0.1.0')
  .addOption(new Option('--accel <mode>', 'acceleration').choices(['auto', 'kvm', 'tcg']).default('auto'))
  .option('--kernel <path>', 'guest kernel (default: newest /boot/vmlinuz-*-cloud-amd64)')
  .option('--home <dir>', 'data directory (default: $FORKD_HOME or ~/.local/share/forkd)')
  .showHelpAfterError();

function engine(): Engine {
  const g = program.opts<{ accel: AccelRequest; kernel?: string; home?: string }>();
  return new Engine({ accel: g.accel, ...(g.kernel ? { kernel: g.kernel } : {}), ...(g.home ? { home: g.home } : {}) });
}

/** Runs an action, mapping every failure to a FORKD_E_* message and exit status. */
function run<A extends unknown[]>(fn: (...args: A) => Promise<number | void>) {
  return async (...args: A) => {
    const cmd = args[args.length - 1] as Command;
    const json = Boolean((cmd.opts() as { json?: boolean }).json);
    try {
      const code = await fn(...args);
      process.exitCode = typeof code === 'number' ? code : 0;
    } catch (e) {
      process.exitCode = reportError(e, { json });
    }
  };
}

program.command('doctor').description('check the host and show the acceleration verdict').option('--json', 'JSON output')
  .action(run(async (o: { json?: boolean }) => doctor(engine(), o)));

const image = program.command('image').description('guest images built from recipes');
image.command('build').argument('<recipe>', 'recipe name (recipes/*.json) or path to a recipe file').option('--rebuild', 'ignore the cache').option('--json', 'JSON output')
  .description('build a root filesystem image (debootstrap + agent), cached by content')
  .action(run(async (recipe: string, o: { json?: boolean; rebuild?: boolean }) => imageBuild(engine(), recipe, o)));
image.command('ls').description('list built images and known recipes').option('--json', 'JSON output')
  .action(run(async (o: { json?: boolean }) => imageList(engine(), o)));

const snapshot = program.command('snapshot').description('warm parent snapshots');
snapshot.command('create').description('boot a parent, warm it up, snapshot it')
  .requiredOption('--tag <tag>', 'snapshot tag').requiredOption('--recipe <recipe>', 'recipe name or file')
  .option('--mem-mib <n>', 'guest memory (MiB)').option('--vcpus <n>', 'vCPUs').option('--json', 'JSON output')
  .action(run(async (o: { tag: string; recipe: string; memMib?: string; vcpus?: string; json?: boolean }) =>
    snapshotCreate(engine(), {
      tag: o.tag,
      recipe: o.recipe,
      ...(o.memMib !== undefined ? { memMib: parseIntStrict('--mem-mib', o.memMib) } : {}),
      ...(o.vcpus !== undefined ? { vcpus: parseIntStrict('--vcpus', o.vcpus) } : {}),
      ...(o.json ? { json: true } : {}),
    })));
snapshot.command('ls').description('list snapshots').option('--json', 'JSON output').action(run(async (o: { json?: boolean }) => listSnapshotsCmd(engine(), o)));

program.command('images').description('list snapshots (tag, memory, disk, created, recipe, accel)').option('--json', 'JSON output')
  .action(run(async (o: { json?: boolean }) => listSnapshotsCmd(engine(), o)));
program.command('fork').description('fork N children from a snapshot, run a command or code in each, report timings, tear down')
  .requiredOption('--tag <tag>', 'snapshot tag').option('-n, --count <n>', 'number of children', '1')
  .option('--exec <cmd>', 'shell command line to run in each child').option('--eval <code>', "code in the snapshot's language")
  .addOption(new Option('--lang <language>', 'language for --eval').choices(['python', 'js']))
  .option('--timeout-ms <ms>', 'per-call timeout', '60000').option('--json', 'JSON output')
  .action(run(async (o: { tag: string; count: string; exec?: string; eval?: string; lang?: 'python' | 'js'; timeoutMs: string; json?: boolean }) => {
    if (o.exec !== undefined && o.eval !== undefined) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--exec and --eval are exclusive');
    const report = await runFork(engine(), {
      tag: o.tag,
      n: parseIntStrict('-n', o.count),
      ...(o.exec !== undefined ? { exec: o.exec } : {}),
      ...(o.eval !== undefined ? { eval: o.eval } : {}),
      ...(o.lang ? { lang: o.lang } : {}),
      timeoutMs: parseIntStrict('--timeout-ms', o.timeoutMs),
      json: o.json ?? false,
    });
    printForkReport(report, o.json ?? false);
    return report.children.every((c) => c.ok) ? 0 : 1;
  }));

program.command('cleanup').description('kill VMs and remove files left behind by crashed forkd processes').option('--dry-run', 'only report').option('--json', 'JSON output')
  .action(run(async (o: { json?: boolean; dryRun?: boolean }) => cleanup(engine(), o)));

program.command('quickstart').description('build the default image and snapshot if missing, fork 10 children, eval in each')
  .option('-n, --count <n>', 'children', '10').option('--json', 'JSON output')
  .action(run(async (o: { count: string; json?: boolean }) => quickstart(engine(), { n: parseIntStrict('-n', o.count), ...(o.json ? { json: true } : {}) })));

program.command('serve').description('run the forkd daemon (REST API) in the foreground')
  .option('--socket <path>', 'Unix socket (default <home>/forkd.sock when --bind is not given)')
  .option('--bind <host:port>', 'TCP address; needs --token-file (or --insecure-no-token)')
  .option('--token-file <file>', 'bearer tokens, one per line (>= 16 bytes each)')
  .option('--insecure-no-token', 'allow --bind without a token: any local user or process (or a DNS-rebound page) gets full control')
  .option('--allow-host <names>', 'comma-separated host names TCP requests may be addressed to, besides the bound address')
  .option('--tls-cert <file>', 'PEM certificate chain: serve https on --bind (with --tls-key)')
  .option('--tls-key <file>', 'PEM private key for --tls-cert')
  .option('--max-connections <n>', 'open TCP connections in total', String(SERVE_LIMITS.maxConnections))
  .option('--max-connections-per-peer <n>', 'open TCP connections from one address', String(SERVE_LIMITS.maxConnectionsPerPeer))
  .option('--state <file>', 'durable state journal (default <home>/daemon/state.jsonl)')
  .option('--audit-log <file>', "audit log of every request (default <home>/daemon/audit.log; 'none' to disable)")
  .option('--snapshot-root <dir>', 'where snapshots live (default <home>/snapshots)')
  .option('--keeper-grace-secs <n>', 'how long VMs outlive a crashed daemon, waiting to be adopted', '60')
  .option('--idle-exit-secs <n>', 'exit when idle this long (no sandboxes, jobs or requests)')
  .option('--max-sandboxes <n>', 'most live sandboxes', '256')
  .action(run(async (o: ServeFlags) => serve(program.opts<{ accel: AccelRequest; kernel?: string; home?: string }>(), o)));

registerRemoteCommands(program, run);

program.command('mcp').description('serve MCP on stdio for agent clients (FORKD_URL/FORKD_TOKEN, else the local daemon)')
  // Loaded on demand: the MCP SDK is only needed by this command.
  .action(run(async () => (await import('./commands/mcp.js')).mcp(program.opts<{ home?: string }>())));

program.command('where').description('print the data directory').option('--json', 'JSON output')
  .action(run(async (o: { json?: boolean }) => {
    const e = engine();
    if (o.json) printJson({ home: e.layout.root });
    else process.stdout.write(`${e.layout.root}\n`);
  }));

await program.parseAsync(process.argv);
// A finished command exits even if a library left a handle open; stdout is flushed first.
process.stdout.write('', () => process.exit(process.exitCode ?? 0));
