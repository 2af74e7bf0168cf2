/**
 * The web view's login and cookie auth, over a real daemon's TCP listener (no VM: the daemon starts
 * without the fixture snapshot): nothing is served without the cookie, a code works once, the
 * cookie carries its token's scope, and a cookie alone cannot change anything (CSRF guard).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UI_LIMITS } from '@forkd/protocol';
import { startTestDaemon, type TestDaemon } from '../testing/daemon.js';
import { raw, errorCode, type RawReply } from '../testing/http.js';
import { UiSessions } from './ui-sessions.js';
import { cookieValue } from './ui-auth.js';

let d: TestDaemon;
before(async () => {
  d = await startTestDaemon({ tcp: true, fixture: false, identities: [{ identity: 'alice', scope: 'user' }, { identity: 'reader', scope: 'read-only' }] });
});
after(async () => {
  await d?.stop();
});

const bearer = (who: string) => ({ authorization: `Bearer ${d.tokens[who]}` });
const ui = { 'x-forkd-ui': '1' };

async function code(who: string): Promise<string> {
  const r = await raw(d, { method: 'POST', path: '/v1/ui/codes', headers: { ...bearer(who), 'content-type': 'application/json' }, body: '{}' });
  assert.equal(r.status, 201, r.text);
  const body = r.json as { code: string; login_path: string; expires_at_unix_ms: number };
  assert.equal(body.login_path, `/ui/login#code=${body.code}`);
  assert.ok(body.expires_at_unix_ms > Date.now() && body.expires_at_unix_ms <= Date.now() + UI_LIMITS.codeTtlMs);
  return body.code;
}

function trade(c: string, headers: Record<string, string> = ui): Promise<RawReply> {
  return raw(d, { method: 'POST', path: '/v1/ui/session', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ code: c }) });
}

async function cookieFor(who: string): Promise<string> {
  const r = await trade(await code(who));
  assert.equal(r.status, 204, r.text);
  const set = String(r.headers['set-cookie']);
  return `forkd_ui=${cookieValue(set.split(';')[0])}`;
}

test('without the cookie nothing is served but the login page, which holds no data', async () => {
  for (const p of ['/ui', '/ui/app.js', '/ui/tree-layout.js', '/ui/app.css', '/v1/snapshots/tree', '/v1/sandboxes', '/v1/events', '/v1/events?follow=false']) {
    const r = await raw(d, { method: 'GET', path: p });
    assert.equal(r.status, 401, `${p}: ${r.status}`);
    assert.equal(errorCode(r), 'FORKD_E_UNAUTHORIZED');
  }
  assert.match((await raw(d, { method: 'GET', path: '/ui' })).text, /forkd ui/);
  const login = await raw(d, { method: 'GET', path: '/ui/login' });
  assert.equal(login.status, 200);
  assert.match(String(login.headers['content-security-policy']), /default-src 'none'/);
  assert.equal((await raw(d, { method: 'GET', path: '/ui/login.js' })).status, 200);
  // A forged or stale cookie is refused the same way.
  const forged = await raw(d, { method: 'GET', path: '/v1/sandboxes', headers: { cookie: `forkd_ui=${'ab'.repeat(32)}` } });
  assert.equal(forged.status, 401);
  assert.match(forged.text, /forkd ui/);
});

test('a code is traded once, by POST with the page header, for an HttpOnly SameSite=Strict cookie', async () => {
  const c = await code('alice');
  const noHeader = await trade(c, {});
  assert.equal(noHeader.status, 403, noHeader.text); // another site's form could not set the header
  const crossSite = await trade(c, { ...ui, origin: 'http://evil.example' });
  assert.equal(crossSite.status, 403, crossSite.text);
  const ok = await trade(c);
  assert.equal(ok.status, 204, ok.text);
  const set = String(ok.headers['set-cookie']);
  assert.match(set, /^forkd_ui=[0-9a-f]{64}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  assert.equal((await trade(c)).status, 401, 'a code works once');
  assert.equal((await trade('zz')).status, 400);
  assert.equal(errorCode(await trade('0'.repeat(64))), 'FORKD_E_UNAUTHORIZED');
});

test('the cookie admits the page and the REST routes as its token would, and changes need the header', async () => {
  const cookie = await cookieFor('alice');
  const page = await raw(d, { method: 'GET', path: '/ui', headers: { cookie } });
  assert.equal(page.status, 200);
  assert.match(page.text, /<svg id="tree"/);
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.equal((await raw(d, { method: 'GET', path: '/v1/snapshots/tree', headers: { cookie } })).status, 200);
  // The event stream the page follows takes the cookie too (here its JSON page form).
  const events = await raw(d, { method: 'GET', path: '/v1/events?follow=false', headers: { cookie } });
  assert.equal(events.status, 200, events.text);
  assert.ok(Array.isArray((events.json as { events: unknown[] }).events));
  // A mutating call with the cookie alone is what a cross-site request looks like: refused.
  const kill = await raw(d, { method: 'DELETE', path: '/v1/sandboxes/sb-0123456789abcdef', headers: { cookie } });
  assert.equal(kill.status, 403, kill.text);
  assert.equal(errorCode(kill), 'FORKD_E_FORBIDDEN');
  const killEvil = await raw(d, { method: 'DELETE', path: '/v1/sandboxes/sb-0123456789abcdef', headers: { cookie, ...ui, origin: 'http://evil.example' } });
  assert.equal(killEvil.status, 403);
  const killOk = await raw(d, { method: 'DELETE', path: '/v1/sandboxes/sb-0123456789abcdef', headers: { cookie, ...ui, origin: d.url! } });
  assert.equal(killOk.status, 404, killOk.text); // authorized; there is just no such sandbox
  // The audit log names the identity; no code or session id reaches it or the daemon's log.
  await new Promise((r) => setTimeout(r, 200));
  const audit = await fs.readFile(d.auditPath, 'utf8');
  const sid = cookie.split('=')[1]!;
  assert.ok(!audit.includes(sid) && !d.log().includes(sid), 'session id leaked');
  assert.ok(audit.split('\n').some((l) => l.includes('"caller":"alice"') && l.includes('/v1/snapshots/tree')));
  // Sign out: the cookie is dead.
  const out = await raw(d, { method: 'DELETE', path: '/v1/ui/session', headers: { cookie, ...ui } });
  assert.equal(out.status, 204);
  assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
  assert.equal((await raw(d, { method: 'GET', path: '/ui', headers: { cookie } })).status, 401);
});

test("a read-only token's cookie reads and changes nothing", async () => {
  const cookie = await cookieFor('reader');
  assert.equal((await raw(d, { method: 'GET', path: '/v1/sandboxes', headers: { cookie } })).status, 200);
  const kill = await raw(d, { method: 'DELETE', path: '/v1/sandboxes/sb-0123456789abcdef', headers: { cookie, ...ui } });
  assert.equal(kill.status, 403);
  assert.match(kill.text, /read-only/);
});

test('codes expire; the oldest codes and sessions go past the caps', () => {
  const s = new UiSessions({ codeTtlMs: 1000, sessionTtlMs: 5000, maxCodes: 2, maxSessions: 1 });
  const who = { identity: 'alice', scope: 'user' as const };
  const late = s.issueCode(who, 0);
  assert.throws(() => s.redeem(late.code, 1000), /expired/);
  const [a, b, c] = [s.issueCode(who, 0), s.issueCode(who, 0), s.issueCode(who, 0)];
  assert.throws(() => s.redeem(a.code, 10), /unknown/); // dropped: only two outstanding
  const one = s.redeem(b.code, 10);
  assert.deepEqual(s.caller(one.sessionId, 20), who);
  const two = s.redeem(c.code, 10);
  assert.equal(s.caller(one.sessionId, 20), null); // one session at most: the older is gone
  assert.deepEqual(s.caller(two.sessionId, 4000), who);
  assert.equal(s.caller(two.sessionId, 5011), null);
});

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'cli', 'src', 'index.ts');

test('forkd ui prints a one-time address that carries a code, never the token', async () => {
  const tokenFile = path.join(d.dir, 'alice.token');
  await fs.writeFile(tokenFile, `${d.tokens.alice}\n`, { mode: 0o600 });
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', CLI, '--daemon-url', d.url!, '--daemon-token-file', tokenFile, 'ui', '--no-open', '--json'], { encoding: 'utf8', env: { ...process.env, DISPLAY: '' } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { url: string; opened: boolean };
  assert.equal(out.opened, false);
  assert.ok(!r.stdout.includes(d.tokens.alice!));
  const u = new URL(out.url);
  assert.equal(u.origin, new URL(d.url!).origin);
  assert.equal(u.pathname, '/ui/login');
  assert.match(u.hash, /^#code=[0-9a-f]{64}$/);
  assert.equal((await trade(u.hash.slice('#code='.length))).status, 204);
  // A daemon on a Unix socket only cannot be opened in a browser: said so, with the way to do it.
  const sock = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', CLI, '--daemon-url', `unix:${d.socketPath}`, '--daemon-token-file', tokenFile, 'ui', '--json'], { encoding: 'utf8' });
  assert.notEqual(sock.status, 0);
  assert.match(sock.stdout + sock.stderr, /--bind/);
});
