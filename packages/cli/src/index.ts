import { Command, Option } from 'commander';
import { Engine, type AccelRequest } from '@forkd/engine';
import { FORKD_VERSION, NETWORK_DEFAULTS } from '@forkd/protocol';
import { printJson, reportError } from './output.js';
import { daemonClient, refuseTokenOnArgv, type CliContext, type DaemonFlags } from './client.js';
import { imageBuild, imageList } from './commands/snapshots.js';
import { cleanup, doctor } from './commands/host.js';
import { serve, SERVE_LIMITS, QUOTA_FLAGS, quotaFlagName, type ServeFlags } from './commands/serve.js';
import { registerRemoteCommands } from './commands/remote.js';
import { registerSnapshotVerbs } from './commands/snapshot-verbs.js';
import { registerFromOci, registerHubCommands } from './commands/hub.js';
import { registerUiCommand } from './commands/ui.js';
import { registerEventsCommand } from './commands/events.js';
import { registerMetricsCommand } from './commands/metrics.js';
import { registerTestCommand } from './commands/test.js';
import { registerTemplateCommands } from './commands/template.js';
import { registerDemoCommands } from './commands/demo.js';

const program = new Command();
program
  .name('forkd')
  .description('microVM sandboxes forked from a warm parent: boot once, fork many')
  .version(FORKD_VERSION)
  .addOption(new Option('--accel <mode>', 'acceleration').choices(['auto', 'kvm', 'tcg']).default('auto'))
  .option('--kernel <path>', 'guest kernel (default: newest /boot/vmlinuz-*-cloud-amd64)')
  .option('--home <dir>', 'data directory (default: $FORKD_HOME or ~/.local/share/forkd)')
  .option('--daemon-url <url>', 'daemon to use: http://host:port or unix:/path (default $FORKD_URL, else the local daemon, started on demand)')
  .option('--daemon-token-file <file>', 'file holding the bearer token for the daemon (default $FORKD_TOKEN; never on the command line)')
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

// A forkd process killed with -9 (a `fork --local`) leaves run dirs: the next command removes them.
program.hook('preAction', async () => {
  await engine().sweepDeadOwners().catch(() => undefined);
});

program.command('doctor').description('check the host and show the acceleration verdict').option('--json', 'JSON output')
  .action(run(async (o: { json?: boolean }) => doctor(engine(), o)));

// Images are files of this host's cache with no REST route: built and listed in this process.
const image = program.command('image').description('guest images built from recipes');
image.command('build').argument('<recipe>', 'recipe name (recipes/*.json) or path to a recipe file').option('--rebuild', 'ignore the cache').option('--json', 'JSON output')
  .description('build a root filesystem image (debootstrap + agent), cached by content')
  .action(run(async (recipe: string, o: { json?: boolean; rebuild?: boolean }) => imageBuild(engine(), recipe, o)));
image.command('ls').description('list built images and known recipes').option('--json', 'JSON output')
  .action(run(async (o: { json?: boolean }) => imageList(engine(), o)));

const context: CliContext = { run, engine, client: () => daemonClient(program.opts<DaemonFlags>()) };
registerSnapshotVerbs(program, context);
registerRemoteCommands(program, context);
registerHubCommands(program, context);
registerFromOci(image, context);
registerUiCommand(program, context);
registerEventsCommand(program, context);
registerMetricsCommand(program, context);
registerTestCommand(program, context);
registerTemplateCommands(program, context);
registerDemoCommands(program, context);

program.command('cleanup').description('kill VMs and remove files left behind by crashed forkd processes').option('--dry-run', 'only report').option('--json', 'JSON output')
  .action(run(async (o: { json?: boolean; dryRun?: boolean }) => cleanup(engine(), o)));

const serveCmd = program.command('serve').description('run the forkd daemon (REST API) in the foreground')
  .option('--socket <path>', 'Unix socket (default <home>/forkd.sock when --bind is not given)')
  .option('--bind <host:port>', 'TCP address; needs --token-file (or --insecure-no-token)')
  .option('--token-file <file>', 'bearer tokens, one a line: "<token>" (an admin) or "<token> <identity> admin|user|read-only"; mode 0600; >= 16 bytes, >= 8 distinct characters')
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
  .option('--net-pool <cidr>', 'IPv4 block networked sandboxes take a unique /31 from', NETWORK_DEFAULTS.pool)
  .option('--uplink-netns <name>', "network namespace networked sandboxes reach the world through (default: the host's own)")
  .option('--port-host <addr>', 'address exposed sandbox ports listen on', '127.0.0.1')
  .option('--on-stop <what>', "at SIGTERM: 'leave' the VMs to the keeper for the next daemon (as after a crash) or 'end' them (workspaces suspended first)", 'leave')
  .option('--idle-exit-secs <n>', 'exit when idle this long (no sandboxes, jobs or requests)')
  .option('--max-sandboxes <n>', 'most live sandboxes', '256')
  .option('--default-egress <policy>', "egress of a sandbox that names no policy: 'deny' (nothing) or 'public' (the internet, never the host, other children, link-local or private ranges)", 'deny')
  .option('--egress-allow-private <cidr>', 'a private range guests may reach when their policy allows it (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--egress-resolver <addr>', 'DNS server (ip[:port]) the egress proxy resolves allowed names with (repeatable; default: the host resolv.conf)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--snapshot-store-max-gib <n>', 'most the snapshot store may hold (a write past it is refused with FORKD_E_INSUFFICIENT_STORAGE); default: free disk only')
  .option('--cgroup-root <dir>', 'where the cgroup hierarchy is mounted (default /sys/fs/cgroup; v2 or v1 detected there)')
  .option('--warm-pool <tag=n>', 'keep n children of snapshot tag started ahead (loaded, paused): spawns with default settings take them first (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--warm-pool-demand-max <n>', "also refill each snapshot's pool to the children spawned from it in the last minute, at most n (default 0: off)")
  .option('--pause-idle <duration>', "stop a sandbox's guest after this long without a call (e.g. 90s, 5m): no host CPU while stopped; the next call, port connection or capture wakes it and sets its clock. 'off': never", '2m')
  .option('--events-retention <duration>', 'how long lifecycle events are kept for GET /v1/events (e.g. 90m, 24h, 7d; at most 30d)', '24h')
  .option('--events-max-mib <n>', 'size cap of the event journal: the oldest events go first past it', '64')
  .option('--webhook <url>', 'POST every lifecycle event (JSON, signed x-forkd-signature: sha256=<HMAC of the body>) to this URL, retried with backoff; loopback only unless --webhook-allow-remote')
  .option('--webhook-secret-file <file>', 'the HMAC secret for --webhook (a 0600 file, 16-256 characters)')
  .option('--webhook-allow-remote', 'allow a --webhook host that is not loopback (the daemon then makes requests from its network position: SSRF, opt in knowingly)')
  .option('--webhook-kinds <k1,k2>', 'only these event kinds to the webhook (default: all)');
for (const { field, flag } of QUOTA_FLAGS) {
  serveCmd.option(quotaFlagName('default', flag), `default ${field} of a spawn that gives none`);
  serveCmd.option(quotaFlagName('max', flag), `most ${field} a spawn may ask for (also applied when none is given)`);
}
serveCmd
  .action(run(async (o: ServeFlags) => serve(program.opts<{ accel: AccelRequest; kernel?: string; home?: string }>(), o)));

program.command('mcp').description('serve MCP on stdio for agent clients (FORKD_URL/FORKD_TOKEN, else the local daemon)')
  // Loaded on demand: the MCP SDK is only needed by this command.
  .action(run(async () => (await import('./commands/mcp.js')).mcp(program.opts<{ home?: string }>())));

program.command('where').description('print the data directory').option('--json', 'JSON output')
  .action(run(async (o: { json?: boolean }) => {
    const e = engine();
    if (o.json) printJson({ home: e.layout.root });
    else process.stdout.write(`${e.layout.root}\n`);
  }));

try {
  refuseTokenOnArgv(process.argv.slice(2));
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = reportError(e, { json: process.argv.includes('--json') });
}
// A finished command exits even if a library left a handle open; stdout is flushed first.
process.stdout.write('', () => process.exit(process.exitCode ?? 0));
