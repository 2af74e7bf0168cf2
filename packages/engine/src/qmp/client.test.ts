import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { QmpClient, type QmpEvent } from './client.js';

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n';
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-qmp-'));
after(() => fs.rm(tmp, { recursive: true, force: true }));
let n = 0;

type Handler = (msg: { execute: string; arguments?: unknown; id: number }, sock: net.Socket) => void;

/** A fake QEMU monitor: greets, acks qmp_capabilities, hands every other command to `handler`. */
async function fakeQmp(handler: Handler, opts: { greet?: boolean } = {}): Promise<{ path: string; server: net.Server; sockets: net.Socket[] }> {
  const p = path.join(tmp, `q${n++}.sock`);
  const sockets: net.Socket[] = [];
  const server = net.createServer((sock) => {
    sockets.push(sock);
    if (opts.greet !== false) sock.write(GREETING);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, i)) as { execute: string; id: number };
        buf = buf.slice(i + 1);
        if (msg.execute === 'qmp_capabilities') sock.write(`{"return": {}, "id": ${msg.id}}\r\n`);
        else handler(msg, sock);
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(p, r));
  after(() => server.close());
  return { path: p, server, sockets };
}

function isCode(code: string) {
  return (e: unknown) => e instanceof ForkdError && e.code === code;
}

test('connect retries until the socket exists, then negotiates capabilities', async () => {
  const p = path.join(tmp, 'late.sock');
  const t0 = Date.now();
  const clientP = QmpClient.connect(p, { timeoutMs: 3000 });
  await new Promise((r) => setTimeout(r, 150));
  const server = net.createServer((sock) => {
    sock.write(GREETING);
    sock.on('data', (d) => {
      const msg = JSON.parse(d.toString()) as { id: number };
      sock.write(`{"return": {}, "id": ${msg.id}}\r\n`);
    });
  });
  await new Promise<void>((r) => server.listen(p, r));
  const c = await clientP;
  assert.ok(Date.now() - t0 >= 150);
  assert.equal(c.greeting?.QMP.version?.qemu?.major, 7);
  c.close();
  server.close();
});

test('connect times out when nothing listens', async () => {
  await assert.rejects(QmpClient.connect(path.join(tmp, 'never.sock'), { timeoutMs: 100 }), isCode('FORKD_E_TIMEOUT'));
});

test('connect times out when the server never greets', async () => {
  const s = await fakeQmp(() => undefined, { greet: false });
  await assert.rejects(QmpClient.connect(s.path, { timeoutMs: 150 }), isCode('FORKD_E_TIMEOUT'));
});

test('replies are matched by id even out of order, with events interleaved in split/coalesced chunks', async () => {
  const held: Array<{ id: number; execute: string }> = [];
  const s = await fakeQmp((msg, sock) => {
    held.push(msg);
    if (held.length < 3) return;
    // Answer in reverse order, with events between, as one byte stream cut at awkward places.
    const stream =
      `{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n` +
      held.reverse().map((m) => `{"event": "RESUME"}\r\n{"return": {"cmd": "${m.execute}"}, "id": ${m.id}}\r\n`).join('');
    const buf = Buffer.from(stream);
    let i = 0;
    const step = () => {
      if (i >= buf.length) return;
      const len = 1 + ((i * 7) % 13);
      sock.write(buf.subarray(i, i + len));
      i += len;
      setImmediate(step);
    };
    step();
  });
  const c = await QmpClient.connect(s.path);
  const events: QmpEvent[] = [];
  c.on('event', (ev: QmpEvent) => events.push(ev));
  const stopP = c.waitForEvent('STOP');
  const [a, b, d] = await Promise.all([c.execute('a'), c.execute('b', { x: 1 }), c.execute('d')]);
  assert.deepEqual([a, b, d], [{ cmd: 'a' }, { cmd: 'b' }, { cmd: 'd' }]);
  assert.equal((await stopP).timestamp?.seconds, 1);
  assert.equal(events.filter((e) => e.event === 'RESUME').length, 3);
  c.close();
});

test('arguments are sent; QMP errors reject with class and desc', async () => {
  let seen: unknown;
  const s = await fakeQmp((msg, sock) => {
    seen = msg.arguments;
    sock.write(`{"id": ${msg.id}, "error": {"class": "GenericError", "desc": "boom"}}\n`);
  });
  const c = await QmpClient.connect(s.path);
  await assert.rejects(c.execute('migrate-incoming', { uri: 'exec:cat x' }), (e: unknown) => {
    assert.ok(e instanceof ForkdError);
    assert.match(e.message, /GenericError: boom/);
    assert.equal(e.details?.qmp_class, 'GenericError');
    assert.equal(e.details?.qmp_desc, 'boom');
    return true;
  });
  assert.deepEqual(seen, { uri: 'exec:cat x' });
  c.close();
});

test('a command without reply times out; a late reply is ignored and the client still works', async () => {
  let first = true;
  const s = await fakeQmp((msg, sock) => {
    if (first) {
      first = false;
      setTimeout(() => sock.write(`{"return": "late", "id": ${msg.id}}\n`), 150);
      return;
    }
    sock.write(`{"return": "ok", "id": ${msg.id}}\n`);
  });
  const c = await QmpClient.connect(s.path);
  await assert.rejects(c.execute('slow', undefined, { timeoutMs: 50 }), isCode('FORKD_E_TIMEOUT'));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await c.execute('fast'), 'ok');
  c.close();
});

test('connection loss rejects every pending command and waiters; later calls reject at once', async () => {
  const s = await fakeQmp((_msg, sock) => {
    setTimeout(() => sock.destroy(), 30);
  });
  const c = await QmpClient.connect(s.path);
  const closed = new Promise((r) => c.once('close', r));
  const ev = c.waitForEvent('SHUTDOWN', undefined, 5000);
  const results = await Promise.allSettled([c.execute('x'), c.execute('y'), ev]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.ok(isCode('FORKD_E_UNAVAILABLE')((r as PromiseRejectedResult).reason));
  }
  await closed;
  assert.equal(c.closed, true);
  await assert.rejects(c.execute('z'), isCode('FORKD_E_UNAVAILABLE'));
});

test('waitForEvent honours the predicate and its timeout', async () => {
  const s = await fakeQmp((msg, sock) => {
    sock.write(`{"event": "JOB", "data": {"id": "a"}}\n{"event": "JOB", "data": {"id": "b"}}\n{"return": {}, "id": ${msg.id}}\n`);
  });
  const c = await QmpClient.connect(s.path);
  const evP = c.waitForEvent('JOB', (e) => e.data?.id === 'b', 1000);
  await c.execute('go');
  assert.equal((await evP).data?.id, 'b');
  await assert.rejects(c.waitForEvent('NEVER', undefined, 30), isCode('FORKD_E_TIMEOUT'));
  c.close();
});

test('an over-long line closes the connection instead of buffering without bound', async () => {
  const s = await fakeQmp((_msg, sock) => {
    sock.write('{"return": "' + 'x'.repeat(5000));
  });
  const c = await QmpClient.connect(s.path, { maxLineBytes: 1024 });
  await assert.rejects(c.execute('big'), (e: unknown) => e instanceof ForkdError && /longer than 1024/.test(e.message));
  assert.equal(c.closed, true);
});

test('garbage from the server closes the connection with a protocol error', async () => {
  const s = await fakeQmp((_msg, sock) => {
    sock.write('not json\n');
  });
  const c = await QmpClient.connect(s.path);
  await assert.rejects(c.execute('x'), (e: unknown) => e instanceof ForkdError && /not a JSON object/.test(e.message));
});
