/**
 * The postgres-fixture recipe on real VMs: the server initialised and started in the parent is
 * running in every child; a host psql reaches each child through its exposed port as role forkd,
 * without a password; writes in one child are invisible to its sibling and to the next spawn.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { GUEST_NETWORK } from '@forkd/protocol';
import { agentOf, ensureRecipeSnapshot } from '../testing/fixture.js';
import { openNetLab, type NetLab } from '../testing/net-lab.js';
import { loadRecipe } from '../recipe/recipe.js';
import type { Engine } from '../engine.js';
import type { Sandbox } from '../sandbox/sandbox.js';

let lab: NetLab;
let engine: Engine;
let tag = '';
const live: Sandbox[] = [];

before(async () => {
  lab = await openNetLab();
  process.env.FORKD_RUN_DIR = lab.runDir;
  const { Engine } = await import('../engine.js');
  engine = new Engine({ accel: 'auto', network: { pool: lab.pool, uplinkNetns: lab.uplinkNetns } });
  ({ tag } = await ensureRecipeSnapshot(engine, 'postgres-fixture', await loadRecipe('postgres-fixture')));
});
after(async () => {
  await Promise.all(live.map((s) => s.kill().catch(() => undefined)));
  await engine?.cleanup().catch(() => undefined);
  await lab?.close();
});

/**
 * Host-side psql, no password (PGPASSWORD unset, -w: never prompt). Asynchronous on purpose: the
 * port forwarder runs in this process, so a spawnSync would block the very relay psql goes through.
 */
function psql(at: { host: string; port: number }, sql: string, user = 'forkd'): Promise<{ ok: boolean; out: string; err: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: '30' };
  delete env.PGPASSWORD;
  const args = ['-h', at.host, '-p', String(at.port), '-U', user, '-d', 'forkd_test', '-w', '-v', 'ON_ERROR_STOP=1', '-Atc', sql];
  return new Promise((resolve) => {
    execFile('psql', args, { encoding: 'utf8', timeout: 60_000, env }, (err, stdout, stderr) => resolve({ ok: !err, out: String(stdout ?? '').trim(), err: String(stderr ?? '').trim() || String(err ?? '') }));
  });
}

async function spawn(n: number): Promise<Array<{ sb: Sandbox; at: { host: string; port: number } }>> {
  const kids = await engine.spawn({ tag, n, network: false });
  live.push(...kids);
  return Promise.all(kids.map(async (sb) => ({ sb, at: await sb.exposePort(5432) })));
}

test('each child runs the parent\'s postgres; the host reaches it as forkd without a password, from the gateway address', async () => {
  const spawnedAt = Date.now();
  const [a, b] = await spawn(2);
  for (const { sb, at } of [a!, b!]) {
    const list = await agentOf(sb).servicesList();
    assert.deepEqual(list.services.map((s) => [s.name, s.running]), [['postgres', true]]);
    const r = await psql(at, 'SELECT current_user, current_database(), inet_client_addr()');
    assert.ok(r.ok, r.err);
    // The port forwarder connects from the tap in the child's namespace: the pg_hba rule's address.
    assert.equal(r.out, `forkd|forkd_test|${GUEST_NETWORK.gatewayAddr}`);
    // The server was started once, in the parent: its start time is before the child existed.
    const started = await psql(at, "SELECT extract(epoch FROM pg_postmaster_start_time())::bigint");
    assert.ok(Number(started.out) * 1000 < spawnedAt, `postmaster started in the parent (${started.out}), before the spawn (${spawnedAt})`);
  }
  // Only forkd is trusted over TCP: the superuser is refused, not let in.
  const su = await psql(a!.at, 'SELECT 1', 'postgres');
  assert.equal(su.ok, false);
  assert.match(su.err, /no pg_hba\.conf entry/);
  await Promise.all([a!, b!].map(({ sb }) => sb.kill()));
});

test('writes in one child are invisible to its sibling and to the next spawn', async () => {
  const [a, b] = await spawn(2);
  const w = await psql(a!.at, "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('only in a'); SELECT count(*) FROM notes");
  assert.ok(w.ok, w.err);
  assert.equal(w.out.split('\n').pop(), '1');
  const inB = await psql(b!.at, "SELECT to_regclass('public.notes') IS NULL");
  assert.ok(inB.ok, inB.err);
  assert.equal(inB.out, 't', 'the sibling has no notes table');
  const wb = await psql(b!.at, "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('b1'), ('b2'); SELECT count(*) FROM notes");
  assert.ok(wb.ok, wb.err);
  assert.equal(wb.out.split('\n').pop(), '2');
  assert.equal((await psql(a!.at, 'SELECT string_agg(body, \',\') FROM notes')).out, 'only in a');
  const [c] = await spawn(1);
  assert.equal((await psql(c!.at, "SELECT to_regclass('public.notes') IS NULL")).out, 't', 'the next spawn starts from the parent');
});
