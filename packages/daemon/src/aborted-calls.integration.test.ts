/**
 * Clients that go away mid-call (issue 9, review L1): downloads, uploads and streamed execs they
 * abort must give back the sandbox's call slot at once. More aborts than the per-sandbox call cap
 * (64), then an ordinary call on the same sandbox still answers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';
import { raw } from './testing/http.js';

const ABORTS = 70;
const BATCH = 10;

let d: TestDaemon;
let id = '';

before(async () => {
  d = await startTestDaemon();
  const r = await raw(d, { method: 'POST', path: '/v1/sandboxes', body: JSON.stringify({ snapshot_tag: d.tag, n: 1 }), headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 201, r.text);
  id = (r.json as Array<{ id: string }>)[0]!.id;
});
after(async () => {
  await d?.stop();
});

/** Sends a request and destroys the connection once the first response bytes arrive (or once `abortAfterBody` is written). */
function abortedRequest(o: { method: string; path: string; headers?: Record<string, string>; body?: Buffer; declaredLength?: number }): Promise<void> {
  return new Promise((resolve) => {
    const headers = { ...(o.headers ?? {}), ...(o.declaredLength !== undefined ? { 'content-length': String(o.declaredLength) } : {}) };
    const req = http.request({ agent: false, socketPath: d.socketPath, method: o.method, path: o.path, headers }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
      res.once('end', () => resolve());
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    if (o.declaredLength !== undefined) {
      // Only part of the declared body, then hang up.
      req.write(o.body ?? Buffer.alloc(0), () => setTimeout(() => req.destroy(), 200));
    } else {
      req.end(o.body);
    }
  });
}

async function inBatches(n: number, one: () => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i += BATCH) await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, one));
}

async function pingStatus(): Promise<number> {
  // A moment for the daemon to notice the last hang-ups.
  await new Promise((r) => setTimeout(r, 500));
  const r = await raw(d, { method: 'POST', path: `/v1/sandboxes/${id}/ping` });
  assert.equal(r.status, 200, r.text);
  return r.status;
}

test('downloads aborted after the first bytes give back their call slots', async () => {
  const made = await raw(d, { method: 'POST', path: `/v1/sandboxes/${id}/exec`, body: JSON.stringify({ cmd: 'head -c 8388608 /dev/urandom > /tmp/big' }), headers: { 'content-type': 'application/json' } });
  assert.equal(made.status, 200, made.text);
  await inBatches(ABORTS, () => abortedRequest({ method: 'GET', path: `/v1/sandboxes/${id}/files?path=/tmp/big` }));
  await pingStatus();
  // And a whole download still arrives intact.
  const whole = await raw(d, { method: 'GET', path: `/v1/sandboxes/${id}/files?path=/tmp/big` });
  assert.equal(whole.status, 200);
  assert.equal(whole.headers['x-forkd-file-size'], '8388608');
});

test('uploads aborted mid-body give back their call slots and leave no file', async () => {
  await inBatches(ABORTS, () => abortedRequest({
    method: 'PUT', path: `/v1/sandboxes/${id}/files?path=/tmp/up/half`, headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.alloc(256 * 1024, 7), declaredLength: 8 * 1024 * 1024,
  }));
  await pingStatus();
  const left = await raw(d, { method: 'GET', path: `/v1/sandboxes/${id}/files/list?path=/tmp&depth=2` });
  if (left.status === 200) assert.doesNotMatch(left.text, /half/, 'an aborted upload left a file behind');
});

test('streamed execs aborted after the first line give back their call slots', async () => {
  await inBatches(ABORTS, () => abortedRequest({
    method: 'POST', path: `/v1/sandboxes/${id}/exec`, headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ cmd: 'echo started; sleep 120', stream: true, timeout_secs: 150 })),
  }));
  await pingStatus();
});
