/**
 * Import rules, so the layering stays as it is:
 *  - packages: each package.json's `forkd.deps` lists the @forkd/* imports its src may make
 *    (a bare package name allows its subpaths; a subpath allows only itself). Test files and
 *    testing/ folders may also use `forkd.testDeps`. A relative import may not leave its package,
 *    except from a test into an allowed package's sources.
 *  - engine folders: packages/engine/src/DEPS.json lists, per folder (or top-level file), the
 *    folders it may import; the lists must be acyclic, so the floors stay in order. Test files
 *    and testing/ are exempt (a test may reach into any folder), but not from the package rules.
 *  - no file-level import cycle anywhere in packages/(all)/src (type-only imports count too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Edges allowed beyond a package's forkd.deps while they are being removed (none today).
const TOLERATED: Record<string, string[]> = {};

interface Pkg {
  name: string;
  /** Directory of the package (packages/<x>). */
  dir: string;
  deps: string[];
  testDeps: string[];
}

/** A tree to check: source text by absolute path, the packages, and the engine's folder rules. */
export interface Tree {
  files: Map<string, string>;
  packages: Pkg[];
  engineSrc: string;
  engineRules: Record<string, string[]>;
}

function walk(dir: string, out: string[]): void {
  for (const e of readdirSync(dir)) {
    if (e === 'node_modules' || e === 'dist') continue;
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts)$/.test(e) && !e.endsWith('.d.ts')) out.push(p);
  }
}

function loadTree(): Tree {
  const packages: Pkg[] = [];
  const files = new Map<string, string>();
  for (const d of readdirSync(path.join(repo, 'packages'))) {
    const dir = path.join(repo, 'packages', d);
    const pj = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string; forkd?: { deps?: string[]; testDeps?: string[] } };
    assert.ok(pj.forkd?.deps, `${pj.name}: package.json has no forkd.deps (the @forkd/* packages its src may import)`);
    packages.push({ name: pj.name, dir, deps: [...pj.forkd.deps, ...(TOLERATED[pj.name] ?? [])], testDeps: pj.forkd.testDeps ?? [] });
    const srcFiles: string[] = [];
    walk(path.join(dir, 'src'), srcFiles);
    for (const f of srcFiles) files.set(f, readFileSync(f, 'utf8'));
  }
  const engineSrc = path.join(repo, 'packages', 'engine', 'src');
  const engineRules = (JSON.parse(readFileSync(path.join(engineSrc, 'DEPS.json'), 'utf8')) as { may_import: Record<string, string[]> }).may_import;
  return { files, packages, engineSrc, engineRules };
}

/** Every module specifier a file imports or re-exports, static or dynamic, type-only included. */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const patterns = [/^\s*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm, /^\s*import\s*['"]([^'"]+)['"]/gm, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(m[1]!);
  return out;
}

const isTestFile = (f: string) => /\.test\.ts$/.test(f) || f.split(path.sep).includes('testing');

/** The .ts file a relative specifier names (NodeNext: './x.js' is ./x.ts). */
function resolveRelative(from: string, spec: string, files: Map<string, string>): string | null {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base, `${base}.ts`, path.join(base, 'index.ts')]) if (files.has(c)) return c;
  return null;
}

function allows(allowed: string[], spec: string): boolean {
  return allowed.some((a) => spec === a || (a.split('/').length === 2 && spec.startsWith(`${a}/`)));
}

function packageRuleViolations(t: Tree): string[] {
  const bad: string[] = [];
  for (const [f, text] of t.files) {
    const pkg = t.packages.find((p) => f.startsWith(p.dir + path.sep))!;
    const allowed = isTestFile(f) ? [...pkg.deps, ...pkg.testDeps] : pkg.deps;
    for (const spec of importsOf(text)) {
      const where = path.relative(repo, f);
      if (spec.startsWith('@forkd/') && !allows(allowed, spec)) bad.push(`${where} imports ${spec}: ${pkg.name} may import ${allowed.join(', ') || 'no @forkd package'}`);
      if (!spec.startsWith('.') || path.resolve(path.dirname(f), spec).startsWith(path.join(pkg.dir, 'src') + path.sep)) continue;
      // A test may reach into another package's sources: that counts as importing the package.
      const other = t.packages.find((p) => path.resolve(path.dirname(f), spec).startsWith(p.dir + path.sep));
      if (!isTestFile(f) || !other || !allows(allowed, other.name)) bad.push(`${where} imports ${spec}: outside ${pkg.name}'s src${isTestFile(f) ? ` (a test may reach only into ${allowed.join(', ')})` : ' (import the package instead)'}`);
    }
  }
  return bad;
}

/** The engine folder a file belongs to ('sandbox/'), or the top-level file itself ('engine.ts'). */
function engineUnit(engineSrc: string, f: string): string {
  const rel = path.relative(engineSrc, f).split(path.sep);
  return rel.length > 1 ? `${rel[0]}/` : rel[0]!;
}

function engineFolderViolations(t: Tree): string[] {
  const bad: string[] = [];
  for (const [f, text] of t.files) {
    if (!f.startsWith(t.engineSrc + path.sep) || isTestFile(f)) continue;
    const from = engineUnit(t.engineSrc, f);
    const allowed = t.engineRules[from];
    if (!allowed) {
      bad.push(`${path.relative(repo, f)}: ${from} has no entry in packages/engine/src/DEPS.json (state what it may import)`);
      continue;
    }
    for (const spec of importsOf(text)) {
      if (!spec.startsWith('.')) continue;
      const target = resolveRelative(f, spec, t.files);
      if (!target) continue;
      const to = engineUnit(t.engineSrc, target);
      if (to !== from && !allowed.includes(to)) bad.push(`${path.relative(repo, f)} imports ${spec}: ${from} may import ${allowed.join(', ') || 'nothing in the engine'} (packages/engine/src/DEPS.json)`);
    }
  }
  const cycle = findCycle(new Map(Object.entries(t.engineRules)));
  if (cycle) bad.push(`packages/engine/src/DEPS.json allows a cycle: ${cycle.join(' -> ')}`);
  return bad;
}

/** One cycle of the graph (first node repeated at the end), or null. */
export function findCycle(graph: Map<string, Iterable<string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') return [...stack.slice(stack.indexOf(m)), m];
      if (!state.has(m)) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of graph.keys()) {
    if (state.has(n)) continue;
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

function fileCycle(t: Tree): string[] | null {
  const graph = new Map<string, string[]>();
  for (const [f, text] of t.files) {
    graph.set(f, importsOf(text).flatMap((s) => (s.startsWith('.') ? [resolveRelative(f, s, t.files)].filter((x): x is string => x !== null) : [])));
  }
  const c = findCycle(graph);
  return c && c.map((f) => path.relative(repo, f));
}

export function violations(t: Tree): string[] {
  const cycle = fileCycle(t);
  return [...packageRuleViolations(t), ...engineFolderViolations(t), ...(cycle ? [`import cycle: ${cycle.join(' -> ')}`] : [])];
}

test('every import keeps the package rules, the engine floors, and no file cycle', () => {
  const bad = violations(loadTree());
  assert.deepEqual(bad, [], `forbidden imports:\n  ${bad.join('\n  ')}`);
});

test('the checker catches a forbidden package import, an upward engine import and a cycle', () => {
  const t = loadTree();
  const src = (...p: string[]) => path.join(repo, 'packages', ...p);
  const files = new Map(t.files);
  files.set(src('protocol', 'src', 'bad.ts'), "import { Engine } from '@forkd/engine';\n");
  files.set(src('engine', 'src', 'util', 'bad.ts'), "import type { Vm } from '../vm/vm.js';\n");
  files.set(src('engine', 'src', 'home', 'a.ts'), "export { b } from './b.js';\n");
  files.set(src('engine', 'src', 'home', 'b.ts'), "import { a } from './a.js';\nexport const b = a;\n");
  const bad = violations({ ...t, files });
  assert.ok(bad.some((b) => b.startsWith('packages/protocol/src/bad.ts imports @forkd/engine')), bad.join('\n'));
  assert.ok(bad.some((b) => b.startsWith('packages/engine/src/util/bad.ts imports ../vm/vm.js: util/ may import home/')), bad.join('\n'));
  assert.ok(bad.some((b) => b.startsWith('import cycle:') && b.includes('home/a.ts') && b.includes('home/b.ts')), bad.join('\n'));
});
