/**
 * Tree search over sandboxes: fork a running sandbox into K variants (one `vary` value set each),
 * optionally advance each with a step, score each with the caller's scorer, keep the `width` best
 * and kill the rest; repeat from the kept ones for `depth` levels (a beam search; width 1 and
 * depth 1 is "try K variants, keep the best"). The pure rules live in tree-search-plan.ts.
 */
import type { Controller, SandboxInfo as WireSandboxInfo } from './controller.js';
import { ForkdSdkError, errorFor } from './errors.js';
import { guard, toSdkError } from './guard.js';
import { Sandbox } from './sandbox.js';
import { CommandExitError } from './command-result.js';
import { expandVary, parseScore, selectBeam, type TreeNode, type VaryValues, type VarySpec } from './tree-search-plan.js';


/** Where a node is in the search, given to function steps and scorers. */
export interface TreeContext {
  values: VaryValues;
  level: number;
  index: number;
  parent: string;
}

/**
 * What runs in a child: a shell command (its values are in its environment; for a scorer, the
 * last line of stdout is the score; a non-zero exit fails the node), code in the child's
 * persistent interpreter (its values are variables there; for a scorer, the value of the last
 * expression), or a host-side function of the child.
 */
export type TreeStep =
  | { command: string; timeoutMs?: number }
  | { code: string; timeoutMs?: number }
  | ((child: Sandbox, ctx: TreeContext) => unknown);

export interface TreeSearchOpts {
  /** The K variants of each expansion: a map of names to arrays (child i gets element i) or a list of per-child objects. */
  vary: VarySpec;
  /** The score of a child (higher is better unless maximize is false). */
  score: TreeStep;
  /** Runs in every child before it is scored (e.g. the agent's continuation with the child's values). */
  run?: TreeStep;
  /** Sandboxes kept per level (the beam), default 1. */
  width?: number;
  /** Levels of forking, default 1. */
  depth?: number;
  maximize?: boolean;
  /** Kill the sandbox the search started from once the first level has a survivor (default false: it keeps running). */
  killRoot?: boolean;
  /** Lifetime of each child (default: the daemon's fork default); the winner's can be raised with setTimeout. */
  timeoutMs?: number;
  /** Metadata for every child (the search adds forkd.tree_search and forkd.tree_level). */
  metadata?: Record<string, string>;
  /** Called as each node is scored (progress). */
  onNode?: (node: TreeNode) => void;
}

export interface TreeSearchResult {
  /** The best sandbox of the last level that scored; it keeps running. */
  winner: Sandbox;
  score: number;
  /** Its nodes from the root down (values at each level). */
  path: TreeNode[];
  /** Every node made, the root first, in the order they were made. */
  tree: TreeNode[];
  /** Fork captures still stored after the search: the winner runs from them (delete them after it with force). */
  snapshots: string[];
}

/** Wraps the daemon's answer for a child as a Sandbox (Sandbox's constructor is protected). */
class ForkChild extends Sandbox {
  static wrap(ctl: Controller, info: WireSandboxInfo): Sandbox {
    return new ForkChild(ctl, info);
  }
}

/** A Sandbox for a sandbox the Controller already described (e.g. one of spawnSandboxes' answers): no extra request. */
export function sandboxOf(ctl: Controller, info: WireSandboxInfo): Sandbox {
  return ForkChild.wrap(ctl, info);
}

/**
 * Forks `source` once into one child per value set: the daemon gives child i its values (environment
 * of new processes, variables of its interpreters) and its own RNG seed before it answers.
 */
async function forkWithValues(source: Sandbox, sets: VaryValues[], o: { timeoutMs?: number; metadata: Record<string, string> }): Promise<{ capture: string; children: Sandbox[]; seeds: number[] }> {
  const r = await source.controller.forkSandbox(source.sandboxId, {
    count: sets.length,
    vary: sets,
    ...(o.timeoutMs !== undefined ? { timeout_ms: o.timeoutMs } : {}),
    metadata: o.metadata,
  });
  return { capture: r.snapshot_tag, children: r.sandboxes.map((s) => ForkChild.wrap(source.controller, s)), seeds: r.children.map((c) => c.seed) };
}

/** Runs a step in a child; resolves to what it produced (stdout, the last value, the function's return). */
async function runStep(step: TreeStep, child: Sandbox, ctx: TreeContext): Promise<unknown> {
  if (typeof step === 'function') return step(child, ctx);
  if ('command' in step) {
    const r = await child.commands.run(step.command, step.timeoutMs !== undefined ? { timeoutMs: step.timeoutMs } : {});
    return r.stdout;
  }
  const e = await child.eval(step.code, step.timeoutMs !== undefined ? { timeoutMs: step.timeoutMs } : {});
  if (e.error) throw errorFor('FORKD_E_AGENT_ERROR', `${e.error_type ?? 'Error'}: ${e.error}`, { traceback: e.traceback ?? '' });
  return e.result_json !== undefined && e.result_json !== null ? e.result_json : e.result;
}

function describe(e: unknown): string {
  if (e instanceof CommandExitError) return `exit ${e.exitCode}${e.stderr.trim() ? `: ${e.stderr.trim().split('\n').pop()}` : ''}`;
  return e instanceof Error ? e.message : String(e);
}

function checkOpts(o: TreeSearchOpts): { sets: VaryValues[]; width: number; depth: number } {
  const sets = expandVary(o.vary);
  const width = o.width ?? 1;
  const depth = o.depth ?? 1;
  if (!Number.isInteger(width) || width < 1 || width > 100) throw errorFor('FORKD_E_INVALID_ARGUMENT', `width must be 1..100 (got ${width})`);
  if (!Number.isInteger(depth) || depth < 1 || depth > 32) throw errorFor('FORKD_E_INVALID_ARGUMENT', `depth must be 1..32 (got ${depth})`);
  if (!o.score) throw errorFor('FORKD_E_INVALID_ARGUMENT', 'score is required (a command, code, or a function of the child)');
  return { sets, width, depth };
}

/**
 * Beam search over sandboxes from `root` (which keeps running unless killRoot). Every child that is
 * not the winner is killed before this resolves; on an error every child it made is killed.
 */
export function treeSearch(root: Sandbox, o: TreeSearchOpts): Promise<TreeSearchResult> {
  return guard(async () => {
    const { sets, width, depth } = checkOpts(o);
    const maximize = o.maximize ?? true;
    const searchId = `ts-${Date.now().toString(36)}`;
    const rootNode: TreeNode = { id: root.sandboxId, parent: null, level: 0, index: -1, values: {}, score: null, status: 'kept' };
    const tree: TreeNode[] = [rootNode];
    const alive = new Map<string, Sandbox>();
    const captures: string[] = [];
    let beam: Array<{ node: TreeNode; sb: Sandbox }> = [{ node: rootNode, sb: root }];
    try {
      for (let level = 1; level <= depth; level++) {
        const candidates: Array<{ id: string; score: number | null; node: TreeNode; sb: Sandbox }> = [];
        // Sources are expanded one after the other: each fork already starts K VMs at once.
        for (const src of beam) {
          const { capture, children, seeds } = await forkWithValues(src.sb, sets, { ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}), metadata: { ...(o.metadata ?? {}), 'forkd.tree_search': searchId, 'forkd.tree_level': String(level) } });
          captures.push(capture);
          for (const c of children) alive.set(c.sandboxId, c);
          const scored = await Promise.all(children.map(async (child, index) => {
            const ctx: TreeContext = { values: sets[index]!, level, index, parent: src.node.id };
            const node: TreeNode = { id: child.sandboxId, parent: src.node.id, level, index, values: sets[index]!, seed: seeds[index]!, score: null, status: 'killed', snapshotTag: capture };
            try {
              if (o.run) await runStep(o.run, child, ctx);
              node.score = parseScore(await runStep(o.score, child, ctx));
              if (node.score === null) node.error = 'the scorer gave no number';
            } catch (e) {
              node.error = describe(e);
            }
            if (node.score === null) node.status = 'failed';
            o.onNode?.(node);
            return { id: node.id, score: node.score, node, sb: child };
          }));
          tree.push(...scored.map((s) => s.node));
          candidates.push(...scored);
        }
        const { keep, drop } = selectBeam(candidates, width, maximize);
        await Promise.all(drop.map(async (d) => {
          alive.delete(d.id);
          await d.sb.kill().catch(() => false);
        }));
        if (keep.length === 0) {
          if (level === 1) throw errorFor('FORKD_E_COMMAND_FAILED', `no child of ${root.sandboxId} scored: ${candidates.map((c) => c.node.error).filter(Boolean).slice(0, 3).join('; ')}`, { tree });
          break; // the previous level's beam stands
        }
        // The kept children replace their sources (the root stays unless killRoot).
        for (const src of beam) {
          if (src.node === rootNode) {
            if (o.killRoot) await root.kill().catch(() => false);
            rootNode.status = o.killRoot ? 'expanded' : 'kept';
            continue;
          }
          src.node.status = 'expanded';
          alive.delete(src.node.id);
          await src.sb.kill().catch(() => false);
        }
        for (const k of keep) k.node.status = 'kept';
        beam = keep.map((k) => ({ node: k.node, sb: k.sb }));
      }
      const best = beam[0]!;
      best.node.status = 'winner';
      for (const b of beam.slice(1)) {
        b.node.status = 'killed';
        alive.delete(b.node.id);
        await b.sb.kill().catch(() => false);
      }
      alive.clear();
      const byId = new Map(tree.map((n) => [n.id, n]));
      const path: TreeNode[] = [];
      for (let n: TreeNode | undefined = best.node; n; n = n.parent ? byId.get(n.parent) : undefined) path.unshift(n);
      return { winner: best.sb, score: best.node.score!, path, tree, snapshots: await dropDeadCaptures(root.controller, captures) };
    } catch (e) {
      await Promise.all([...alive.values()].map((c) => c.kill().catch(() => false)));
      await dropDeadCaptures(root.controller, captures).catch(() => []);
      throw e instanceof ForkdSdkError ? e : toSdkError(e);
    }
  });
}

/**
 * Deletes the fork captures no sandbox runs from any more (deepest first: a capture is a layer on
 * the one its source ran from); returns those still in use (the winner's lineage).
 */
async function dropDeadCaptures(ctl: Controller, captures: string[]): Promise<string[]> {
  const left: string[] = [];
  for (const tag of [...captures].reverse()) {
    try {
      await ctl.deleteSnapshot(tag);
    } catch (e) {
      const code = e instanceof ForkdSdkError ? e.code : '';
      if (code === 'FORKD_E_IN_USE' || code === 'FORKD_E_HAS_DEPENDENTS') left.unshift(tag);
      else if (code !== 'FORKD_E_SNAPSHOT_NOT_FOUND' && code !== 'FORKD_E_NOT_FOUND') left.unshift(tag);
    }
  }
  return left;
}
