/**
 * The pure half of the tree search: per-child value sets from a `vary` spec, beam selection, the
 * tree's bookkeeping and its terminal picture. No I/O here, so every rule is unit-tested.
 */
import { ForkdError, MACHINE_LIMITS, Vary, expandVary as expandVaryFor, type VaryValueT } from '@forkd/protocol';
import { errorFor } from './errors.js';

/** One child's values: variable name → string, number or boolean (protocol/src/vary.ts). */
export type VaryValues = Record<string, VaryValueT>;
/** A map of names to arrays (child i gets element i of each) or a list of per-child objects: the fork's `vary`. */
export type VarySpec = Record<string, VaryValueT[]> | VaryValues[];

/**
 * The value sets, one per child, in order: the children's count is the spec's length, and the
 * protocol's own checks (names, value types, caps) apply. Throws InvalidArgumentError.
 */
export function expandVary(spec: VarySpec): VaryValues[] {
  const bad = (m: string) => errorFor('FORKD_E_INVALID_ARGUMENT', `vary: ${m}`);
  if (spec === null || typeof spec !== 'object') throw bad('give a map of names to arrays, or a list of objects');
  const count = Array.isArray(spec) ? spec.length : Object.values(spec)[0]?.length;
  if (!Array.isArray(spec) && Object.keys(spec).length === 0) throw bad('no names');
  if (!Array.isArray(spec) && Object.values(spec).some((v) => !Array.isArray(v))) throw bad('every name needs an array of values (one per child)');
  if (!count) throw bad('no children (an empty list of values)');
  if (count > MACHINE_LIMITS.forkMax) throw bad(`${count} children, at most ${MACHINE_LIMITS.forkMax}`);
  const shape = Vary.safeParse(spec);
  if (!shape.success) throw bad(shape.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  try {
    return expandVaryFor(shape.data, count);
  } catch (e) {
    throw e instanceof ForkdError ? errorFor(e.code, `vary: ${e.message}`, e.details) : e;
  }
}

/** A score read from a scorer's output: a finite number, else null (the node failed). */
export function parseScore(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v !== 'string') return null;
  // A command's output: its last non-empty line is the score.
  const last = v.trim().split('\n').pop()?.trim() ?? '';
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(last)) return null;
  const n = Number(last);
  return Number.isFinite(n) ? n : null;
}

export interface Scored {
  id: string;
  score: number | null;
}

/**
 * The `width` best of the candidates (failed ones never), best first; ties go to the earlier
 * candidate, so the same scores always keep the same sandboxes.
 */
export function selectBeam<T extends Scored>(candidates: readonly T[], width: number, maximize = true): { keep: T[]; drop: T[] } {
  if (!Number.isInteger(width) || width < 1) throw errorFor('FORKD_E_INVALID_ARGUMENT', `width must be a whole number ≥ 1 (got ${width})`);
  const ranked = candidates
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => c.score !== null && Number.isFinite(c.score))
    .sort((a, b) => (maximize ? b.c.score! - a.c.score! : a.c.score! - b.c.score!) || a.i - b.i);
  const keep = ranked.slice(0, width).map(({ c }) => c);
  const kept = new Set(keep);
  return { keep, drop: candidates.filter((c) => !kept.has(c)) };
}

/** One sandbox of the search: the root (level 0) or a child made at `level`. */
export interface TreeNode {
  id: string;
  /** The sandbox it was forked from (null for the root). */
  parent: string | null;
  level: number;
  /** Its index among its parent's children (the vary entry it got); -1 for the root. */
  index: number;
  values: VaryValues;
  /** Its RNG seed (the daemon's choice, reported by the fork); absent for the root. */
  seed?: number;
  /** null: not scored (the root) or the scorer failed (see error). */
  score: number | null;
  /** kept: alive at the end (the winner; the root unless killRoot). expanded: a beam member forked at the next level, then killed. */
  status: 'winner' | 'kept' | 'expanded' | 'killed' | 'failed';
  error?: string;
  /** The fork's capture this child runs from. */
  snapshotTag?: string;
}

/** The tree as text: one line per node under its parent, with values and score; the winner marked. */
/** `describe` gives what follows a node's id (default: its values as name=value). */
export function renderTree(nodes: readonly TreeNode[], describe: (n: TreeNode) => string = (n) => compactValues(n.values)): string {
  const kids = new Map<string | null, TreeNode[]>();
  for (const n of nodes) kids.set(n.parent, [...(kids.get(n.parent) ?? []), n]);
  const lines: string[] = [];
  const label = (n: TreeNode) => {
    const score = n.score === null ? (n.error ? `failed: ${n.error.split('\n')[0]!.slice(0, 60)}` : '') : `score ${formatScore(n.score)}`;
    const mark = n.status === 'winner' ? '  ★ best' : n.status === 'killed' || n.status === 'failed' ? '  ✗' : n.status === 'expanded' ? '  → expanded' : '';
    const text = describe(n);
    const vals = text ? ` ${text}` : '';
    return `${n.parent === null ? 'root' : n.index >= 0 ? `#${n.index}` : ''} ${n.id}${vals}${score ? `  ${score}` : ''}${mark}`.trim();
  };
  const walk = (n: TreeNode, prefix: string, last: boolean, top: boolean) => {
    lines.push(top ? label(n) : `${prefix}${last ? '└─ ' : '├─ '}${label(n)}`);
    const ch = kids.get(n.id) ?? [];
    ch.forEach((c, i) => walk(c, top ? '' : `${prefix}${last ? '   ' : '│  '}`, i === ch.length - 1, false));
  };
  for (const root of kids.get(null) ?? []) walk(root, '', true, true);
  return lines.join('\n');
}

function formatScore(s: number): string {
  return Number.isInteger(s) ? String(s) : s.toFixed(Math.abs(s) >= 100 ? 1 : 3);
}

function compactValues(v: VaryValues): string {
  return Object.entries(v).map(([k, x]) => `${k}=${typeof x === 'string' ? x : JSON.stringify(x)}`).join(' ');
}
