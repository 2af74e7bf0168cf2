/**
 * The pure half of the tree search: per-child value sets from a `vary` spec, beam selection, the
 * tree's bookkeeping and its terminal picture. No I/O here, so every rule is unit-tested.
 */
import { errorFor } from './errors.js';

/** One child's values: variable name → JSON value. */
export type VaryValues = Record<string, unknown>;
/** A map of names to arrays (child i gets element i of each) or a list of per-child objects. */
export type VarySpec = Record<string, readonly unknown[]> | readonly VaryValues[];

/** A name usable as an environment variable and as an interpreter variable in Python and JS. */
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Names the guest's own environment or interpreters depend on. */
const RESERVED = new Set(['PATH', 'HOME', 'PWD', 'SHELL', 'USER', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'PYTHONPATH', 'NODE_OPTIONS', 'IFS']);
export const VARY_MAX_CHILDREN = 100;

/** The value sets, one per child, in order; throws InvalidArgumentError on a malformed spec. */
export function expandVary(spec: VarySpec): VaryValues[] {
  const bad = (m: string) => errorFor('FORKD_E_INVALID_ARGUMENT', `vary: ${m}`);
  let sets: VaryValues[];
  if (Array.isArray(spec)) {
    sets = spec.map((v, i) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad(`entry ${i} is not an object of name → value`);
      return { ...v };
    });
  } else {
    if (spec === null || typeof spec !== 'object') throw bad('give a map of names to arrays, or a list of objects');
    const entries = Object.entries(spec as Record<string, readonly unknown[]>);
    if (entries.length === 0) throw bad('no names');
    const lengths = new Set(entries.map(([k, v]) => {
      if (!Array.isArray(v)) throw bad(`${k} is not an array of values`);
      return v.length;
    }));
    if (lengths.size !== 1) throw bad(`every name needs as many values as there are children (got lengths ${[...lengths].join(', ')})`);
    const k = [...lengths][0]!;
    sets = Array.from({ length: k }, (_, i) => Object.fromEntries(entries.map(([name, vals]) => [name, vals[i]])));
  }
  if (sets.length === 0) throw bad('no children (an empty list of values)');
  if (sets.length > VARY_MAX_CHILDREN) throw bad(`${sets.length} children, at most ${VARY_MAX_CHILDREN}`);
  for (const s of sets) {
    for (const [name, value] of Object.entries(s)) {
      if (!VAR_NAME.test(name)) throw bad(`${JSON.stringify(name)} is not a variable name (letters, digits, _; not starting with a digit)`);
      if (RESERVED.has(name)) throw bad(`${name} is reserved`);
      if (value === undefined || JSON.stringify(value) === undefined) throw bad(`${name}: not a JSON value`);
    }
  }
  return sets;
}

/** A value as an environment variable: strings as they are, anything else as JSON. */
export function envValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The values as environment variables for a command. */
export function varyEnvs(values: VaryValues): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, envValue(v)]));
}

/** Code that binds the values as variables in the persistent interpreter (JSON through a string literal: no code from values). */
export function bindCode(values: VaryValues, language: 'python' | 'js'): string {
  const json = JSON.stringify(JSON.stringify(values));
  return language === 'python'
    ? `import json as __forkd_json\nglobals().update(__forkd_json.loads(${json}))\ndel __forkd_json`
    : `Object.assign(globalThis, JSON.parse(${json}));`;
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
