import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamBacklog } from './stream-backlog.js';

/** A response buffer: what was written and not yet taken. */
function stream(b: StreamBacklog) {
  const s = { buffered: 0, cut: null as string | null, h: null as unknown as ReturnType<StreamBacklog['track']> };
  s.h = b.track(() => s.buffered, (reason) => void (s.cut = reason));
  return { s, write: (n: number) => { s.buffered += n; s.h.update(n); }, take: (n: number) => { s.buffered -= n; } };
}

test('a stream past its own cap is cut', () => {
  const b = new StreamBacklog({ perRequestBytes: 100, totalBytes: 1000, drainTimeoutMs: 60_000 });
  const a = stream(b);
  a.write(60);
  assert.equal(a.s.cut, null);
  a.write(60);
  assert.match(a.s.cut ?? '', /too slowly/);
  a.s.h.release();
  assert.equal(b.heldBytes, 0);
});

test('streams share one budget: the one that finds no room is cut, and released bytes make room again', () => {
  const b = new StreamBacklog({ perRequestBytes: 100, totalBytes: 250, drainTimeoutMs: 60_000 });
  const [x, y, z] = [stream(b), stream(b), stream(b)];
  x.write(90);
  y.write(90);
  z.write(90);
  assert.equal(x.s.cut, null);
  assert.equal(y.s.cut, null);
  assert.match(z.s.cut ?? '', /whole stream budget/);
  z.s.h.release();
  x.take(90);
  x.s.h.drained();
  assert.equal(b.heldBytes, 90);
  const w = stream(b);
  w.write(99);
  assert.equal(w.s.cut, null);
});

test('a client that reads nothing is cut at the deadline; one that keeps reading is not', async () => {
  const b = new StreamBacklog({ perRequestBytes: 1000, totalBytes: 10_000, drainTimeoutMs: 100 });
  const deaf = stream(b);
  const slow = stream(b);
  deaf.write(10);
  slow.write(500);
  const iv = setInterval(() => slow.take(Math.min(20, slow.s.buffered)), 30);
  await new Promise((r) => setTimeout(r, 450));
  clearInterval(iv);
  assert.match(deaf.s.cut ?? '', /read nothing for 100 ms/);
  assert.equal(slow.s.cut, null);
  slow.s.h.release();
  deaf.s.h.release();
});
