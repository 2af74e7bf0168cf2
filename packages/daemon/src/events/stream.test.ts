import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { EventLog, type EventFilter } from './log.js';
import { lastEventId, streamEvents } from './stream.js';

const sb = (i: number) => `sb-${String(i).padStart(16, '0')}`;

async function server(log: EventLog, filter: EventFilter = {}, limits = { maxBacklogBytes: 1 << 20, heartbeatMs: 50 }) {
  const srv = http.createServer((req, res) => {
    const since = new URL(req.url!, 'http://x').searchParams.get('since');
    streamEvents(res, log, filter, lastEventId(req.headers['last-event-id']) ?? (since === null ? undefined : Number(since)), limits);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, port: (srv.address() as net.AddressInfo).port };
}

/** Reads SSE frames until `until` says stop; returns the parsed frames and the raw text. */
function readStream(port: number, o: { path?: string; headers?: Record<string, string>; until: (frames: Array<{ id?: string; event?: string; data?: string }>) => boolean }): Promise<{ frames: Array<{ id?: string; event?: string; data?: string }>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: o.path ?? '/', headers: o.headers ?? {} }, (res) => {
      assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
      let text = '';
      const frames: Array<{ id?: string; event?: string; data?: string }> = [];
      res.setEncoding('utf8');
      const done = () => {
        req.destroy();
        resolve({ frames, text });
      };
      res.on('data', (c: string) => {
        text += c;
        let i;
        while ((i = text.indexOf('\n\n')) >= 0) {
          const block = text.slice(0, i);
          text = text.slice(i + 2);
          const f: Record<string, string> = {};
          for (const line of block.split('\n')) {
            const m = /^(id|event|data): (.*)$/.exec(line);
            if (m) f[m[1]!] = m[2]!;
            else if (line.startsWith(':')) f.comment = line;
          }
          frames.push(f);
          if (o.until(frames)) return done();
        }
      });
      res.on('end', done);
    });
    req.on('error', reject);
  });
}

const events = (frames: Array<{ data?: string; event?: string }>) => frames.filter((f) => f.data && f.event !== 'error').map((f) => JSON.parse(f.data!) as { id: number; kind: string });

test('a stream catches up from an offset, then follows live events, with heartbeats', async () => {
  const { log } = await EventLog.open(await fs.mkdtemp(path.join(os.tmpdir(), 'fe-')));
  for (let i = 0; i < 3; i++) await log.append({ owner: 'a', kind: 'created', sandbox_id: sb(i) });
  const { srv, port } = await server(log);
  const got = readStream(port, { path: '/?since=0', until: (f) => events(f).length >= 3 && f.some((x) => 'comment' in x && (x as { comment: string }).comment === ': ping') });
  await new Promise((r) => setTimeout(r, 120));
  await log.append({ owner: 'a', kind: 'killed', sandbox_id: sb(0), details: { reason: 'request' } });
  const { frames } = await got;
  assert.deepEqual(events(frames).map((e) => e.id), [1, 2, 3]);
  // Last-Event-ID wins over since (a reconnecting EventSource sends it).
  const again = await readStream(port, { path: '/?since=0', headers: { 'last-event-id': '2' }, until: (f) => events(f).length >= 1 });
  assert.deepEqual(events(again.frames).map((e) => e.id), [3]);
  assert.equal(events(again.frames)[0]!.kind, 'killed');
  srv.close();
  await log.close();
});

test('without an offset a stream shows only new events; filters apply to catch-up and live alike', async () => {
  const { log } = await EventLog.open(await fs.mkdtemp(path.join(os.tmpdir(), 'fe-')));
  await log.append({ owner: 'a', kind: 'created', sandbox_id: sb(1) });
  const { srv, port } = await server(log, { visible: (o) => o === 'b' });
  const got = readStream(port, { until: (f) => events(f).length >= 1 });
  await new Promise((r) => setTimeout(r, 100));
  await log.append({ owner: 'a', kind: 'created', sandbox_id: sb(2) });
  await log.append({ owner: 'b', kind: 'created', sandbox_id: sb(3) });
  const { frames } = await got;
  assert.deepEqual(events(frames).map((e) => e.id), [2]);
  srv.close();
  await log.close();
});

test('a client that reads nothing is cut with a final error event once its backlog passes the cap; daemon memory stays bounded', async () => {
  const { log } = await EventLog.open(await fs.mkdtemp(path.join(os.tmpdir(), 'fe-')));
  const { srv, port } = await server(log, {}, { maxBacklogBytes: 64 * 1024, heartbeatMs: 60_000 });
  let ended = false;
  // A socket with a tiny receive window that never reads.
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.pause();
  sock.write('GET /?since=-1 HTTP/1.1\r\nHost: x\r\n\r\n');
  const closed = new Promise<void>((r) => srv.once('connection', (c: net.Socket) => c.once('close', () => { ended = true; r(); })));
  await new Promise((r) => setTimeout(r, 100));
  const big = 'x'.repeat(3000);
  for (let i = 0; i < 2000 && !ended; i += 50) {
    for (let j = i; j < i + 49; j++) log.emit({ owner: 'a', kind: 'created', sandbox_id: sb(j), details: { big } });
    await log.append({ owner: 'a', kind: 'created', sandbox_id: sb(i + 49), details: { big } });
  }
  // Now read what arrived: the last frame is the error event.
  sock.resume();
  let text = '';
  sock.on('data', (c: Buffer) => (text += c.toString('utf8')));
  await new Promise<void>((r) => sock.once('end', () => r()));
  await closed.catch(() => undefined);
  assert.match(text, /event: error\ndata: \{"code":"FORKD_E_RATE_LIMITED"/);
  const resume = Number(/"resume_since":(\d+)/.exec(text)![1]);
  assert.ok(resume > 0 && resume < 2000, `resume_since ${resume}`);
  sock.destroy();
  srv.close();
  await log.close();
});

test('ending the streams (daemon stop) sends an error event naming where to resume', async () => {
  const { log } = await EventLog.open(await fs.mkdtemp(path.join(os.tmpdir(), 'fe-')));
  await log.append({ owner: 'a', kind: 'created', sandbox_id: sb(1) });
  const { srv, port } = await server(log);
  const got = readStream(port, { path: '/?since=-1', until: (f) => f.some((x) => x.event === 'error') });
  await new Promise((r) => setTimeout(r, 100));
  log.endStreams();
  const { frames } = await got;
  const err = JSON.parse(frames.find((f) => f.event === 'error')!.data!) as { code: string; resume_since: number };
  assert.equal(err.code, 'FORKD_E_UNAVAILABLE');
  assert.equal(err.resume_since, 0);
  srv.close();
  await log.close();
});

test('Last-Event-ID parsing refuses junk', () => {
  assert.equal(lastEventId('17'), 17);
  assert.equal(lastEventId(' 3 '), 3);
  assert.equal(lastEventId('abc'), undefined);
  assert.equal(lastEventId('1e9'), undefined);
  assert.equal(lastEventId(undefined), undefined);
});
