/** The web view's layout of the forest (web/tree-layout.js, pure): no overlaps, chains go down, branch edges start at their sandbox. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { layoutForest, sourceSandbox, bytes, age, type LayoutNode } from '../packages/daemon/web/tree-layout.js';

const node = (tag: string, sandboxes: string[] = [], children: LayoutNode[] = []): LayoutNode => ({ tag, kind: 'branch', created_at_unix: 0, sandboxes, children });

test('a chain of branches: each layer one row lower, its edge from the sandbox it was branched from', () => {
  const roots = [node('root', ['sb-00000000000000aa'], [node('b1', ['sb-00000000000000bb'], [node('b2', ['sb-00000000000000cc'])])]), node('other')];
  const info = { b1: { branched_from: 'sandbox:sb-00000000000000aa' }, b2: { branched_from: 'sandbox:sb-00000000000000bb' }, root: { branched_from: 'recipe:python' } };
  const L = layoutForest(roots, info);
  const box = (t: string) => L.boxes.find((b) => b.tag === t)!;
  assert.ok(box('b1').y > box('root').y && box('b2').y > box('b1').y);
  assert.equal(box('other').y, box('root').y);
  assert.deepEqual(L.edges.map((e) => [e.from, e.to, e.fromSandbox]), [['root', 'b1', true], ['b1', 'b2', true]]);
  const pill = L.pills.find((p) => p.id === 'sb-00000000000000aa')!;
  assert.ok(L.edges[0]!.path.startsWith(`M${pill.x + pill.w},${pill.y + pill.h / 2} `));
  // A layer whose source sandbox is gone hangs from its parent's block.
  const gone = layoutForest([node('root', [], [node('b1')])], { b1: { branched_from: 'sandbox:sb-00000000000000ff' } });
  assert.equal(gone.edges[0]!.fromSandbox, false);
  assert.equal(layoutForest([]).boxes.length, 0);
});

/** Forests as parent indices: node i hangs from an earlier node, or is a root (-1). */
const arbTree: fc.Arbitrary<LayoutNode[]> = fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.boolean()), { minLength: 1, maxLength: 25 }).map((spec) => {
  const nodes: LayoutNode[] = [];
  const roots: LayoutNode[] = [];
  spec.forEach(([p, nSb, isRoot], i) => {
    const n = node(`t${i}`, Array.from({ length: nSb }, (_, k) => `sb-${i}-${k}`));
    nodes.push(n);
    if (i === 0 || isRoot) roots.push(n);
    else nodes[p % i]!.children.push(n);
  });
  return roots;
});

test('no two blocks (a box and its sandboxes) overlap, and everything fits the drawing', () => {
  fc.assert(fc.property(arbTree, (roots) => {
    const L = layoutForest(roots);
    const blocks = L.boxes.map((b) => ({ x: b.x, y: b.y, w: b.w, h: b.h + (b.node.sandboxes.length ? 4 + b.node.sandboxes.length * 24 : 0) }));
    for (let i = 0; i < blocks.length; i++) {
      const a = blocks[i]!;
      assert.ok(a.x >= 0 && a.y >= 0 && a.x + a.w <= L.width && a.y + a.h <= L.height, 'outside the drawing');
      for (let j = i + 1; j < blocks.length; j++) {
        const b = blocks[j]!;
        assert.ok(a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y, 'overlap');
      }
    }
  }), { numRuns: 200 });
});

test('labels: sizes, ages, sources', () => {
  assert.equal(bytes(0), '0 B');
  assert.equal(bytes(1536), '1.5 KiB');
  assert.equal(bytes(300 * 1024 * 1024), '300 MiB');
  assert.equal(age(100, 142_000), '42 s');
  assert.equal(age(0, 3 * 3600_000), '3 h');
  assert.equal(sourceSandbox('sandbox:sb-0123456789abcdef'), 'sb-0123456789abcdef');
  assert.equal(sourceSandbox('recipe:python'), null);
  assert.equal(sourceSandbox(null), null);
});
