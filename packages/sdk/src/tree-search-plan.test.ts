/** The tree search's pure rules: value sets from `vary`, beam selection, scores, the tree picture. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { expandVary, parseScore, renderTree, selectBeam, type TreeNode, type VaryValues } from './tree-search-plan.js';
import { InvalidArgumentError } from './errors.js';

describe('expandVary', () => {
  test('a map of arrays gives child i the i-th element of each', () => {
    assert.deepEqual(expandVary({ temperature: [0.1, 0.5, 1], name: ['a', 'b', 'c'] }), [
      { temperature: 0.1, name: 'a' }, { temperature: 0.5, name: 'b' }, { temperature: 1, name: 'c' },
    ]);
  });
  test('a list of objects is taken as it is (copied)', () => {
    const spec: VaryValues[] = [{ t: 1 }, { t: 2, extra: 'x', on: true }];
    const out = expandVary(spec);
    assert.deepEqual(out, spec);
    assert.notEqual(out[0], spec[0]);
  });
  test('malformed specs are InvalidArgumentError with FORKD_E_INVALID_ARGUMENT', () => {
    const bad: unknown[] = [
      {}, [], { a: [1, 2], b: [1] }, { a: 3 }, { a: [] }, [1, 2], [null], [{ '1x': 1 }], [{ FORKD_SEED: 1 }], [{ 'a-b': 1 }],
      [{ a: undefined }], [{ f: () => 1 }], [{ a: { deep: 1 } }], [{ a: [1] }], [{ a: null }], [{ a: NaN }],
      { a: Array.from({ length: 101 }, (_, i) => i) }, null, 'x',
    ];
    for (const b of bad) {
      assert.throws(() => expandVary(b as never), (e: unknown) => e instanceof InvalidArgumentError && e.code === 'FORKD_E_INVALID_ARGUMENT', JSON.stringify(b));
    }
  });
});

describe('parseScore', () => {
  test('numbers, numeric last lines and booleans; everything else is a failure (null)', () => {
    assert.equal(parseScore(3.5), 3.5);
    assert.equal(parseScore('log line\nmore\n  -12.25  \n'), -12.25);
    assert.equal(parseScore('1e3'), 1000);
    assert.equal(parseScore(true), 1);
    for (const v of [NaN, Infinity, '', 'abc', '12abc', '0x10', null, undefined, {}, [1], 'Infinity', '1e999']) assert.equal(parseScore(v), null, String(v));
  });
});

describe('selectBeam', () => {
  const c = (id: string, score: number | null) => ({ id, score });
  test('keeps the width best, best first; failed ones are dropped even with room', () => {
    const r = selectBeam([c('a', 1), c('b', null), c('c', 5), c('d', 3)], 3);
    assert.deepEqual(r.keep.map((x) => x.id), ['c', 'd', 'a']);
    assert.deepEqual(r.drop.map((x) => x.id), ['b']);
  });
  test('minimizing keeps the lowest; ties go to the earlier candidate', () => {
    assert.deepEqual(selectBeam([c('a', 2), c('b', 1), c('c', 1)], 1, false).keep.map((x) => x.id), ['b']);
    assert.deepEqual(selectBeam([c('a', 7), c('b', 7)], 1).keep.map((x) => x.id), ['a']);
  });
  test('a width below 1 is refused', () => {
    assert.throws(() => selectBeam([c('a', 1)], 0), InvalidArgumentError);
  });
  test('property: keep ∪ drop is the input, keep is sorted, no dropped scored node beats a kept one', () => {
    fc.assert(fc.property(
      fc.array(fc.option(fc.integer({ min: -50, max: 50 }), { nil: null }), { maxLength: 30 }),
      fc.integer({ min: 1, max: 10 }),
      fc.boolean(),
      (scores, width, maximize) => {
        const cands = scores.map((s, i) => c(`n${i}`, s));
        const { keep, drop } = selectBeam(cands, width, maximize);
        assert.deepEqual([...keep, ...drop].map((x) => x.id).sort(), cands.map((x) => x.id).sort());
        assert.equal(keep.length, Math.min(width, cands.filter((x) => x.score !== null).length));
        const better = (a: number, b: number) => (maximize ? a > b : a < b);
        for (let i = 1; i < keep.length; i++) assert.ok(!better(keep[i]!.score!, keep[i - 1]!.score!));
        const worstKept = keep.at(-1);
        for (const d of drop) if (d.score !== null && worstKept) assert.ok(!better(d.score, worstKept.score!));
      },
    ));
  });
});

describe('renderTree', () => {
  test('children under their parent, the winner marked, failures with their reason', () => {
    const n = (id: string, parent: string | null, index: number, score: number | null, status: TreeNode['status'], error?: string): TreeNode =>
      ({ id, parent, level: parent ? 1 : 0, index, values: parent ? { t: index / 2 } : {}, score, status, ...(error ? { error } : {}) });
    const text = renderTree([
      n('sb-root', null, -1, null, 'kept'),
      n('sb-a', 'sb-root', 0, 2, 'expanded'),
      n('sb-b', 'sb-root', 1, null, 'failed', 'exit 3: boom'),
      n('sb-c', 'sb-a', 0, 9.5, 'winner'),
      n('sb-d', 'sb-a', 1, 4, 'killed'),
    ]);
    assert.equal(text, [
      'root sb-root',
      '├─ #0 sb-a t=0  score 2  → expanded',
      '│  ├─ #0 sb-c t=0  score 9.500  ★ best',
      '│  └─ #1 sb-d t=0.5  score 4  ✗',
      '└─ #1 sb-b t=0.5  failed: exit 3: boom  ✗',
    ].join('\n'));
  });
});
