// The pool's bookkeeping (targets, takes, keys, demand, room, drain), with fake children: the real
// launch is covered by warm-pool.integration.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Vm } from '../vm/vm.js';
import { WarmPool, type PooledChild, type WarmPoolDeps } from './warm-pool.js';

interface Fake {
  child: PooledChild;
  killed: boolean;
  exit(): void;
}

function harness(over: Partial<WarmPoolDeps> = {}, settings = {}) {
  let nextPid = 1000;
  const made: Fake[] = [];
  const keys = new Map<string, string | null>();
  const fills: string[] = [];
  const deps: WarmPoolDeps = {
    fill: async (tag) => {
      fills.push(tag);
      let exit!: () => void;
      const exited = new Promise<void>((r) => (exit = r));
      const f: Fake = { killed: false, exit: () => exit(), child: null as unknown as PooledChild };
      const vm = { pid: nextPid++, proc: { exited }, kill: async () => { f.killed = true; exit(); } } as unknown as Vm;
      f.child = { vm, tag, key: keys.get(tag) ?? `k-${tag}`, agent: Promise.reject(new Error('unused')), startedAt: 0, claim: async () => undefined };
      f.child.agent.catch(() => undefined);
      made.push(f);
      return f.child;
    },
    currentKey: async (tag) => (keys.has(tag) ? keys.get(tag)! : `k-${tag}`),
    ...over,
  };
  const pool = new WarmPool(deps, settings);
  return { pool, made, keys, fills };
}

describe('warm pool', () => {
  it('fills each tag to its configured size, one child at a time, and counts them as VMs', async () => {
    const { pool, made } = harness();
    pool.configure('a', 2);
    pool.configure('b', 1);
    await pool.settled();
    assert.equal(made.length, 3);
    assert.equal(pool.size, 3);
    assert.deepEqual(pool.state().map((s) => [s.tag, s.ready, s.target]), [['a', 2, 2], ['b', 1, 1]]);
  });

  it('a spawn takes ready children of the same snapshot key; misses are counted; the pool refills after', async () => {
    const { pool, made } = harness();
    pool.configure('a', 2);
    await pool.settled();
    const pids = made.map((f) => f.child.vm.pid);
    const { taken, done } = pool.begin('a', 'k-a', 3);
    assert.deepEqual(taken.map((c) => c.vm.pid), pids);
    assert.equal(pool.size, 0);
    await pool.settled();
    assert.equal(made.length, 2, 'no fill while a spawn runs');
    done();
    await pool.settled();
    assert.equal(made.length, 4);
    const st = pool.state()[0]!;
    assert.equal(st.hits, 2);
    assert.equal(st.misses, 1);
  });

  it('children of a recreated snapshot (another key) are discarded, never handed out', async () => {
    const { pool, made } = harness();
    pool.configure('a', 1);
    await pool.settled();
    const { taken, done } = pool.begin('a', 'k-new', 1);
    assert.equal(taken.length, 0);
    assert.equal(made[0]!.killed, true);
    done();
  });

  it('a child whose snapshot changed while it started is killed, not pooled', async () => {
    const h = harness();
    h.keys.set('a', null); // the snapshot is gone by the time the fill ends
    h.pool.configure('a', 1);
    await h.pool.settled();
    assert.equal(h.made[0]!.killed, true);
    assert.equal(h.pool.size, 0);
  });

  it('drain kills a tag\'s children; reclaim frees other tags first; close kills all and stops filling', async () => {
    const { pool, made } = harness();
    pool.configure('a', 2);
    pool.configure('b', 2);
    await pool.settled();
    assert.equal(pool.reclaim(3, 'a'), 3);
    assert.deepEqual(pool.state().map((s) => [s.tag, s.ready]), [['a', 1], ['b', 0]]);
    assert.equal(await pool.drain('a'), 1);
    assert.equal(made.filter((f) => f.killed).length, 4);
    await pool.close();
    pool.configure('a', 5);
    await pool.settled();
    assert.equal(made.length, 4, 'closed: nothing more starts');
  });

  it('fills only while the owner has room, and looks again when room may have come back', async () => {
    let room = 1;
    const { pool } = harness({ hasRoom: () => room-- > 0 });
    pool.configure('a', 3);
    await pool.settled();
    assert.equal(pool.size, 1);
    room = 5; // sandboxes ended: nobody tells the pool
    const deadline = Date.now() + 5000;
    while (pool.size < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(pool.size, 3);
    await pool.close();
  });

  it('a pooled child that dies leaves the pool', async () => {
    const { pool, made } = harness();
    pool.configure('a', 1);
    await pool.settled();
    made[0]!.exit();
    await new Promise((r) => setImmediate(r));
    assert.equal(pool.size, 0);
  });

  it('demand sizing refills to recent takes, bounded, and forgets them after the window', async () => {
    let now = 0;
    const { pool } = harness({ now: () => now }, { demandMax: 3, demandWindowMs: 1000 });
    pool.begin('a', 'k-a', 5).done();
    await pool.settled();
    assert.equal(pool.state()[0]!.ready, 3);
    now = 5000;
    assert.equal(pool.state()[0]!.target, 0);
  });

  it('a failing fill backs off instead of retrying in a loop', async () => {
    let calls = 0;
    const errors: string[] = [];
    const { pool } = harness({ fill: async () => { calls++; throw new Error('no such snapshot'); }, onError: (_t, e) => errors.push((e as Error).message) });
    pool.configure('a', 2);
    await pool.settled();
    assert.equal(calls, 1);
    assert.equal(pool.state()[0]!.last_error, 'no such snapshot');
    assert.deepEqual(errors, ['no such snapshot']);
  });
});
