/**
 * Webhook deliveries against a real HTTP receiver on loopback: signatures, order, retries with
 * backoff, giving up, a restart resuming pending deliveries from the journal, a hanging receiver
 * not blocking the event log, and URL validation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { EventLog } from './log.js';
import { backoffMs, readWebhookSecret, signBody, validateWebhookConfig, verifySignature, WebhookDelivery, type DeliveryReport } from './webhook.js';

const SECRET = 'test-secret-0123456789';
const FAST = { timeoutMs: 2000, maxAttempts: 4, baseBackoffMs: 20, maxBackoffMs: 200 };
const sb = (i: number) => `sb-${String(i).padStart(16, '0')}`;

interface Got { body: string; headers: http.IncomingHttpHeaders; at: number }

/** A receiver on 127.0.0.1 that answers each request with what `answer` says (a status, or 'hang'). */
async function receiver(answer: (n: number, body: string) => number | 'hang' = () => 200) {
  const got: Got[] = [];
  let n = 0;
  const hung: http.ServerResponse[] = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      got.push({ body, headers: req.headers, at: Date.now() });
      const a = answer(++n, body);
      if (a === 'hang') return void hung.push(res);
      res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    got,
    url: `http://127.0.0.1:${port}/hook`,
    async close() {
      for (const r of hung) r.destroy();
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    },
  };
}

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const tmp = () => fs.mkdtemp(path.join(os.tmpdir(), 'fd-wh-'));

test('every event is POSTed once, in order, with a valid HMAC-SHA256 signature of the body', async () => {
  const dir = await tmp();
  const { log } = await EventLog.open(dir);
  await log.append({ owner: 'alice', kind: 'created', sandbox_id: sb(0) }); // before the webhook: not sent (no history flood)
  const rx = await receiver();
  const wh = new WebhookDelivery(log, { url: rx.url, secret: SECRET }, FAST);
  await wh.start();
  await log.append({ owner: 'alice', kind: 'created', sandbox_id: sb(1) });
  await log.append({ owner: 'bob', kind: 'killed', sandbox_id: sb(1), details: { reason: 'request' } });
  await log.append({ owner: 'alice', kind: 'oom', sandbox_id: sb(2) });
  await until(() => rx.got.length >= 3);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(rx.got.length, 3);
  const evs = rx.got.map((g) => JSON.parse(g.body) as { id: number; kind: string; owner: string });
  assert.deepEqual(evs.map((e) => e.kind), ['created', 'killed', 'oom']);
  assert.deepEqual(evs.map((e) => e.id), [1, 2, 3]);
  for (const g of rx.got) {
    assert.equal(g.headers['content-type'], 'application/json');
    assert.ok(verifySignature(SECRET, g.body, g.headers['x-forkd-signature'] as string), 'signature verifies');
    assert.equal(g.headers['x-forkd-signature'], signBody(SECRET, g.body));
    assert.ok(!verifySignature('another-secret-000000', g.body, g.headers['x-forkd-signature'] as string));
    assert.ok(!verifySignature(SECRET, `${g.body} `, g.headers['x-forkd-signature'] as string), 'a changed body fails');
    assert.equal(g.headers['x-forkd-delivery-attempt'], '1');
  }
  assert.equal(rx.got[1]!.headers['x-forkd-event'], 'killed');
  assert.equal(wh.delivered, 3);
  await wh.stop();
  await log.close();
  await rx.close();
});

test('a failing receiver is retried with growing delays until it answers 2xx; past maxAttempts the event is given up and the next one goes', async () => {
  const dir = await tmp();
  const { log } = await EventLog.open(dir);
  // Event 0: fails twice then succeeds. Event 1: always 500 (given up after 4). Event 2: fine.
  const rx = await receiver((_n, body) => {
    const id = (JSON.parse(body) as { id: number }).id;
    if (id === 0) return rx.got.filter((g) => JSON.parse(g.body).id === 0).length <= 2 ? 503 : 204;
    return id === 1 ? 500 : 200;
  });
  const reports: DeliveryReport[] = [];
  const wh = new WebhookDelivery(log, { url: rx.url, secret: SECRET }, { ...FAST, baseBackoffMs: 100, maxBackoffMs: 1000 });
  wh.onReport = (r) => reports.push(r);
  await wh.start();
  for (const k of ['created', 'paused', 'resumed'] as const) await log.append({ owner: 'alice', kind: k, sandbox_id: sb(1) });
  await until(() => wh.delivered === 2);
  const of = (id: number) => rx.got.filter((g) => JSON.parse(g.body).id === id);
  assert.deepEqual(of(0).map((g) => g.headers['x-forkd-delivery-attempt']), ['1', '2', '3']);
  assert.equal(of(1).length, FAST.maxAttempts);
  assert.equal(of(2).length, 1);
  // Backoff: the gaps between attempts of event 1 are at least 100, 200, 400 ms (a loaded machine only adds).
  const gaps = of(1).slice(1).map((g, i) => g.at - of(1)[i]!.at);
  assert.ok(gaps[0]! >= 95 && gaps[1]! >= 195 && gaps[2]! >= 395, `gaps ${gaps.join(',')}`);
  assert.ok(reports.some((r) => r.event === 1 && r.gaveUp && r.status === 500));
  assert.ok(reports.some((r) => r.event === 0 && r.ok && r.attempt === 3));
  await wh.stop();
  await log.close();
  await rx.close();
});

test('pending deliveries survive a restart: events written while the receiver was down are delivered after reopening', async () => {
  const dir = await tmp();
  let { log } = await EventLog.open(dir);
  let up = false;
  const rx = await receiver(() => (up ? 200 : 503));
  let wh = new WebhookDelivery(log, { url: rx.url, secret: SECRET }, { ...FAST, maxAttempts: 1000 });
  await wh.start();
  await log.append({ owner: 'alice', kind: 'created', sandbox_id: sb(1) });
  await log.append({ owner: 'alice', kind: 'killed', sandbox_id: sb(1) });
  await until(() => rx.got.length >= 2); // being retried
  await wh.stop();
  await log.close();
  assert.equal(wh.delivered, -1, 'nothing delivered yet');

  up = true;
  ({ log } = await EventLog.open(dir));
  wh = new WebhookDelivery(log, { url: rx.url, secret: SECRET }, FAST);
  await wh.start();
  await log.append({ owner: 'alice', kind: 'created', sandbox_id: sb(2) });
  await until(() => wh.delivered === 2);
  const ok = rx.got.slice(-3).map((g) => JSON.parse(g.body) as { id: number; kind: string });
  assert.deepEqual(ok.map((e) => e.id), [0, 1, 2]);
  // And what was delivered is not sent again after another restart.
  await wh.stop();
  await log.close();
  const before = rx.got.length;
  ({ log } = await EventLog.open(dir));
  wh = new WebhookDelivery(log, { url: rx.url, secret: SECRET }, FAST);
  await wh.start();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(rx.got.length, before);
  await wh.stop();
  await log.close();
  await rx.close();
});

test('a receiver that never answers does not hold up the event log (appends, reads and streams go on)', async () => {
  const dir = await tmp();
  const { log } = await EventLog.open(dir);
  const rx = await receiver(() => 'hang');
  const wh = new WebhookDelivery(log, { url: rx.url, secret: SECRET }, { ...FAST, timeoutMs: 60_000 });
  await wh.start();
  const t0 = Date.now();
  for (let i = 0; i < 50; i++) await log.append({ owner: 'alice', kind: 'created', sandbox_id: sb(i) });
  assert.equal((await log.read(-1, {})).length, 50);
  assert.ok(Date.now() - t0 < 5000);
  await until(() => rx.got.length === 1);
  assert.equal(wh.delivered, -1);
  const s0 = Date.now();
  await wh.stop(); // aborts the hanging request at once
  assert.ok(Date.now() - s0 < 1000);
  await log.close();
  await rx.close();
});

test('URL and secret validation: http(s) only, no credentials, loopback unless the operator allows remote hosts', async () => {
  const ok = (url: string, allowRemote = false) => validateWebhookConfig({ url, secret: SECRET, allowRemote });
  assert.equal(ok('http://127.0.0.1:9/x').hostname, '127.0.0.1');
  assert.equal(ok('http://localhost:9/x').hostname, 'localhost');
  assert.equal(ok('http://[::1]:9/x').hostname, '[::1]');
  for (const [url, re] of [['file:///etc/passwd', /only http/], ['ftp://127.0.0.1/', /only http/], ['gopher://127.0.0.1/', /only http/], ['not a url', /not a URL/],
    ['http://user:pw@127.0.0.1/', /credentials/], ['http://10.0.0.1/', /not loopback.*--webhook-allow-remote/], ['https://example.com/hook', /not loopback/],
    ['http://127.0.0.1.nip.io/', /not loopback/], [`http://127.0.0.1/${'a'.repeat(3000)}`, /longer/]] as const) {
    assert.throws(() => ok(url), (e: Error & { code?: string }) => e.code === 'FORKD_E_INVALID_ARGUMENT' && re.test(e.message), url);
  }
  assert.equal(ok('https://example.com/hook', true).hostname, 'example.com');
  assert.throws(() => validateWebhookConfig({ url: 'http://127.0.0.1/', secret: 'short' }), /secret must be/);
  const dir = await tmp();
  const f = path.join(dir, 'secret');
  await fs.writeFile(f, `${SECRET}\n`, { mode: 0o644 });
  await fs.chmod(f, 0o644);
  await assert.rejects(readWebhookSecret(f), /chmod 600/);
  await fs.chmod(f, 0o600);
  assert.equal(await readWebhookSecret(f), SECRET);
});

test('backoff doubles from the base, is capped, and jitters by at most 20%', () => {
  const l = { baseBackoffMs: 1000, maxBackoffMs: 5000 };
  assert.deepEqual([1, 2, 3, 4, 5, 10].map((n) => backoffMs(n, l, () => 0)), [1000, 2000, 4000, 5000, 5000, 5000]);
  assert.equal(backoffMs(2, l, () => 0.999), 2400 - 0);
});

test('events that aged out of retention before delivery are reported skipped, not retried forever', async () => {
  const dir = await tmp();
  let t = 1_000_000;
  let { log } = await EventLog.open(dir, { retentionMs: 60_000, now: () => t });
  const rx = await receiver(() => 503);
  let wh = new WebhookDelivery(log, { url: rx.url, secret: SECRET }, { ...FAST, maxAttempts: 1000 });
  await wh.start();
  await log.append({ owner: 'alice', kind: 'created', sandbox_id: sb(1) });
  await log.append({ owner: 'alice', kind: 'killed', sandbox_id: sb(1) });
  await until(() => rx.got.length >= 1);
  await wh.stop();
  await log.close();
  t += 120_000; // both events are past the window now
  ({ log } = await EventLog.open(dir, { retentionMs: 60_000, now: () => t }));
  wh = new WebhookDelivery(log, { url: rx.url, secret: SECRET }, FAST);
  const skipped: Array<[number, number]> = [];
  wh.onSkipped = (a, b) => skipped.push([a, b]);
  const before = rx.got.length;
  await wh.start();
  await until(() => wh.delivered === 1);
  assert.deepEqual(skipped, [[0, 1]]);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(rx.got.length, before, 'nothing old was sent');
  await wh.stop();
  await log.close();
  await rx.close();
});

test('an event numbered but not yet on disk is waited for, never skipped (a slow fsync)', async () => {
  const dir = await tmp();
  let release: () => void = () => undefined;
  let slow = false;
  const { log } = await EventLog.open(dir, { datasync: async (fh) => { if (slow) await new Promise<void>((r) => (release = r)); await fh.datasync(); } });
  const rx = await receiver();
  const wh = new WebhookDelivery(log, { url: rx.url, secret: SECRET }, FAST);
  await wh.start();
  await log.append({ owner: 'alice', kind: 'created', sandbox_id: sb(1) });
  await until(() => wh.delivered === 0);
  slow = true;
  const pending = log.append({ owner: 'alice', kind: 'killed', sandbox_id: sb(1) }); // numbered 1, held before disk
  await new Promise((r) => setTimeout(r, 50));
  slow = false;
  const queued = log.append({ owner: 'alice', kind: 'created', sandbox_id: sb(2) }); // queued behind it
  // Poke the loop while event 1 is numbered but not durable (what a new event's wake-up does).
  (wh as unknown as { wake: (() => void) | null }).wake?.();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(wh.delivered, 0, 'nothing skipped while event 1 is not on disk');
  release();
  await pending;
  await queued;
  await until(() => wh.delivered === 2);
  assert.deepEqual(rx.got.map((g) => (JSON.parse(g.body) as { id: number }).id), [0, 1, 2]);
  await wh.stop();
  await log.close();
  await rx.close();
});
