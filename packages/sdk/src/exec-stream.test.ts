/** A streamed exec's client side holds bounded memory whatever the stream sends (review S2). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LIMITS } from '@forkd/protocol';
import { Controller } from './controller.js';

/** A stand-in daemon answering every exec with what `send` writes. */
async function stub(send: (res: http.ServerResponse) => void): Promise<{ url: string; close: () => void }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      send(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => { server.closeAllConnections(); server.close(); } };
}

const exit = `${JSON.stringify({ type: 'exit', exit_code: 0, signal: null, error: null, timed_out: false, duration_ms: 1 })}\n`;

test('the result keeps the first LIMITS.maxOutputBytes of each stream; callbacks see everything', async () => {
  const chunk = 'x'.repeat(LIMITS.streamChunkBytes);
  const chunks = Math.ceil(LIMITS.maxOutputBytes / chunk.length) + 16;
  const s = await stub((res) => {
    for (let i = 0; i < chunks; i++) res.write(`${JSON.stringify({ type: 'stdout', data: chunk })}\n`);
    res.end(`${JSON.stringify({ type: 'stderr', data: 'e' })}\n${exit}`);
  });
  try {
    let seen = 0;
    const r = await new Controller({ url: s.url }).execStream('sb-0123456789abcdef', { cmd: 'yes' }, { onStdout: (d) => void (seen += d.length) });
    assert.equal(seen, chunks * chunk.length);
    assert.equal(r.stdout.length, LIMITS.maxOutputBytes);
    assert.equal(r.stdout_truncated, true);
    assert.equal(r.stderr, 'e');
    assert.equal(r.stderr_truncated, false);
  } finally {
    s.close();
  }
});

test('a line longer than LIMITS.maxStreamLineBytes is refused instead of buffered', async () => {
  const s = await stub((res) => {
    const piece = 'y'.repeat(256 * 1024);
    res.write('{"type":"stdout","data":"');
    const more = (n: number): void => {
      if (n === 0 || res.destroyed) return void res.end();
      res.write(piece, () => more(n - 1));
    };
    more(64); // 16 MiB without a newline
  });
  try {
    await assert.rejects(new Controller({ url: s.url }).execStream('sb-0123456789abcdef', { cmd: 'yes' }), (e: { code?: string }) => e.code === 'FORKD_E_PAYLOAD_TOO_LARGE');
  } finally {
    s.close();
  }
});
