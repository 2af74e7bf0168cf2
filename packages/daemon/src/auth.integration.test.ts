import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';
import { raw, errorCode } from './testing/http.js';
import { AUTH_LIMITS } from '@forkd/protocol';

let d: TestDaemon;
before(async () => {
  d = await startTestDaemon({ tcp: true, token: true });
});
after(async () => {
  await d?.stop();
});

const auth = () => ({ authorization: `Bearer ${d.token}` });

test('healthz is the only route without auth; everything else needs the right bearer token', async () => {
  assert.equal((await raw(d, { method: 'GET', path: '/healthz' })).status, 200);
  const missing = await raw(d, { method: 'GET', path: '/version' });
  assert.equal(missing.status, 401);
  assert.equal(errorCode(missing), 'FORKD_E_UNAUTHORIZED');
  assert.match(missing.text, /missing bearer token/);
  const wrong = await raw(d, { method: 'GET', path: '/version', headers: { authorization: `Bearer ${d.token!.slice(0, -1)}x` } });
  assert.equal(wrong.status, 401);
  assert.match(wrong.text, /invalid bearer token/);
  const basic = await raw(d, { method: 'GET', path: '/v1/sandboxes', headers: { authorization: `Basic ${d.token}` } });
  assert.equal(basic.status, 401);
  for (const p of ['/version', '/metrics', '/v1/snapshots', '/v1/sandboxes', '/v1/openapi.json']) {
    assert.equal((await raw(d, { method: 'GET', path: p, headers: auth() })).status, 200, p);
  }
  // The bypass is exactly /healthz: lookalikes are authenticated (or unknown).
  for (const p of ['/healthz/../version', '/HEALTHZ', '/healthz%2F..%2Fversion']) {
    const r = await raw(d, { method: 'GET', path: p });
    assert.ok(r.status === 401 || r.status === 404, `${p}: ${r.status}`);
  }
  // The Unix socket is guarded by the same token when one is configured.
  assert.equal((await raw(d, { method: 'GET', path: '/version', tcp: false })).status, 401);
  // A file of bare tokens (the format before identities) makes admins: an admin-only route answers
  // for the tag (404: no such snapshot), not 403.
  const share = await raw(d, { method: 'POST', path: '/v1/snapshots/no-such-tag/share', headers: auth() });
  assert.equal(errorCode(share), 'FORKD_E_SNAPSHOT_NOT_FOUND', share.text);
});

test('the audit log names the caller by token id and never contains the token; nor does the daemon log', async () => {
  await raw(d, { method: 'GET', path: '/v1/snapshots', headers: auth() });
  await raw(d, { method: 'GET', path: '/v1/sandboxes/sb-0123456789abcdef', headers: auth() });
  await new Promise((r) => setTimeout(r, 200));
  const audit = await fs.readFile(d.auditPath, 'utf8');
  assert.ok(!audit.includes(d.token!), 'token leaked into the audit log');
  const lines = audit.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const miss = lines.find((l) => l.path === '/v1/sandboxes/sb-0123456789abcdef');
  assert.ok(miss, 'request not audited');
  assert.match(String(miss.caller), /^tok-[0-9a-f]{8}$/); // a bare token's identity is its token id
  assert.equal(miss.scope, 'admin');
  assert.equal(miss.status, 404);
  assert.equal(miss.resource, 'sb-0123456789abcdef');
  assert.equal(miss.route, '/v1/sandboxes/:id');
  assert.equal(miss.remote, '127.0.0.1');
  assert.equal(typeof miss.latency_ms, 'number');
  const denied = lines.find((l) => l.status === 401);
  assert.equal(denied?.caller, 'unauthenticated');
  assert.ok(d.log().length > 0, 'no daemon log captured');
  assert.ok(!d.log().includes(d.token!), 'token leaked into the daemon log');
});

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'src', 'index.ts');
function serve(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', CLI, 'serve', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}

test('the daemon refuses to start on a non-loopback address without a token, with a weak token, or with a token file others may read', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fdd-refuse-'));
  const state = ['--state', path.join(dir, 'state.jsonl'), '--socket', path.join(dir, 's.sock')];
  const open = serve(['--bind', '0.0.0.0:0', ...state]);
  assert.equal(open.status, 2);
  assert.match(open.stderr, /FORKD_E_INVALID_ARGUMENT.*without --token-file/);
  const f = path.join(dir, 'tok');
  for (const [content, why] of [['short-token\n', /shorter than 16 bytes/], ['REPLACE_ME_with_a_real_token\n', /placeholder/], ['# only a comment\n\n', /holds no token/],
    ['abcabcabcabcabcabcabc\n', /fewer than 8 distinct/], ['k3J9xQ2mP7vL4nR8 Alice admin\n', /identity "Alice"/], ['k3J9xQ2mP7vL4nR8 alice superuser\n', /scope "superuser"/]] as const) {
    await fs.writeFile(f, content, { mode: 0o600 });
    const r = serve(['--bind', '127.0.0.1:0', '--token-file', f, ...state]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, why);
  }
  await fs.writeFile(f, 'k3J9xQ2mP7vL4nR8 alice user\n');
  await fs.chmod(f, 0o644);
  const loose = serve(['--bind', '127.0.0.1:0', '--token-file', f, ...state]);
  assert.equal(loose.status, 2, loose.stderr);
  assert.match(loose.stderr, /FORKD_E_TOKEN_FILE_INSECURE.*mode 0644.*chmod 600/);
});

test('failed authentications are rate-limited per peer: 429 past the limit, even for the right token, until the window ends', async () => {
  const own = await startTestDaemon({ tcp: true, token: true, fixture: false });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < AUTH_LIMITS.failures.perWindow + 2; i++) {
      statuses.push((await raw(own, { method: 'GET', path: '/version', headers: { authorization: `Bearer wrong-${i}-0123456789abcdef` } })).status);
    }
    assert.deepEqual([...new Set(statuses.slice(0, AUTH_LIMITS.failures.perWindow))], [401]);
    assert.deepEqual(statuses.slice(AUTH_LIMITS.failures.perWindow), [429, 429]);
    const right = await raw(own, { method: 'GET', path: '/version', headers: { authorization: `Bearer ${own.token}` } });
    assert.equal(right.status, 429);
    assert.equal(errorCode(right), 'FORKD_E_RATE_LIMITED');
    assert.equal((await raw(own, { method: 'GET', path: '/healthz' })).status, 200);
  } finally {
    await own.stop();
  }
});
