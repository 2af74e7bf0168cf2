/**
 * The guest side of forkd.fork(): a Unix socket in the guest (LIMITS.guestFork.socketPath) where the
 * guest library (forkd.py, forkd.js) sends one JSON line {op: "fork", count, vary} and blocks for
 * one JSON line back. The host learns of the request through the guest_fork.wait call it holds
 * open (only on sandboxes allowed to fork themselves: the host accepts no frame it did not ask for).
 *
 * The request stays held across the snapshot the host takes: in the original the host answers it
 * with guest_fork.resolve (the children's ids), in each child with `vary` (its index and values),
 * so the guest caller returns once in every VM, like fork(2).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ForkdError, LIMITS, MACHINE_LIMITS, Vary, expandVary, toForkdError, type GuestForkRequestT, type VaryValuesT } from '@forkd/protocol';

/** What the guest library gets back (one JSON line). */
export type GuestForkAnswer =
  | { ok: true; role: 'parent'; children: string[]; pause_ms: number | null; fork_ms: number | null }
  | { ok: true; role: 'child'; index: number; values: VaryValuesT; seed: number }
  | { ok: false; code: string; message: string };

interface Held {
  request: GuestForkRequestT;
  sock: net.Socket;
}

interface Waiter {
  resolve: (r: GuestForkRequestT) => void;
  reject: (e: Error) => void;
}

/** How long a restored VM keeps requests its snapshot held for a `vary` to claim (the host sends it right after restore). */
const INHERITED_GRACE_MS = 30_000;

export class GuestForkBroker {
  private server: net.Server | null = null;
  private waiter: Waiter | null = null;
  /** Requests made while no host waited (answered by the next wait), oldest first. */
  private readonly queued: Held[] = [];
  /** Requests handed to the host, by id, until the host answers them. */
  private readonly held = new Map<string, Held>();
  /**
   * A host has waited here: it watches this VM for guest forks, so a request made between two of
   * its waits is queued, not refused. Cloned into children with the memory; their hosts watch them too.
   */
  private enabled = false;
  /**
   * After a restore: requests the snapshot's VM had handed to its host. A fork child's `vary`
   * answers the one that made it and drops the rest; unclaimed ones (a plain spawn from a snapshot
   * taken during a guest fork) are answered with an error after INHERITED_GRACE_MS.
   */
  private inherited = new Map<string, Held>();
  private inheritedTimer: NodeJS.Timeout | null = null;

  constructor(private readonly socketPath: string = LIMITS.guestFork.socketPath) {}

  /** Listens on the guest socket (mode 0666: any guest program may ask; the host decides). */
  start(): Promise<void> {
    fs.mkdirSync(path.dirname(this.socketPath), { recursive: true });
    try {
      fs.unlinkSync(this.socketPath);
    } catch {
      /* not there */
    }
    const server = net.createServer((sock) => this.accept(sock));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        server.on('error', (e) => process.stderr.write(`forkd-agent: guest fork socket: ${e.message}\n`));
        try {
          fs.chmodSync(this.socketPath, 0o666);
        } catch {
          /* best effort */
        }
        resolve();
      });
    });
  }

  stop(): void {
    this.server?.close();
    this.server = null;
  }

  /**
   * The host's long poll: resolves with the next guest request. One host waiter at a time: a newer
   * wait replaces an older one (a restored child's host waits anew while its parent's stale wait is
   * still in the cloned memory).
   */
  wait(onCancel: (cb: () => void) => () => void): Promise<GuestForkRequestT> {
    this.enabled = true;
    const next = this.queued.shift();
    if (next) {
      this.held.set(next.request.request_id, next);
      return Promise.resolve(next.request);
    }
    this.waiter?.reject(new ForkdError('FORKD_E_CONFLICT', 'a newer guest_fork.wait replaced this one'));
    return new Promise<GuestForkRequestT>((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      this.waiter = w;
      onCancel(() => {
        if (this.waiter === w) this.waiter = null;
        reject(new ForkdError('FORKD_E_CONFLICT', 'guest_fork.wait cancelled'));
      });
    });
  }

  /**
   * A restored VM: the host that waited here was the snapshot's, not this VM's. Its wait is gone
   * (a new host waits anew if it watches this VM), guest calls are refused until one does (unless
   * the fork that made this child says it will: see `watched`), and held requests become inherited.
   */
  onRestore(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.reject(new ForkdError('FORKD_E_CONFLICT', 'the VM was restored: this wait belonged to the snapshot\'s host'));
    this.enabled = false;
    for (const [id, h] of this.held) this.inherited.set(id, h);
    this.held.clear();
    if (this.inherited.size > 0 && !this.inheritedTimer) {
      this.inheritedTimer = setTimeout(() => {
        this.inheritedTimer = null;
        this.dropInherited();
      }, INHERITED_GRACE_MS);
      this.inheritedTimer.unref();
    }
  }

  /** The host that restored this fork child watches it: guest calls made before its first wait are queued for it. */
  watched(): void {
    this.enabled = true;
  }

  /** The original's answer from the host: the children's ids, or why there are none. */
  resolve(p: { request_id: string; children?: string[]; error?: { code: string; message: string }; timings?: { pause_ms: number; fork_ms: number } }): boolean {
    const h = this.held.get(p.request_id);
    if (!h) return false;
    this.held.delete(p.request_id);
    if (p.error) return reply(h.sock, { ok: false, code: p.error.code, message: p.error.message });
    return reply(h.sock, { ok: true, role: 'parent', children: p.children ?? [], pause_ms: p.timings?.pause_ms ?? null, fork_ms: p.timings?.fork_ms ?? null });
  }

  /** In a restored child: the held request becomes this child's return. */
  deliverChild(requestId: string, index: number, values: VaryValuesT, seed: number): boolean {
    const h = this.inherited.get(requestId);
    if (!h) return false;
    this.inherited.delete(requestId);
    return reply(h.sock, { ok: true, role: 'child', index, values, seed });
  }

  /**
   * In a restored child, requests its parent held are not this VM's to answer: nothing will
   * resolve them here except deliverChild for the fork that made it. Called after that delivery.
   */
  dropInherited(): void {
    if (this.inheritedTimer) clearTimeout(this.inheritedTimer);
    this.inheritedTimer = null;
    for (const [id, h] of this.inherited) {
      this.inherited.delete(id);
      reply(h.sock, { ok: false, code: 'FORKD_E_CONFLICT', message: 'this VM is a child of another fork; the request it inherited was answered in its parent' });
    }
  }

  private accept(sock: net.Socket): void {
    sock.on('error', () => undefined);
    let buf = '';
    let bytes = 0;
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes > LIMITS.guestFork.maxRequestBytes) {
        sock.off('data', onData);
        reply(sock, { ok: false, code: 'FORKD_E_PAYLOAD_TOO_LARGE', message: `a guest fork request is at most ${LIMITS.guestFork.maxRequestBytes} bytes` });
        return;
      }
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sock.off('data', onData);
      this.onRequest(sock, buf.slice(0, nl));
    };
    sock.on('data', onData);
  }

  private onRequest(sock: net.Socket, line: string): void {
    let request: GuestForkRequestT;
    try {
      request = parseRequest(line);
    } catch (e) {
      const fe = toForkdError(e, 'FORKD_E_INVALID_ARGUMENT');
      reply(sock, { ok: false, code: fe.code, message: fe.message });
      return;
    }
    const held: Held = { request, sock };
    const drop = (): void => {
      this.held.delete(request.request_id);
      const i = this.queued.indexOf(held);
      if (i >= 0) this.queued.splice(i, 1);
    };
    sock.on('close', drop);
    const w = this.waiter;
    if (!w) {
      if (this.enabled) {
        this.queued.push(held);
        return;
      }
      // No host ever waited: it did not ask to watch this VM, so it may not fork itself.
      sock.off('close', drop);
      reply(sock, { ok: false, code: 'FORKD_E_GUEST_FORK_DENIED', message: 'this sandbox may not fork itself: create it with allow_guest_fork ({max_count, max_depth})' });
      return;
    }
    this.waiter = null;
    this.held.set(request.request_id, held);
    w.resolve(request);
  }
}

function parseRequest(line: string): GuestForkRequestT {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'a guest fork request is one JSON object on one line');
  }
  const r = raw as { op?: unknown; count?: unknown; vary?: unknown };
  if (!r || typeof r !== 'object' || r.op !== 'fork') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'unknown guest fork request (op must be "fork")');
  const count = r.count;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MACHINE_LIMITS.forkMax) {
    throw new ForkdError('FORKD_E_OUT_OF_RANGE', `fork count must be an integer from 1 to ${MACHINE_LIMITS.forkMax}`, { count: String(count).slice(0, 32) });
  }
  let vary: VaryValuesT[] = expandVary(undefined, count);
  if (r.vary !== undefined && r.vary !== null) {
    const parsed = Vary.safeParse(r.vary);
    if (!parsed.success) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid vary: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'vary'}: ${i.message}`).join('; ')}`);
    vary = expandVary(parsed.data, count);
  }
  return { request_id: `gf-${crypto.randomBytes(8).toString('hex')}`, count, vary, called_at_ms: performance.now() };
}

function reply(sock: net.Socket, answer: GuestForkAnswer): boolean {
  if (sock.destroyed || !sock.writable) return false;
  sock.end(`${JSON.stringify(answer)}\n`);
  return true;
}
