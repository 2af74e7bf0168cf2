import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Sandbox } from './sandbox.js';
import { ensureFixtureSnapshot, PARENT_MARKER, testEngine } from '../testing/fixture.js';
import type { EvalResultT, ExecResultT } from '@forkd/protocol';

const engine = testEngine();
let tag = '';
const live: Sandbox[] = [];

before(async () => {
  tag = await ensureFixtureSnapshot(engine);
});
after(async () => {
  await Promise.all(live.map((s) => s.kill()));
});

async function spawn(n: number): Promise<Sandbox[]> {
  const sbs = await engine.spawn({ tag, n });
  live.push(...sbs);
  return sbs;
}
async function py(sb: Sandbox, code: string): Promise<EvalResultT> {
  return sb.eval('python', code, { timeoutMs: 25_000 });
}
async function js(sb: Sandbox, code: string): Promise<EvalResultT> {
  return sb.eval('js', code, { timeoutMs: 25_000 });
}
async function sh(sb: Sandbox, shell: string): Promise<ExecResultT> {
  return sb.commands.exec({ shell, timeout_ms: 25_000 });
}

test('children share the warm state: parent variables and numpy are already there', async () => {
  const sbs = await spawn(3);
  for (const sb of sbs) {
    const first = await py(sb, "('numpy' in sys.modules, forkd_parent_marker)");
    assert.equal(first.ok, true, JSON.stringify(first.error));
    assert.equal(first.repr, `(True, ${PARENT_MARKER})`);
    const np = await py(sb, 'float(np.arange(10).sum())');
    assert.equal(np.json, 45);
    // Importing numpy cold takes seconds under TCG; in a warm child the first numpy call is quick.
    assert.ok(np.duration_ms < 1500, `numpy eval took ${np.duration_ms} ms`);
    const j = await js(sb, 'jsParentMarker');
    assert.equal(j.json, 'from-parent');
    assert.ok(sb.timings.spawn_to_ready_ms >= sb.timings.spawn_to_running_ms);
  }
});

test('children diverge: memory and file writes stay private to one child', async () => {
  const [a, b] = await spawn(2);
  assert.ok(a && b);
  assert.equal((await py(a, "secret = 'only-in-a'; secret")).json, 'only-in-a');
  assert.equal((await sh(a, 'echo only-in-a > /root/private.txt && sync && cat /root/private.txt')).stdout.trim(), 'only-in-a');
  const inB = await py(b, "'secret' in globals()");
  assert.equal(inB.repr, 'False');
  const fileInB = await sh(b, 'test -e /root/private.txt && echo present || echo absent');
  assert.equal(fileInB.stdout.trim(), 'absent');
  // A later child of the same snapshot sees neither.
  const [c] = await spawn(1);
  assert.ok(c);
  assert.equal((await py(c, "'secret' in globals()")).repr, 'False');
  assert.equal((await sh(c, 'test -e /root/private.txt && echo present || echo absent')).stdout.trim(), 'absent');
});

test('children get fresh randomness and a correct clock', async () => {
  const sbs = await spawn(3);
  const urandom = await Promise.all(sbs.map(async (sb) => (await sh(sb, 'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"')).stdout));
  assert.equal(new Set(urandom).size, sbs.length, `urandom repeated: ${urandom.join(' ')}`);
  for (const s of urandom) assert.match(s, /^[0-9a-f]{32}$/);
  const pyRand = await Promise.all(sbs.map(async (sb) => (await py(sb, 'random.random()')).repr));
  assert.equal(new Set(pyRand).size, sbs.length, `python random repeated: ${pyRand.join(' ')}`);
  const npRand = await Promise.all(sbs.map(async (sb) => (await py(sb, 'float(np.random.rand())')).repr));
  assert.equal(new Set(npRand).size, sbs.length, `numpy random repeated: ${npRand.join(' ')}`);
  const jsRand = await Promise.all(sbs.map(async (sb) => (await js(sb, 'Math.random()')).repr));
  assert.equal(new Set(jsRand).size, sbs.length, `Math.random repeated: ${jsRand.join(' ')}`);
  // OpenSSL's generator state is cloned with the snapshot too: crypto must not repeat across children.
  const jsCrypto = await Promise.all(sbs.map(async (sb) => (await js(sb, "require('crypto').randomBytes(16).toString('hex') + require('crypto').randomUUID()")).repr));
  assert.equal(new Set(jsCrypto).size, sbs.length, `node crypto repeated: ${jsCrypto.join(' ')}`);
  const pySecrets = await Promise.all(sbs.map(async (sb) => (await py(sb, 'import secrets; secrets.token_hex(16)')).repr));
  assert.equal(new Set(pySecrets).size, sbs.length, `python secrets repeated: ${pySecrets.join(' ')}`);
  for (const sb of sbs) {
    const before = Date.now();
    const r = await sh(sb, 'date +%s%N');
    const after = Date.now();
    const guestMs = Number(r.stdout.trim()) / 1e6;
    assert.ok(guestMs > before - 2000 && guestMs < after + 2000, `guest clock ${guestMs} vs host ${before}..${after}`);
  }
  // Guest timers still fire on time without the PIT (idle tuning): the agent's own exec timeout
  // (a Node timer in the guest) stops a sleep, and a guest sleep of 1 s takes ~1 s of host time.
  const t0 = Date.now();
  const stopped = await sbs[0]!.commands.exec({ shell: 'sleep 30', timeout_ms: 1000 });
  assert.equal(stopped.timed_out, true);
  assert.ok(Date.now() - t0 < 10_000, `exec timeout of 1 s took ${Date.now() - t0} ms`);
  const t1 = Date.now();
  await sh(sbs[0]!, 'sleep 1');
  assert.ok(Date.now() - t1 >= 1000 && Date.now() - t1 < 6000, `guest sleep 1 took ${Date.now() - t1} ms of host time`);
});

test('each child has its own pid, disk overlay and agent channel', async () => {
  const sbs = await spawn(2);
  const [a, b] = sbs;
  assert.ok(a && b);
  assert.notEqual(a.pid, b.pid);
  assert.notEqual(a.dir, b.dir);
  // QEMU runs with transparent huge pages off (set-up installs gcc for the wrapper): less memory per child.
  assert.match(readFileSync(`/proc/${a.pid}/status`, 'utf8'), /THP_enabled:\s*0/);
  await a.kill();
  // The sibling is unaffected by its sibling's death.
  assert.equal((await sh(b, 'echo alive')).stdout.trim(), 'alive');
});

test('an agent that stops answering gives FORKD_E_AGENT_TIMEOUT, not a hang', async () => {
  const [sb] = await spawn(1);
  assert.ok(sb);
  const agentPid = (await sb.ping({ timeoutMs: 10_000 })).pid;
  await sb.commands.start({ shell: `sleep 0.3; kill -STOP ${agentPid}` });
  await new Promise((r) => setTimeout(r, 1500));
  await assert.rejects(sb.ping({ timeoutMs: 1500 }), (e: { code?: string }) => e.code === 'FORKD_E_AGENT_TIMEOUT');
});
