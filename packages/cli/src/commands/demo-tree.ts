/**
 * `forkd demo tree-search`: the tour-planning agent of recipes/tree-search-demo runs a greedy prefix
 * in one sandbox, forks at that decision point into branches with different temperatures (the
 * tree-search helper, from outside), each branch finishes the tour, the best is kept and the rest
 * killed. Prints the tree with scores and the winner's transcript.
 */
import crypto from 'node:crypto';
import { loadRecipe } from '@forkd/engine';
import { ForkdError } from '@forkd/protocol';
import { renderTree, sandboxOf, treeSearch, type Controller, type Job, type Sandbox, type TreeNode } from '@forkd/sdk';
import { escapeControls, printJson, progressPrinter } from '../output.js';

export const TREE_DEMO_RECIPE = 'tree-search-demo';
export const TREE_DEMO_TEMPERATURES = [0, 0.1, 0.3, 0.6, 1.2];

export interface TreeDemoOpts {
  temperatures?: number[];
  /** Greedy decisions the root takes before the fork (the shared prior state). */
  prefixSteps?: number;
  /** Beam levels; the last one completes the tour, the others take stepsPerLevel decisions. */
  depth?: number;
  width?: number;
  stepsPerLevel?: number;
  /** Leave the winner running (its id is in the report); default: killed with its captures at the end. */
  keep?: boolean;
  json?: boolean;
  /** A snapshot of the demo recipe to use instead of the one this command makes. */
  tag?: string;
}

interface AgentReport {
  score: number;
  route: string;
  transcript: string[];
}

export interface TreeDemoReport {
  snapshot_tag: string;
  root: string;
  /** The transcript every branch started from. */
  prefix: string[];
  winner: { id: string; score: number; route: string; transcript: string[]; kept: boolean };
  /** Every node, with each scored branch's route and transcript. */
  tree: Array<TreeNode & { route?: string; transcript?: string[] }>;
  /** The tree as printed. */
  picture: string;
  search_ms: number;
  /** Fork captures still stored (the winner's, when kept). */
  snapshots: string[];
}

/** The demo snapshot's tag: named after the recipe's content, so an edited agent gets a new one. */
export async function demoSnapshotTag(): Promise<string> {
  const r = await loadRecipe(TREE_DEMO_RECIPE);
  return `demo-tree-search-${crypto.createHash('sha256').update(JSON.stringify(r)).digest('hex').slice(0, 12)}`;
}

async function ensureDemoSnapshot(c: Controller, quiet: boolean): Promise<string> {
  const tag = await demoSnapshotTag();
  const have = await c.getSnapshot(tag).then(() => true, (e: unknown) => {
    if (e instanceof ForkdError && (e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND' || e.code === 'FORKD_E_NOT_FOUND')) return false;
    throw e;
  });
  if (have) return tag;
  if (!quiet) process.stderr.write(`creating snapshot ${tag} from recipe ${TREE_DEMO_RECIPE} (first run only: the python image, a boot and the agent's warm-up)\n`);
  const job = (await c.createSnapshot({ tag, recipe: TREE_DEMO_RECIPE, wait: false })) as Job;
  const progress = progressPrinter(!quiet);
  try {
    await c.waitJob(job.id, { onProgress: (j) => progress.onProgress({ phase: j.progress.phase, message: j.progress.message, ...(j.progress.fraction !== null ? { fraction: j.progress.fraction } : {}) }) });
  } finally {
    progress.done();
  }
  return tag;
}

async function agentReport(sb: Sandbox): Promise<AgentReport> {
  const r = await sb.eval('agent.report_json()');
  if (r.error || typeof r.result_json !== 'string') throw new ForkdError('FORKD_E_AGENT_ERROR', `the demo agent in ${sb.sandboxId} did not report: ${r.error ?? r.result}`);
  return JSON.parse(r.result_json) as AgentReport;
}

export async function runTreeDemo(c: Controller, o: TreeDemoOpts = {}): Promise<TreeDemoReport> {
  const temperatures = o.temperatures ?? TREE_DEMO_TEMPERATURES;
  const depth = o.depth ?? 1;
  const prefixSteps = o.prefixSteps ?? 4;
  const steps = o.stepsPerLevel ?? 3;
  const bad = (m: string) => new ForkdError('FORKD_E_INVALID_ARGUMENT', m);
  // The map has 14 stops: the prefix and the levels before the last must leave decisions to branch on.
  if (!Number.isInteger(prefixSteps) || prefixSteps < 0 || prefixSteps > 8) throw bad(`the prefix is 0 to 8 decisions (got ${prefixSteps})`);
  if (!Number.isInteger(depth) || depth < 1 || depth > 4) throw bad(`depth is 1 to 4 (got ${depth})`);
  if (!Number.isInteger(steps) || steps < 1 || prefixSteps + (depth - 1) * steps > 12) throw bad(`--steps ${steps} × ${depth - 1} levels after a prefix of ${prefixSteps} leaves no decision for the last level`);
  const say = (m: string) => { if (!o.json) process.stderr.write(`${m}\n`); };
  const tag = o.tag ?? await ensureDemoSnapshot(c, o.json ?? false);
  const [info] = await c.spawnSandboxes({ snapshot_tag: tag, n: 1, timeout_ms: 900_000 });
  const root = sandboxOf(c, info!);
  const reports = new Map<string, AgentReport>();
  let winner: Sandbox | null = null;
  let snapshots: string[] = [];
  try {
    const start = await root.eval(`agent = TourAgent()\nagent.run(${prefixSteps}, 0.0)\nagent.report_json()`);
    if (start.error || typeof start.result_json !== 'string') throw new ForkdError('FORKD_E_AGENT_ERROR', `the demo agent did not start: ${start.error ?? start.result}`);
    const prefix = (JSON.parse(start.result_json) as AgentReport).transcript;
    say(`${root.sandboxId}: ${prefixSteps} greedy decisions taken; forking into ${temperatures.length} branches (temperature ${temperatures.join(', ')})${depth > 1 ? `, ${depth} levels, beam width ${o.width ?? 1}` : ''}`);
    const t0 = performance.now();
    const r = await treeSearch(root, {
      vary: { temperature: temperatures },
      // A host-side step: the last level finishes the tour, earlier ones take `steps` decisions.
      run: async (child, ctx) => {
        const e = await child.eval(`agent.run(${ctx.level === depth ? 'None' : steps}, temperature)\nNone`);
        if (e.error) throw new ForkdError('FORKD_E_AGENT_ERROR', e.error);
      },
      // A host-side scorer: the agent's own score, with its transcript kept for the picture.
      score: async (child) => {
        const rep = await agentReport(child);
        reports.set(child.sandboxId, rep);
        return rep.score;
      },
      width: o.width ?? 1,
      depth,
      killRoot: true,
      timeoutMs: 900_000,
      metadata: { 'forkd.demo': 'tree-search' },
      onNode: (n) => say(`  ${n.id} T=${String(n.values.temperature)} ${n.score === null ? `failed: ${n.error}` : `score ${n.score}`}`),
    });
    const searchMs = Math.round(performance.now() - t0);
    winner = r.winner;
    snapshots = r.snapshots;
    const best = reports.get(r.winner.sandboxId)!;
    const tree = r.tree.map((n) => {
      const rep = reports.get(n.id);
      return rep ? { ...n, route: rep.route, transcript: rep.transcript } : { ...n };
    });
    const picture = renderTree(r.tree, (n) => (n.parent === null ? `prefix ${prefix.length - 1} decisions` : `T=${String(n.values.temperature)}${reports.has(n.id) ? ` ${reports.get(n.id)!.route}` : ''}`));
    return { snapshot_tag: tag, root: root.sandboxId, prefix, winner: { id: r.winner.sandboxId, score: r.score, route: best.route, transcript: best.transcript, kept: o.keep ?? false }, tree, picture, search_ms: searchMs, snapshots };
  } finally {
    await root.kill().catch(() => false);
    if (!o.keep) {
      await winner?.kill().catch(() => false);
      // The winner's captures, deepest first (each is a layer on the one before).
      for (const t of [...snapshots].reverse()) await c.deleteSnapshot(t, { force: true }).catch(() => undefined);
    }
  }
}

export function printTreeDemo(r: TreeDemoReport, json: boolean): void {
  if (json) return printJson(r);
  const lines = [
    `tree (${r.tree.length - 1} branches from ${r.root}, search ${(r.search_ms / 1000).toFixed(1)} s):`,
    escapeControls(r.picture, { keepLineBreaks: true }),
    '',
    `best: ${r.winner.id} score ${r.winner.score} route ${r.winner.route}${r.winner.kept ? ' (kept running)' : ''}`,
    'transcript (the shared prefix, then the winning branch):',
    ...r.winner.transcript.map((l, i) => `  ${i < r.prefix.length ? '│' : '┃'} ${escapeControls(l)}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
