/** The snapshot verbs: create, list (images), info, tree, diff, compact, rmi; all through the daemon unless --local. */
import { Option, type Command } from 'commander';
import { CompactBody, CreateSnapshotBody, DiffBody } from '@forkd/api';
import { localFlag, type CliContext } from '../client.js';
import { bytes, printJson, table } from '../output.js';
import { schemaFlags, withFlags } from '../schema-flags.js';
import { printSnapshots, snapshotCreate, snapshotCreateLocal, snapshotRows, snapshotRowsLocal, type CreateSnapshotFields } from './snapshots.js';
import { compactCmd, diffCmd, rmiCmd, treeCmd } from './branching.js';

export function registerSnapshotVerbs(program: Command, { run, client, engine }: CliContext): void {
  const snapshot = program.command('snapshot').description('warm parent snapshots');

  const create = schemaFlags(CreateSnapshotBody.shape, {
    tag: { description: 'snapshot tag', required: true },
    recipe: { flags: '--recipe <recipe>', description: 'recipe name (recipes/*.json); a recipe file needs --local', required: true },
    mem_mib: { description: 'guest memory (MiB)' },
    vcpus: { description: 'vCPUs' },
  });
  localFlag(withFlags(snapshot.command('create').description('boot a parent, warm it up, snapshot it (a daemon job, followed to the end)'), create))
    // forkd's spelling of --mem-mib.
    .addOption(new Option('--mem-size-mib <n>').hideHelp())
    .option('--json', 'JSON output')
    .action(run(async (o: Record<string, unknown> & { local?: boolean; json?: boolean }) => {
      const fields = create.read({ ...o, memMib: o.memMib ?? o.memSizeMib }) as CreateSnapshotFields;
      const out = { ...fields, ...(o.json ? { json: true } : {}) };
      return o.local ? snapshotCreateLocal(engine(), out) : snapshotCreate(await client(), out);
    }));

  // One listing under forkd's two names.
  const list = (cmd: Command) => localFlag(cmd.description('list snapshots (tag, recipe, accel, memory, disk, created)').option('--json', 'JSON output'))
    .action(run(async (o: { local?: boolean; json?: boolean }) => printSnapshots(o.local ? await snapshotRowsLocal(engine()) : await snapshotRows(await client()), o)));
  list(snapshot.command('ls'));
  list(program.command('images'));

  const info = run(async (tag: string, o: { json?: boolean }) => {
    const d = await (await client()).snapshotInfo(tag);
    if (o.json) return printJson(d);
    const rows: Array<[string, string | number]> = [
      ['tag', d.tag], ['recipe', d.recipe ?? '-'], ['language', d.language], ['accel', d.accel], ['memory', `${d.mem_mib} MiB, ${d.vcpus} vCPU`],
      ['parent', d.parent_tag ?? '-'], ['chain depth', d.chain_depth], ['ancestors', d.ancestors.join(' > ') || '-'], ['dependents', d.dependents.join(', ') || '-'],
      ['from', d.branched_from ?? '-'], ['memory on disk', `${bytes(d.memory_physical_bytes)} of ${bytes(d.memory_logical_bytes)}`], ['disk layer', bytes(d.disk_physical_bytes)],
      ['layer storage', bytes(d.layer_physical_bytes)], ['vmstate', bytes(d.vmstate_bytes)], ['qemu / kernel', `${d.qemu_version} / ${d.kernel_version}`],
      ['owner', `${d.owner}${d.shared ? ' (shared)' : ''}`], ['live sandboxes', d.live_sandboxes], ['created', new Date(d.created_at_unix * 1000).toISOString()],
    ];
    process.stdout.write(`${table(['FIELD', 'VALUE'], rows)}\n`);
  });
  const infoDescription = 'snapshot detail: sizes, chain, dependents';
  snapshot.command('info').description(infoDescription).argument('<tag>').option('--json', 'JSON output').action(info);
  program.command('snapshot-info').description(infoDescription).argument('<tag>').option('--json', 'JSON output').action(info);

  const tree = run(async (o: { json?: boolean }) => treeCmd(await client(), o));
  const treeDescription = 'the snapshots, their layers and the sandboxes running from each';
  snapshot.command('tree').description(treeDescription).option('--json', 'JSON output').action(tree);
  program.command('snapshot-tree').description(treeDescription).option('--json', 'JSON output').action(tree);

  const diff = schemaFlags(DiffBody.shape, {
    to: { flags: '--tag <tag>', description: 'the new layer', required: true },
    cmd: { flags: '--exec <cmd>', description: 'a shell command line (&& and pipes work)', required: true },
    timeout_secs: { flags: '--exec-timeout-secs <n>', description: 'command timeout (seconds)' },
  });
  withFlags(program.command('snapshot-diff').description('run a command in a child of --from and keep the result as layer --tag (only what changed)')
    .requiredOption('--from <tag>', 'base snapshot'), diff).option('--json', 'JSON output')
    .action(run(async (o: Record<string, unknown> & { from: string; json?: boolean }) => {
      const b = diff.read(o) as { to: string; cmd: string; timeout_secs: number };
      return diffCmd(await client(), { from: o.from, tag: b.to, exec: b.cmd, timeoutSecs: b.timeout_secs, ...(o.json ? { json: true } : {}) });
    }));

  const compact = schemaFlags(CompactBody.shape, { to: { flags: '--to <tag>', description: 'the new snapshot', required: true } });
  withFlags(program.command('snapshot-compact').description('flatten a snapshot (a chain head) into a new self-contained one')
    .requiredOption('--from <tag>', 'the snapshot to flatten'), compact).option('--json', 'JSON output')
    .action(run(async (o: Record<string, unknown> & { from: string; json?: boolean }) => compactCmd(await client(), { from: o.from, to: (compact.read(o) as { to: string }).to, ...(o.json ? { json: true } : {}) })));

  // Admin only: every identity may then see the snapshot and spawn from it.
  for (const [verb, shared] of [['share', true], ['unshare', false]] as const) {
    snapshot.command(verb).argument('<tag>').option('--json', 'JSON output')
      .description(shared ? 'share a snapshot with every identity (admin token): all may spawn from it, only its owner and admins change it' : 'stop sharing a snapshot (admin token)')
      .action(run(async (tag: string, o: { json?: boolean }) => {
        const c = await client();
        const r = shared ? await c.shareSnapshot(tag) : await c.unshareSnapshot(tag);
        if (o.json) return printJson(r);
        process.stdout.write(`${r.tag}: ${r.shared ? 'shared' : 'not shared'} (owner ${r.owner})\n`);
      }));
  }

  program.command('rmi').description('remove snapshots (refused while layers or sandboxes depend on them)').argument('<tags...>')
    .option('--cascade', 'also remove every snapshot layered on them').option('--force', 'even while sandboxes run from them (they keep running)').option('--json', 'JSON output')
    .action(run(async (tags: string[], o: { cascade?: boolean; force?: boolean; json?: boolean }) => rmiCmd(await client(), tags, o)));
}
