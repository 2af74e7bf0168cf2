/**
 * The idle pause on a real child (issue 11 §1): an idle child is stopped and costs no host CPU; the
 * next call wakes it with its clock right; a background command keeps it running; a connection to
 * an exposed port wakes it; a capture of a stopped child works.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Engine } from '../engine.js';
import type { Sandbox } from './sandbox.js';
import { processCpuMs } from './host-stats.js';
import { ensureFixtureSnapshot, testEngine, waitFor } from '../testing/fixture.js';

const AFTER_MS = 2000;
const engine = new Engine({ accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto', idlePause: { afterMs: AFTER_MS } });
let tag = '';
let sb: Sandbox;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const paused = () => sb.idlePause?.paused === true;

before(async () => {
  tag = await ensureFixtureSnapshot(testEngine());
  sb = (await engine.spawn({ tag, n: 1 }))[0]!;
});
after(async () => {
  await sb?.kill();
  await engine.removeSnapshot('itest-idle-branch').catch(() => undefined);
});

test('an idle child is stopped, costs no CPU, and its next call finds the clock right', async () => {
  assert.ok(sb.idlePause, 'the idle pause is on for this child');
  assert.ok(await waitFor(paused, 60_000), 'stopped after the idle time');
  const c0 = await processCpuMs(sb.pid);
  await sleep(8000);
  const used = (await processCpuMs(sb.pid)) - c0;
  assert.ok(used <= 20, `a stopped child used ${used} ms of CPU in 8 s`);
  // The guest stood still for 8 s or more: without the clock call it would be that late.
  const t0 = Date.now();
  const r = await sb.eval('python', 'import time; time.time() * 1000', { timeoutMs: 25_000 });
  const t1 = Date.now();
  assert.equal(r.ok, true, JSON.stringify(r.error));
  const guestMs = Number(r.repr);
  assert.ok(guestMs >= t0 - 2000 && guestMs <= t1 + 2000, `guest clock ${guestMs} vs host ${t0}..${t1}`);
  const st = sb.idlePause!;
  assert.equal(st.paused, false);
  assert.ok(st.wakes >= 1 && st.pauses >= 1, JSON.stringify(st));
  assert.ok(st.paused_ms >= 8000, JSON.stringify(st));
});

test('a command running in the background keeps the child running', async () => {
  const started = await sb.commands.start({ shell: 'sleep 600' });
  assert.ok('handle' in started, JSON.stringify(started));
  await sleep(AFTER_MS * 4);
  assert.equal(paused(), false, 'not stopped while its command runs');
  await sb.commands.kill(started.handle, 'SIGKILL');
  assert.ok(await waitFor(paused, 60_000), 'stopped once the command ended');
});

test('a connection to an exposed port wakes a stopped child', async (t) => {
  if (!sb.netns) return t.skip('no network namespace (not root)');
  // A server inside the interpreter, not a command: nothing the agent tracks keeps the child awake.
  const srv = await sb.eval('python', [
    'import http.server, threading',
    'class _H(http.server.BaseHTTPRequestHandler):',
    '    def do_GET(self):',
    '        self.send_response(200); self.end_headers(); self.wfile.write(b"awake")',
    '    def log_message(self, *a): pass',
    '_srv = http.server.HTTPServer(("0.0.0.0", 8123), _H)',
    'threading.Thread(target=_srv.serve_forever, daemon=True).start()',
  ].join('\n'), { timeoutMs: 25_000 });
  assert.equal(srv.ok, true, JSON.stringify(srv.error));
  const port = await sb.exposePort(8123);
  assert.ok(await waitFor(paused, 60_000), 'stopped with its server idle');
  const wakes = sb.idlePause!.wakes;
  const body = await new Promise<string>((resolve, reject) => {
    const c = net.connect(port.port, port.host, () => c.end('GET / HTTP/1.0\r\n\r\n'));
    let out = '';
    c.setEncoding('utf8');
    c.on('data', (d) => (out += d));
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.setTimeout(30_000, () => c.destroy(new Error('no answer in 30 s')));
  });
  assert.match(body, /awake/);
  assert.ok(sb.idlePause!.wakes > wakes, 'the connection woke it');
});

test('a stopped child can be captured (the capture wakes it)', async () => {
  assert.ok(await waitFor(paused, 60_000));
  const r = await engine.branch(sb, { tag: 'itest-idle-branch', mode: 'full' });
  assert.equal(r.snapshot.manifest.tag, 'itest-idle-branch');
  const ping = await sb.ping({ timeoutMs: 10_000 });
  assert.equal(ping.pong, true);
});
