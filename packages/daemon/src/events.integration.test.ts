/**
 * Lifecycle events and metrics against a real daemon and real VMs (issue 10 §4): one user follows
 * the SSE stream through the SDK while it spawns, forks, pauses (workspace suspend), resumes and
 * lets the fork child time out; the events arrive in order with the right reasons; another user sees none of them and an
 * admin sees all; a restarted daemon still serves them with the same offsets and numbering goes on;
 * metrics show CPU and memory from the guest and the host; the operator's webhook (a receiver on
 * loopback) gets every event signed, in order, across the restart. Few VMs: one spawn, one fork
 * child, one resume.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { verifySignature } from './events/webhook.js';
import { Controller, type ForkdEvent } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';

let d: TestDaemon;
const ctl = (who: string) => new Controller({ socketPath: d.socketPath, token: d.tokens[who]!, timeoutMs: 600_000 });
const SECRET = 'integration-webhook-secret-0123';
/** What the operator's webhook receiver on loopback got: body, signature valid. */
const hooked: Array<{ event: ForkdEvent; signed: boolean }> = [];
let receiver: http.Server;
before(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      hooked.push({ event: JSON.parse(body) as ForkdEvent, signed: verifySignature(SECRET, body, req.headers['x-forkd-signature'] as string | undefined) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const secretFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'fd-whs-')), 'secret');
  await fs.writeFile(secretFile, SECRET, { mode: 0o600 });
  d = await startTestDaemon({
    identities: [{ identity: 'root', scope: 'admin' }, { identity: 'alice', scope: 'user' }, { identity: 'bob', scope: 'user' }],
    extraArgs: ['--webhook', `http://127.0.0.1:${(receiver.address() as net.AddressInfo).port}/forkd`, '--webhook-secret-file', secretFile],
  });
  await ctl('root').shareSnapshot(d.tag);
});
after(async () => {
  for (const ac of open) ac.abort();
  await d?.stop();
  receiver?.closeAllConnections();
  receiver?.close();
});

/** Streams still open (a failed test leaves them: after() aborts them before the daemon goes). */
const open: AbortController[] = [];
/** Collects a stream's events in the background until stopped. */
function follow(c: Controller, opts: Parameters<Controller['events']>[0] = {}) {
  const ac = new AbortController();
  open.push(ac);
  const got: ForkdEvent[] = [];
  const waker: { wake: (() => void) | null } = { wake: null };
  const done = (async () => {
    try {
      for await (const e of c.events({ ...opts, signal: ac.signal })) {
        got.push(e);
        waker.wake?.();
      }
    } catch (e) {
      if (!ac.signal.aborted) throw e;
    }
  })();
  return {
    got,
    /** Waits until pred holds for the events so far. */
    async until(pred: (evs: ForkdEvent[]) => boolean, ms = 120_000): Promise<void> {
      const end = Date.now() + ms;
      while (!pred(got)) {
        if (Date.now() > end) throw new Error(`timed out; events so far: ${got.map((e) => `${e.id}:${e.kind}:${e.sandbox_id}`).join(' ')}`);
        await new Promise<void>((r) => {
          waker.wake = r;
          setTimeout(r, 500);
        });
      }
    },
    async stop() {
      ac.abort();
      await done;
    },
  };
}

test('spawn, fork, pause, resume, time out: the owner sees the events in order with reasons; another user sees none; the admin sees all; a restart keeps them; metrics have CPU and memory', async () => {
  const alice = ctl('alice');
  const start = (await alice.eventsPage()).next_since;
  const aliceStream = follow(alice);
  const bobStream = follow(ctl('bob'));
  // A stream opened before anything happened: give it a moment to subscribe.
  await new Promise((r) => setTimeout(r, 500));

  const [sb] = await alice.spawnSandboxes({ snapshot_tag: d.tag, timeout_ms: 600_000 });
  const id = sb!.id;
  const sbStream = follow(alice, { sandboxIds: [id], since: start });

  // Metrics: make the guest busy, then read both sides.
  await alice.exec(id, { args: ['python3', '-c', 'import time\nt=time.time()\nwhile time.time()-t<1.5: pass'] });
  const m = await alice.getSandboxMetrics(id);
  const s = m.samples.at(-1)!;
  assert.ok(s.cpu_count >= 1 && s.mem_total > 64 * 1024 * 1024 && s.mem_used > 0 && s.mem_used < s.mem_total, JSON.stringify(s));
  assert.ok(s.disk_total > 0 && s.disk_used > 0, JSON.stringify(s));
  assert.ok(s.cpu_used_pct > 0, `guest cpu ${s.cpu_used_pct}`);
  assert.ok(s.host.cpu_pct > 0 && s.host.rss_bytes > 16 * 1024 * 1024, JSON.stringify(s.host));
  await assert.rejects(ctl('bob').getSandboxMetrics(id), /FORKD_E_SANDBOX_NOT_FOUND|no sandbox/);

  const fork = await alice.forkSandbox(id, { count: 1 });
  const child = fork.sandboxes[0]!.id;
  await alice.createWorkspace({ name: `ev-${id.slice(3, 11)}`, sandbox_id: id });
  await alice.suspendWorkspace(`ev-${id.slice(3, 11)}`);
  await alice.resumeWorkspace(`ev-${id.slice(3, 11)}`);
  await alice.setSandboxTimeout(child, 1000); // the child ends by its timeout: timed_out, not killed

  const kinds = (evs: ForkdEvent[], sid: string) => evs.filter((e) => e.sandbox_id === sid).map((e) => e.kind);
  await aliceStream.until((evs) => kinds(evs, child).includes('timed_out') && kinds(evs, id).includes('resumed'));
  // The suspend writes its snapshot (snapshot_created) before the sandbox ends.
  assert.deepEqual(kinds(aliceStream.got, id), ['created', 'branched', 'snapshot_created', 'forked', 'snapshot_created', 'killed', 'paused', 'created', 'resumed']);
  assert.deepEqual(kinds(aliceStream.got, child), ['created', 'timed_out']);
  const byKind = (k: string, sid: string) => aliceStream.got.find((e) => e.kind === k && e.sandbox_id === sid)!;
  assert.equal(byKind('killed', id).details.reason, 'suspend');
  assert.equal(typeof byKind('timed_out', child).details.lifetime_ms, 'number');
  assert.deepEqual(byKind('forked', id).details.children, [child]);
  assert.equal(byKind('created', child).details.cause && (byKind('created', child).details.cause as { kind: string }).kind, 'fork');
  assert.equal(typeof byKind('branched', id).details.pause_ms, 'number');
  const ids = aliceStream.got.map((e) => e.id);
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'offsets in order');
  assert.ok(ids.every((v, i) => i === 0 || v > ids[i - 1]!), 'no duplicates');
  assert.ok(aliceStream.got.every((e) => e.owner === 'alice'));

  // The per-sandbox stream (resumed from an offset) has exactly this sandbox's events.
  await sbStream.until((evs) => evs.some((e) => e.kind === 'resumed'));
  assert.deepEqual(sbStream.got.map((e) => e.kind), kinds(aliceStream.got, id));

  // Another user: nothing of alice's, live or in a page; the admin: all of it.
  assert.deepEqual(bobStream.got, []);
  assert.deepEqual((await ctl('bob').eventsPage({ since: start })).events, []);
  const adminPage = await ctl('root').eventsPage({ since: start });
  assert.deepEqual(adminPage.events.filter((e) => e.owner === 'alice').map((e) => e.id), ids);

  // The operator's webhook got all of them (every owner), signed, in offset order, each once.
  const hookWait = Date.now() + 30_000;
  while (!ids.every((i) => hooked.some((h) => h.event.id === i)) && Date.now() < hookWait) await new Promise((r) => setTimeout(r, 200));
  const hookedIds = hooked.map((h) => h.event.id);
  assert.ok(ids.every((i) => hookedIds.includes(i)), `webhook got ${hookedIds.join(',')}; stream ${ids.join(',')}`);
  assert.ok(hooked.every((h) => h.signed), 'every delivery has a valid x-forkd-signature');
  assert.deepEqual(hookedIds, [...new Set(hookedIds)].sort((a, b) => a - b), 'in order, each once');

  // The daemon restarts: the events are still there under the same offsets, and numbering goes on.
  await aliceStream.stop();
  await bobStream.stop();
  await sbStream.stop();
  const last = ids.at(-1)!;
  await d.stop(); // --on-stop end: the running workspace is suspended (paused) at the stop
  await d.restart();
  const after = await ctl('alice').eventsPage({ since: start });
  assert.deepEqual(after.events.slice(0, ids.length).map((e) => e.id), ids);
  const atStop = after.events.find((e) => e.sandbox_id === id && e.kind === 'paused' && e.id > last);
  assert.ok(atStop, `the suspend at the stop was journaled after the others: ${JSON.stringify(after.events.slice(ids.length))}`);
  // Events of the stop itself reach the webhook after the restart (pending deliveries are journaled), still once each.
  const stopWait = Date.now() + 30_000;
  while (!hooked.some((h) => h.event.id === atStop.id) && Date.now() < stopWait) await new Promise((r) => setTimeout(r, 200));
  assert.ok(hooked.some((h) => h.event.id === atStop.id), `the webhook got the stop's events: ${hooked.map((h) => h.event.id).join(',')}`);
  // At least once: an attempt cut by the stop may be repeated, but first deliveries stay in offset order.
  const firsts = [...new Set(hooked.map((h) => h.event.id))];
  assert.deepEqual(firsts, [...firsts].sort((a, b) => a - b));
  await ctl('alice').deleteWorkspace(`ev-${id.slice(3, 11)}`).catch(() => undefined);
});
