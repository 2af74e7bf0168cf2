/**
 * Fork with variations on real VMs (issue 10 §1): from outside (POST …/fork with vary) and from
 * inside (a program in the guest calls forkd.fork(k, vary) and continues in every branch). One
 * source sandbox (allowed to fork itself) serves every fork and one plain sandbox every refusal;
 * children are killed as soon as they are checked. Two captures in all (lean for CI under TCG).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Controller } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';

let d: TestDaemon;
let c: Controller;
let src: string;
let plain: string;
const made: string[] = [];

before(async () => {
  d = await startTestDaemon();
  c = new Controller({ socketPath: d.socketPath });
  // The source (allowed to fork itself) and a plain sandbox (not allowed), restored side by side.
  const [[s], [p]] = await Promise.all([
    c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, allow_guest_fork: { max_count: 3, max_depth: 1 } }),
    c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 }),
  ]);
  src = s!.id;
  plain = p!.id;
  assert.deepEqual(s!.guest_fork, { max_count: 3, max_depth: 1, depth: 0 });
  assert.equal(p!.guest_fork, null);
});
after(async () => {
  // Guest forks made their own snapshots (branched from the source): removed with the explicit ones.
  if (src) for (const s of await c.listSnapshots().catch(() => [])) if (s.branched_from === `sandbox:${src}`) made.push(s.tag);
  for (const t of made) await c.deleteSnapshot(t, { cascade: true, force: true }).catch(() => undefined);
  if (plain) await c.killSandbox(plain).catch(() => undefined);
  await d?.stop();
});

const codeOf = (e: unknown) => (e as { code?: string }).code;
async function py(id: string, code: string): Promise<string | null> {
  const r = await c.eval(id, { code });
  assert.equal(r.error, null, r.traceback ?? '');
  return r.result;
}
async function sh(id: string, cmd: string): Promise<string> {
  const r = await c.exec(id, { cmd });
  assert.equal(r.exit_code, 0, `${cmd}: ${r.stderr}`);
  return r.stdout;
}
/** Polls a guest file until it exists (a background program writes it). */
async function readWhenThere(id: string, path: string, timeoutMs = 120_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await c.exec(id, { cmd: `cat ${path}` });
    if (r.exit_code === 0) return r.stdout;
    if (Date.now() > until) throw new Error(`${path} never appeared in ${id}`);
    await new Promise((res) => setTimeout(res, 300));
  }
}

test('vary is checked before anything is captured: wrong lengths, bad names, reserved names, non-scalars', async () => {
  const bad: Array<[unknown, string]> = [
    [{ t: [1, 2] }, 'FORKD_E_INVALID_ARGUMENT'],
    [[{ t: 1 }], 'FORKD_E_INVALID_ARGUMENT'],
    [{ '1abc': [1, 2, 3] }, 'FORKD_E_INVALID_ARGUMENT'],
    [{ 'a-b': [1, 2, 3] }, 'FORKD_E_INVALID_ARGUMENT'],
    [{ FORKD_SEED: [1, 2, 3] }, 'FORKD_E_INVALID_ARGUMENT'],
    [{ t: [{ x: 1 }, 2, 3] }, 'FORKD_E_INVALID_ARGUMENT'],
  ];
  for (const [vary, code] of bad) {
    await assert.rejects(c.forkSandbox(src, { count: 3, vary: vary as never }), (e) => codeOf(e) === code, JSON.stringify(vary));
  }
  await assert.rejects(c.forkSandbox(src, { count: 2, seeds: [1] }), (e) => codeOf(e) === 'FORKD_E_INVALID_ARGUMENT');
  assert.equal((await c.getSandbox(src)).branch_count, 0, 'a refused fork captured nothing');
});

test('outside: fork(3, vary temperature) — each child has its value in os.environ, a Python global, exec env and the JS context; seeds reported and distinct; draws differ', async () => {
  await py(src, 'import random, numpy; random.seed(7); numpy.random.seed(7); shared = "before"');
  const temps = [0.1, 0.5, 0.9];
  const f = await c.forkSandbox(src, { count: 3, mode: 'full', vary: { temperature: temps } });
  made.push(f.snapshot_tag);
  try {
    assert.equal(f.children.length, 3);
    assert.ok(f.fork_ms > 0 && f.pause_ms > 0, `fork_ms ${f.fork_ms} pause_ms ${f.pause_ms}`);
    assert.deepEqual(f.children.map((k) => k.index), [0, 1, 2]);
    assert.deepEqual(f.children.map((k) => k.values), temps.map((t) => ({ temperature: t })));
    assert.equal(new Set(f.children.map((k) => k.seed)).size, 3, 'seeds differ');
    const draws: string[] = [];
    for (const [i, k] of f.children.entries()) {
      assert.equal(f.sandboxes[i]!.id, k.id);
      assert.deepEqual(f.sandboxes[i]!.variant, { index: i, values: { temperature: temps[i] }, seed: k.seed });
      assert.equal(await py(k.id, "__import__('os').environ['temperature']"), `'${temps[i]}'`);
      assert.equal(await py(k.id, 'temperature'), String(temps[i]));
      assert.equal(await py(k.id, 'shared'), "'before'", 'the interpreter continued from the parent');
      assert.equal(await py(k.id, "__import__('os').environ['FORKD_SEED']"), `'${k.seed}'`);
      assert.equal(await sh(k.id, 'echo "$temperature $FORKD_SEED"'), `${temps[i]} ${k.seed}\n`);
      const js = await c.eval(k.id, { code: 'temperature * 10', language: 'js' });
      assert.equal(js.result, String(temps[i]! * 10));
      draws.push((await py(k.id, '(random.random(), float(numpy.random.random()))'))!);
    }
    assert.equal(new Set(draws).size, 3, `draws differ across children: ${draws.join(' | ')}`);
    // Same seed, same draw: the seed alone decides the child's Python generator.
    assert.equal(await py(f.children[0]!.id, 'random.seed(int(__import__("os").environ["FORKD_SEED"])); random.random()'), await py(f.children[0]!.id, `random.seed(${f.children[0]!.seed}); random.random()`));
    // The source keeps its own values: none.
    assert.equal(await py(src, "'temperature' in globals()"), 'False');
  } finally {
    for (const k of f.children) await c.killSandbox(k.id).catch(() => undefined);
  }
});

test('inside: a Python loop started in the background calls forkd.fork(3, vary t) and continues in 3 children from the same in-memory state', async () => {
  const program = [
    'import forkd, json, random, time',
    'state = {"steps": 0, "secret": random.random()}',
    'for _ in range(5):',
    '    state["steps"] += 1',
    'r = forkd.fork(3, vary={"t": [1, 2, 3]})',
    'if r["role"] == "parent":',
    '    json.dump({"r": r, "state": state}, open("/root/parent.json", "w"))',
    'else:',
    '    for _ in range(r["values"]["t"]):',
    '        state["steps"] += 10',
    '    json.dump({"r": r, "state": state, "draw": random.random()}, open("/root/child.json", "w"))',
  ].join('\n');
  await c.writeFile(src, '/root/loop.py', Buffer.from(program));
  await c.startProcess(src, { args: ['python3', '/root/loop.py'] });
  const parent = JSON.parse(await readWhenThere(src, '/root/parent.json', 240_000)) as { r: { role: string; children: string[]; pause_ms: number; fork_ms: number }; state: { steps: number; secret: number } };
  assert.equal(parent.r.role, 'parent');
  assert.equal(parent.r.children.length, 3);
  assert.ok(parent.r.pause_ms > 0 && parent.r.fork_ms >= parent.r.pause_ms, `timings ${JSON.stringify(parent.r)}`);
  assert.equal(parent.state.steps, 5);
  try {
    const seen = [];
    for (const id of parent.r.children) {
      const info = await c.getSandbox(id);
      assert.deepEqual(info.guest_fork, { max_count: 3, max_depth: 1, depth: 1 });
      const kid = JSON.parse(await readWhenThere(id, '/root/child.json')) as { r: { role: string; index: number; values: { t: number }; seed: number }; state: { steps: number; secret: number }; draw: number };
      assert.equal(kid.r.role, 'child');
      assert.deepEqual(kid.r.values, { t: kid.r.index + 1 });
      assert.equal(info.variant?.index, kid.r.index);
      assert.equal(info.variant?.seed, kid.r.seed);
      assert.equal(kid.state.secret, parent.state.secret, 'the child continued from the parent\'s memory');
      assert.equal(kid.state.steps, 5 + 10 * kid.r.values.t);
      seen.push(kid);
      // No parent.json in a child: the parent wrote it after the capture.
      assert.notEqual((await c.exec(id, { cmd: 'test -e /root/parent.json' })).exit_code, 0);
    }
    assert.deepEqual(seen.map((k) => k.r.index).sort(), [0, 1, 2]);
    assert.equal(new Set(seen.map((k) => k.draw)).size, 3, 'each child draws its own numbers');
    // Depth: the children are max_depth deep already; their own fork is refused with the code.
    const deep = await c.exec(parent.r.children[0]!, { cmd: 'python3 -c "import forkd\ntry:\n    forkd.fork(1)\nexcept forkd.ForkdError as e:\n    print(e.code)"' });
    assert.equal(deep.stdout.trim(), 'FORKD_E_GUEST_FORK_LIMIT', deep.stderr);
  } finally {
    for (const id of parent.r.children) await c.killSandbox(id).catch(() => undefined);
  }
  // Beyond max_count: refused with the code, nothing forked.
  const before = (await c.getSandbox(src)).branch_count;
  const many = await c.exec(src, { cmd: 'python3 -c "import forkd\ntry:\n    forkd.fork(5)\nexcept forkd.ForkdError as e:\n    print(e.code)"' });
  assert.equal(many.stdout.trim(), 'FORKD_E_GUEST_FORK_LIMIT', many.stderr);
  assert.equal((await c.getSandbox(src)).branch_count, before);
});

test('inside, Node and refusal: require("forkd") and import("forkd") resolve in the image; without allow_guest_fork both libraries get FORKD_E_GUEST_FORK_DENIED and nothing is captured', async () => {
  // Node's parent/child answers (and Math.random reseeded) go through the same agent socket as
  // Python's above; they are checked on the host with the real library (engine agent-client/guest-fork.test.ts).
  // Here, in the image: the module resolves (CommonJS and ESM, from any directory) and reaches the agent.
  const node = "require('forkd').fork(2, { vary: { k: ['a', 'b'] } }).then(() => console.log('forked'), (e) => console.log(e.code))";
  const cjs = await c.exec(plain, { cmd: `cd /tmp && node -e "${node}"` });
  assert.equal(cjs.stdout.trim(), 'FORKD_E_GUEST_FORK_DENIED', cjs.stderr);
  const esm = await c.exec(plain, { cmd: `cd / && node --input-type=module -e "import forkd from 'forkd'; console.log(typeof forkd.fork)"` });
  assert.equal(esm.stdout.trim(), 'function', esm.stderr);
  const py = await c.exec(plain, { cmd: 'python3 -c "import forkd\ntry:\n    forkd.fork(2)\nexcept forkd.ForkdError as e:\n    print(e.code)"' });
  assert.equal(py.stdout.trim(), 'FORKD_E_GUEST_FORK_DENIED', py.stderr);
  assert.equal((await c.getSandbox(plain)).branch_count, 0);
});
