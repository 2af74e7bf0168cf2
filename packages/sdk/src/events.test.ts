import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser } from './events.js';

test('SSE frames: split across chunks, CRLF, comments dropped, multi-line data joined', () => {
  const p = new SseParser();
  assert.deepEqual(p.push(': heartbeat\n\nid: 3\nevent: ev'), []);
  assert.deepEqual(p.push('ent\r\ndata: {"a":\ndata: 1}\r\n\r\n'), [{ id: '3', event: 'event', data: '{"a":\n1}' }]);
  assert.deepEqual(p.push('event: error\ndata:{"code":"X"}\n\n:only a comment\n\n'), [{ event: 'error', data: '{"code":"X"}' }]);
});

test('SSE frames: a frame that never ends is refused past the cap, not buffered without bound', () => {
  const p = new SseParser();
  assert.throws(() => { for (let i = 0; i < 2000; i++) p.push(`data: ${'x'.repeat(1000)}\n`); }, /longer than/);
});

test('SSE comments reach onComment (the daemon opens with where the stream starts)', () => {
  const p = new SseParser();
  const seen: string[] = [];
  p.onComment = (t) => seen.push(t);
  p.push(': forkd events from 42\nretry: 2000\n\n: ping\n\n');
  assert.deepEqual(seen, ['forkd events from 42', 'ping']);
});
