/**
 * Tree search on real VMs, one demo snapshot for the file: `forkd demo tree-search` (branches
 * diverge from one prior state, the best is kept, the others killed) and the SDK's treeSearch as a
 * beam (width 2, depth 2) with a command scorer that sees its values and fails for one of them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRecipe } from '@forkd/engine';
import { ensureRecipeSnapshot, testEngine } from '@forkd/engine/testing';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { Controller, Sandbox, treeSearch } from '@forkd/sdk';
import { demoSnapshotTag, TREE_DEMO_RECIPE, type TreeDemoReport } from './commands/demo-tree.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'index.ts');
let d: TestDaemon;
let ctl: Controller;
let tag = '';
const made = new Set<string>();
const captures = new Set<string>();

before(async () => {
  ({ tag } = await ensureRecipeSnapshot(testEngine(), 'demo-tree-search', await loadRecipe(TREE_DEMO_RECIPE)));
  assert.equal(tag, await demoSnapshotTag(), 'the demo command finds the snapshot this test made');
  d = await startTestDaemon({ fixture: false });
  ctl = new Controller({ socketPath: d.socketPath });
});

after(async () => {
  if (!ctl) return;
  for (const id of made) await ctl.killSandbox(id).catch(() => undefined);
  for (const t of [...captures].reverse()) await ctl.deleteSnapshot(t, { force: true }).catch(() => undefined);
  const left = (await ctl.listSandboxes()).map((s) => s.id);
  await d.stop();
  assert.deepEqual(left, [], 'no sandbox left running');
});

/** Whether the daemon still runs it. */
async function running(id: string): Promise<boolean> {
  return ctl.getSandbox(id).then((s) => s.status === 'running', () => false);
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', CLI, ...args], { env: { ...process.env, ...d.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('forkd demo tree-search: five branches continue one prefix differently; the best is kept, the rest killed', async () => {
  const r = await cli(['demo', 'tree-search', '--json', '--keep']);
  assert.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout) as TreeDemoReport;
  made.add(rep.winner.id);
  for (const s of rep.snapshots) captures.add(s);
  const branches = rep.tree.filter((n) => n.parent !== null);
  assert.equal(branches.length, 5);
  assert.equal(rep.prefix.length, 5, 'the start and four greedy decisions');
  for (const b of branches) {
    assert.equal(b.parent, rep.root);
    assert.ok(b.transcript && b.route, `${b.id} reported`);
    assert.deepEqual(b.transcript!.slice(0, rep.prefix.length), rep.prefix, `${b.id} starts from the fork's state`);
    assert.ok(b.transcript!.length > rep.prefix.length + 5, `${b.id} continued the tour`);
  }
  const continuations = new Set(branches.map((b) => b.transcript!.slice(rep.prefix.length).join('\n')));
  assert.ok(continuations.size >= 2, `the branches diverge (${continuations.size} distinct continuations)`);
  // The best is the highest score and the only one still running.
  const best = Math.max(...branches.map((b) => b.score!));
  assert.equal(rep.winner.score, best);
  assert.equal(branches.find((b) => b.status === 'winner')?.id, rep.winner.id);
  assert.ok(await running(rep.winner.id), 'the winner runs');
  for (const b of branches.filter((x) => x.id !== rep.winner.id)) assert.equal(await running(b.id), false, `${b.id} was killed`);
  assert.equal(await running(rep.root), false, 'the demo ends its root');
  assert.match(rep.picture, /★ best/);
  // The winner's interpreter holds the winning tour: its state is the continuation, not a copy of a report.
  const w = await Sandbox.connect(rep.winner.id, { socketPath: d.socketPath });
  assert.equal(await w.eval("''.join(agent.route)").then((e) => e.result_json), rep.winner.route);
});

test('treeSearch beam (width 2, depth 2): values reach code and commands, a failing scorer drops its node, only the winner survives', async () => {
  const root = await Sandbox.create(tag, { socketPath: d.socketPath, timeoutMs: 600_000 });
  made.add(root.sandboxId);
  assert.equal((await root.eval('agent = TourAgent()\nagent.run(3, 0.0)\nlen(agent.route)')).result_json, 4);
  const before = new Set((await ctl.listSnapshots()).map((s) => s.tag));
  const r = await treeSearch(root, {
    vary: [{ temperature: 0.3, label: 'a' }, { temperature: 0.6, label: 'c' }],
    // Interpreter variables: `temperature` is bound in each child before it runs.
    run: { code: 'agent.run(3, temperature)\nopen("/tmp/score", "w").write(str(agent.score()))\nopen("/tmp/len", "w").write(str(len(agent.route)))\nNone' },
    // Environment variables: the command sees its label; "c" fails at the second level (a failing scorer).
    score: { command: 'test "$label" = c && test "$(cat /tmp/len)" -ge 10 && { echo no >&2; exit 3; }; cat /tmp/score; echo' },
    width: 2,
    depth: 2,
    timeoutMs: 600_000,
  });
  made.add(r.winner.sandboxId);
  for (const s of r.snapshots) captures.add(s);
  assert.equal(r.tree.length, 1 + 2 + 4);
  const failed = r.tree.filter((n) => n.status === 'failed');
  assert.deepEqual(failed.map((n) => [n.level, n.values.label]), [[2, 'c'], [2, 'c']], 'the "c" children of the second level failed');
  for (const f of failed) assert.match(f.error ?? '', /exit 3/);
  const level1 = r.tree.filter((n) => n.level === 1);
  assert.deepEqual(level1.filter((n) => n.status === 'expanded').map((n) => n.values.label).sort(), ['a', 'c'], 'both scored level-1 children were expanded');
  const level2 = r.tree.filter((n) => n.level === 2 && n.score !== null);
  assert.equal(r.score, Math.max(...level2.map((n) => n.score!)));
  assert.deepEqual(r.path.map((n) => n.level), [0, 1, 2]);
  assert.equal(r.path[0]!.id, root.sandboxId);
  assert.equal(r.path[2]!.id, r.winner.sandboxId);
  // The winner's interpreter is the continuation: 3 root decisions + 3 + 3.
  assert.equal((await r.winner.eval('len(agent.route)')).result_json, 10);
  assert.equal((await r.winner.eval('temperature')).result_json, r.path[2]!.values.temperature);
  // Alive: the root (not killRoot) and the winner only.
  const live = new Set((await ctl.listSandboxes()).map((s) => s.id));
  for (const n of r.tree) assert.equal(live.has(n.id), n.id === root.sandboxId || n.id === r.winner.sandboxId, `${n.id} (${n.status}) alive: ${live.has(n.id)}`);
  // Captures: only the winner's lineage is left (its two forks); the losing level-2 capture was deleted.
  const forks = (await ctl.listSnapshots()).map((s) => s.tag).filter((t) => !before.has(t));
  assert.deepEqual(forks.sort(), [...r.snapshots].sort());
  assert.equal(r.snapshots.length, 2);
});
