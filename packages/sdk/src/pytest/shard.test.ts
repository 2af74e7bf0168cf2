import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { shardTests, type CollectedTest } from './shard.js';

const suite = (counts: Record<string, number>): CollectedTest[] =>
  Object.entries(counts).flatMap(([file, n]) => Array.from({ length: n }, (_, i) => ({ nodeid: `${file}::t${i}`, file })));

test('by test: contiguous shards whose sizes differ by at most one, in collection order', () => {
  const tests = suite({ 'a.py': 5, 'b.py': 3, 'c.py': 2 });
  const shards = shardTests(tests, 3, 'test');
  assert.deepEqual(shards.map((s) => s.length), [4, 3, 3]);
  assert.deepEqual(shards.flat(), tests);
});

test('by file: whole files, largest first onto the least-loaded shard', () => {
  const shards = shardTests(suite({ 'a.py': 8, 'b.py': 5, 'c.py': 4, 'd.py': 3, 'e.py': 1 }), 2, 'file');
  const files = shards.map((s) => [...new Set(s.map((t) => t.file))]);
  assert.deepEqual(files, [['a.py', 'd.py'], ['b.py', 'c.py', 'e.py']]);
  assert.deepEqual(shards.map((s) => s.length), [11, 10]);
});

test('fewer units than children: fewer shards, none empty; nothing to run: none', () => {
  assert.equal(shardTests(suite({ 'a.py': 3, 'b.py': 1 }), 8, 'file').length, 2);
  assert.equal(shardTests(suite({ 'a.py': 3 }), 8, 'test').length, 3);
  assert.deepEqual(shardTests([], 4, 'file'), []);
  assert.throws(() => shardTests(suite({ 'a.py': 1 }), 0, 'file'), RangeError);
});

test('durations balance by time: one slow test gets a shard to itself', () => {
  const tests = suite({ 'a.py': 4 });
  const shards = shardTests(tests, 2, 'test', { 'a.py::t0': 10, 'a.py::t1': 1, 'a.py::t2': 1, 'a.py::t3': 1 });
  assert.deepEqual(shards.map((s) => s.map((t) => t.nodeid)), [['a.py::t0'], ['a.py::t1', 'a.py::t2', 'a.py::t3']]);
});

test('property: every test lands in exactly one shard; LPT by file stays within the largest file of the ideal', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 15 }), fc.integer({ min: 1, max: 8 }), fc.constantFrom('file' as const, 'test' as const), (counts, n, mode) => {
    const tests = suite(Object.fromEntries(counts.map((c, i) => [`f${i}.py`, c])));
    const shards = shardTests(tests, n, mode);
    assert.ok(shards.every((s) => s.length > 0));
    assert.deepEqual(shards.flat().map((t) => t.nodeid).sort(), tests.map((t) => t.nodeid).sort());
    const loads = shards.map((s) => s.length);
    const spread = Math.max(...loads) - Math.min(...loads);
    assert.ok(spread <= (mode === 'test' ? 1 : Math.max(...counts)), `loads ${loads}`);
  }));
});
