/**
 * The agent's side of fork with variations, on the host (the agent in test mode, the real guest
 * libraries run by the host's python3 and node): `vary` reaches new processes and both
 * interpreters; a guest's forkd.fork() is refused while no host watches, handed to the host's
 * guest_fork.wait when one does, answered as the parent by guest_fork.resolve and as a child by vary.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIMITS } from '@forkd/protocol';
import { AgentClient } from './client.js';
import { startTestAgent, type TestAgent } from './test-agent.js';

const LIB = fileURLToPath(new URL('../../../agent/src/guest-lib/', import.meta.url));
let agent: TestAgent;
let client: AgentClient;
let forkSock: string;
let dir: string;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-gf-'));
  forkSock = path.join(dir, 'fork.sock');
  agent = await startTestAgent({ extraArgs: ['--guest-fork-socket', forkSock] });
  client = await AgentClient.connect(agent.socketPath);
  for (let i = 0; !fs.existsSync(forkSock); i++) {
    if (i > 200) throw new Error('guest fork socket never appeared');
    await new Promise((r) => setTimeout(r, 25));
  }
});
after(async () => {
  client?.close();
  await agent?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the Python library's fork in a host python3, pointed at the test socket; resolves with its JSON answer or {error: code}. */
function pyFork(args: string): Promise<Record<string, unknown>> {
  const code = `import sys, json; sys.path.insert(0, ${JSON.stringify(LIB)}); import forkd; forkd.SOCKET_PATH = ${JSON.stringify(forkSock)}
try:
    print(json.dumps(forkd.fork(${args})))
except forkd.ForkdError as e:
    print(json.dumps({"error": e.code, "message": e.message}))`;
  return run('python3', ['-c', code]);
}

function nodeFork(args: string): Promise<Record<string, unknown>> {
  const code = `const f = require(${JSON.stringify(path.join(LIB, 'forkd.cjs'))}); f.SOCKET_PATH = ${JSON.stringify(forkSock)};
f.fork(${args}).then((r) => console.log(JSON.stringify({ ...r, draw: Math.random() })), (e) => console.log(JSON.stringify({ error: e.code, message: e.message })));`;
  return run(process.execPath, ['-e', code]);
}

function run(cmd: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', () => {
      try {
        resolve(JSON.parse(out) as Record<string, unknown>);
      } catch {
        reject(new Error(`no JSON from ${cmd}: ${out}`));
      }
    });
  });
}

test('the libraries name the socket the agent serves (declared once in LIMITS.guestFork)', () => {
  for (const f of ['forkd.py', 'forkd.cjs']) assert.ok(fs.readFileSync(path.join(LIB, f), 'utf8').includes(`"${LIMITS.guestFork.socketPath}"`.replace(/"/g, f.endsWith('.cjs') ? "'" : '"')), f);
});

test('no host has waited: the guest call is refused at once with FORKD_E_GUEST_FORK_DENIED', async () => {
  assert.deepEqual((await pyFork('2')).error, 'FORKD_E_GUEST_FORK_DENIED');
});

test('a guest fork reaches the host wait (vary expanded per child); resolve answers the parent with the children and timings', async () => {
  const wait = client.guestForkWait();
  const caller = pyFork('2, vary={"t": [1, 2]}');
  const req = await wait;
  assert.match(req.request_id, /^gf-[0-9a-f]{16}$/);
  assert.equal(req.count, 2);
  assert.deepEqual(req.vary, [{ t: 1 }, { t: 2 }]);
  assert.deepEqual(await client.guestForkResolve({ request_id: req.request_id, children: ['sb-0000000000000001', 'sb-0000000000000002'], timings: { pause_ms: 12.5, fork_ms: 800 } }), { delivered: true });
  assert.deepEqual(await caller, { role: 'parent', children: ['sb-0000000000000001', 'sb-0000000000000002'], pause_ms: 12.5, fork_ms: 800 });
  // Resolving it again delivers nothing (it was answered).
  assert.deepEqual(await client.guestForkResolve({ request_id: req.request_id, error: { code: 'FORKD_E_INTERNAL', message: 'x' } }), { delivered: false });
});

test('the host\'s error reaches the guest caller with its code; a request made between two waits is queued, not refused', async () => {
  const caller = nodeFork('9');
  const req = await client.guestForkWait();
  await client.guestForkResolve({ request_id: req.request_id, error: { code: 'FORKD_E_GUEST_FORK_LIMIT', message: 'fork(9) asks for more than max_count 3' } });
  const r = await caller;
  assert.equal(r.error, 'FORKD_E_GUEST_FORK_LIMIT');
  assert.match(String(r.message), /max_count 3/);
  // A host has waited before: a call with no wait open now waits for the next one.
  const queued = pyFork('1');
  await new Promise((res) => setTimeout(res, 300));
  const again = await client.guestForkWait();
  assert.equal(again.count, 1);
  await client.guestForkResolve({ request_id: again.request_id, children: ['sb-0000000000000003'] });
  assert.equal((await queued).role, 'parent');
});

test('bad requests are answered with a code, never held: vary lengths, names, count', async () => {
  assert.equal((await pyFork('2, vary={"t": [1]}')).error, 'FORKD_E_INVALID_ARGUMENT');
  assert.equal((await pyFork('1, vary={"FORKD_X": [1]}')).error, 'FORKD_E_INVALID_ARGUMENT');
  assert.equal((await nodeFork('1000')).error, 'FORKD_E_OUT_OF_RANGE');
  assert.equal((await pyFork('0')).error, 'FORKD_E_INVALID_ARGUMENT');
});

test('vary: the held call becomes the child\'s (index, values, seed; Math.random reseeded); env, Python and JS see the values', async () => {
  const wait = client.guestForkWait();
  const caller = nodeFork("2, { vary: [{ temperature: 0.5, model: 'm' }, { temperature: 0.9, model: 'n' }] }");
  const req = await wait;
  // As in a restored child: restore first (the snapshot's host and its wait are gone), then vary.
  await client.restore({ now_ms: Date.now(), entropy_b64: '' });
  const seed = 123456;
  const v = await client.vary({ index: 1, values: req.vary[1]!, seed, guest_fork: { request_id: req.request_id } });
  assert.equal(v.guest_fork_delivered, true);
  assert.deepEqual(v.env.sort(), ['FORKD_SEED', 'model', 'temperature']);
  const child = await caller;
  assert.deepEqual([child.role, child.index, child.values, child.seed], ['child', 1, { temperature: 0.9, model: 'n' }, seed]);
  const exec = await client.exec({ shell: 'echo "$temperature $model $FORKD_SEED"' });
  assert.equal(exec.stdout, `0.9 n ${seed}\n`);
  // The call's own env still wins over the values.
  assert.equal((await client.exec({ shell: 'echo $model', env: { model: 'mine' } })).stdout, 'mine\n');
  const js = await client.eval('js', 'JSON.stringify([temperature, model, process.env.temperature])');
  assert.equal(js.json, JSON.stringify([0.9, 'n', '0.9']));
  const py = await client.eval('python', 'import os, random; (temperature, model, os.environ["temperature"], os.environ["FORKD_SEED"])');
  assert.equal(py.repr, `(0.9, 'n', '0.9', '${seed}')`);
  // Python's random is seeded from the seed: the same draw as a fresh generator seeded with it.
  const draw = await client.eval('python', `random.random() == __import__('random').Random(${seed}).random()`);
  assert.equal(draw.repr, 'True');
});

test('after a restore the snapshot\'s wait is gone: calls are refused until this VM\'s host waits, or queued when the fork said it will watch', async () => {
  const stale = client.guestForkWait();
  stale.catch(() => undefined);
  await client.restore({ now_ms: Date.now(), entropy_b64: '' });
  await assert.rejects(stale, (e: unknown) => (e as { details?: { guest_code?: string } }).details?.guest_code === 'FORKD_E_CONFLICT');
  assert.equal((await pyFork('1')).error, 'FORKD_E_GUEST_FORK_DENIED');
  await client.vary({ index: 0, values: {}, seed: 5, watch_guest_forks: true });
  const queued = pyFork('1');
  await new Promise((res) => setTimeout(res, 300));
  const req = await client.guestForkWait();
  await client.guestForkResolve({ request_id: req.request_id, children: ['sb-0000000000000009'] });
  assert.deepEqual((await queued).children, ['sb-0000000000000009']);
});

test('vary params are validated by the agent too (index, names, seed)', async () => {
  await assert.rejects(client.vary({ index: -1, values: {}, seed: 1 }), (e: unknown) => (e as { code?: string }).code === 'FORKD_E_INVALID_ARGUMENT');
  await assert.rejects(client.vary({ index: 0, values: { 'bad-name': 1 }, seed: 1 }), (e: unknown) => (e as { code?: string }).code === 'FORKD_E_INVALID_ARGUMENT');
  await assert.rejects(client.vary({ index: 0, values: {}, seed: 2 ** 32 }), (e: unknown) => (e as { code?: string }).code === 'FORKD_E_INVALID_ARGUMENT');
});
