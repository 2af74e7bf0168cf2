/**
 * The daemon's TCP listener against hostile clients (no VM: the daemon starts without the fixture
 * snapshot). Unauthenticated bodies are never read, connections are capped, the Host must be the
 * listener's own name, and TCP without a token needs an explicit flag.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import os from 'node:os';
import { promises as fs } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTestDaemon, type TestDaemon } from '../testing/daemon.js';
import { raw, errorCode } from '../testing/http.js';
import { HTTP_LIMITS } from './server.js';

const daemons: TestDaemon[] = [];
after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
});
async function daemon(extraArgs: string[] = [], token = true): Promise<TestDaemon> {
  const d = await startTestDaemon({ tcp: true, token, fixture: false, extraArgs });
  daemons.push(d);
  return d;
}

const rssBytes = async (pid: number): Promise<number> => {
  const m = /VmRSS:\s+(\d+) kB/.exec(await fs.readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
};
const portOf = (d: TestDaemon): number => Number(new URL(d.url!).port);

/** A raw connection that sends `head` and then `body`, recording what comes back and when it closed. */
function hostileConnection(port: number, head: string, body?: Buffer): { socket: net.Socket; reply: () => string; closed: Promise<void> } {
  const socket = net.connect({ host: '127.0.0.1', port });
  let got = '';
  socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write(head);
  if (body) socket.write(body);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, reply: () => got, closed };
}

/** An authenticated request from another loopback address (a different peer from the attackers). */
async function authedPing(d: TestDaemon): Promise<{ status: number; ms: number }> {
  const t0 = Date.now();
  const r = await new Promise<number>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: portOf(d), localAddress: '127.0.0.2' });
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m) {
        resolve(Number(m[1]));
        s.destroy();
      }
    });
    s.on('error', reject);
    s.setTimeout(5_000, () => s.destroy(new Error('no answer within 5 s')));
    s.write(`GET /v1/sandboxes HTTP/1.1\r\nHost: 127.0.0.1:${portOf(d)}\r\nAuthorization: Bearer ${d.token}\r\nConnection: close\r\n\r\n`);
  });
  return { status: r, ms: Date.now() - t0 };
}

test('a body sent without a token is answered 401 before it is read, and the connection is closed', async () => {
  const d = await daemon();
  const size = 5 * 1024 * 1024;
  const c = hostileConnection(portOf(d), `POST /v1/sandboxes HTTP/1.1\r\nHost: 127.0.0.1:${portOf(d)}\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
  // The answer comes on the headers alone: not one byte of the body has been sent yet.
  const deadline = Date.now() + 3_000;
  while (!/\r\n\r\n/.test(c.reply()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.match(c.reply(), /^HTTP\/1\.1 401 /, 'no 401 before the body was sent');
  assert.match(c.reply(), /connection: close/i);
  assert.match(c.reply(), /FORKD_E_UNAUTHORIZED/);
  // Whatever is sent afterwards goes nowhere: the server has closed.
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let failed = false;
  c.socket.once('error', () => (failed = true));
  while (sent < size && !failed && !c.socket.destroyed) {
    const ok = c.socket.write(chunk);
    sent += chunk.length;
    if (!ok) await Promise.race([new Promise((r) => c.socket.once('drain', r)), c.closed, new Promise((r) => setTimeout(r, 1_000))]);
    await new Promise((r) => setImmediate(r));
  }
  await Promise.race([c.closed, new Promise((r) => setTimeout(r, 2_000))]);
  assert.ok(c.socket.destroyed || failed, 'the connection stayed open after the 401');
  assert.ok(sent < size, `all ${size} bytes were accepted after the 401`);
});

test('200 unauthenticated connections with large bodies leave the daemon RSS bounded; an authenticated ping is answered', async () => {
  const d = await daemon();
  const pid = d.proc.pid!;
  await authedPing(d); // warm the routes up before measuring
  const before = await rssBytes(pid);
  const body = Buffer.alloc(1024 * 1024, 0x61);
  const head = `POST /v1/sandboxes HTTP/1.1\r\nHost: 127.0.0.1:${portOf(d)}\r\nContent-Type: application/json\r\nContent-Length: ${2 * body.length}\r\n\r\n"`;
  const conns = Array.from({ length: 200 }, () => hostileConnection(portOf(d), head, body));
  await new Promise((r) => setTimeout(r, 3_000));
  const during = await rssBytes(pid);
  const ping = await authedPing(d);
  for (const c of conns) c.socket.destroy();
  const growth = during - before;
  assert.equal(ping.status, 200);
  assert.ok(ping.ms < 2_000, `authenticated ping took ${ping.ms} ms`);
  assert.ok(growth < 64 * 1024 * 1024, `daemon RSS grew by ${Math.round(growth / 1048576)} MiB`);
});

test('connections from one peer are capped, other peers are still served, and headers that never end are timed out', async () => {
  const d = await daemon(['--max-connections-per-peer', '4']);
  const conns = Array.from({ length: 8 }, () => hostileConnection(portOf(d), 'GET /healthz HTTP/1.1\r\n'));
  await new Promise((r) => setTimeout(r, 1_000));
  const open = conns.filter((c) => !c.socket.destroyed).length;
  assert.equal(open, 4, `${open} of 8 half-sent connections from one peer are open`);
  assert.equal((await authedPing(d)).status, 200);
  // Headers that never end are cut off by the headers timeout.
  const t0 = Date.now();
  await Promise.race([Promise.all(conns.map((c) => c.closed)), new Promise((r) => setTimeout(r, HTTP_LIMITS.headersTimeoutMs + HTTP_LIMITS.timeoutCheckIntervalMs + 5_000))]);
  assert.equal(conns.filter((c) => !c.socket.destroyed).length, 0, 'half-sent headers were not timed out');
  assert.ok(Date.now() - t0 >= HTTP_LIMITS.headersTimeoutMs - 2_000, 'closed before the headers timeout');
});

test('a request whose Host is not the listener\'s own name is refused (DNS rebinding); the Unix socket is not checked', async () => {
  const d = await daemon(['--allow-host', 'forkd.internal']);
  const port = portOf(d);
  const auth = { authorization: `Bearer ${d.token}` };
  const rebound = await raw(d, { method: 'GET', path: '/version', headers: { ...auth, host: `rebind.attacker.example:${port}` } });
  assert.equal(rebound.status, 400);
  assert.equal(errorCode(rebound), 'FORKD_E_HOST_NOT_ALLOWED');
  assert.match(rebound.text, /rebind\.attacker\.example/);
  assert.equal((await raw(d, { method: 'GET', path: '/healthz', headers: { host: `rebind.attacker.example:${port}` } })).status, 400);
  assert.equal((await raw(d, { method: 'GET', path: '/version', headers: { ...auth, host: `127.0.0.1:${port + 1}` } })).status, 400, 'another port');
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `forkd.internal:${port}`, `FORKD.internal:${port}`]) {
    assert.equal((await raw(d, { method: 'GET', path: '/version', headers: { ...auth, host } })).status, 200, host);
  }
  assert.equal((await raw(d, { method: 'GET', path: '/version', tcp: false, headers: { ...auth, host: 'anything.example' } })).status, 200);
});

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'cli', 'src', 'index.ts');

test('TCP without a token is refused at start-up on any address, loopback included, unless --insecure-no-token', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fdd-notoken-'));
  try {
    for (const bind of ['127.0.0.1:0', 'localhost:0', '0.0.0.0:0']) {
      const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', CLI, 'serve', '--bind', bind, '--state', path.join(dir, 'state.jsonl'), '--socket', path.join(dir, 's.sock')], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 2, `${bind}: ${r.stderr}`);
      assert.match(r.stderr, /FORKD_E_INVALID_ARGUMENT.*without --token-file.*--insecure-no-token/);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  const d = await daemon(['--insecure-no-token'], false);
  assert.equal((await raw(d, { method: 'GET', path: '/version' })).status, 200);
});
