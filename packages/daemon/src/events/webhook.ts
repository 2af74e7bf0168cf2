/**
 * Webhooks: the operator's endpoint gets every lifecycle event (all tenants: it is the operator's)
 * as a POST of the event's JSON, signed `x-forkd-signature: sha256=<hex HMAC-SHA256 of the body>`
 * with a secret from a file, one event at a time in offset order, retried with exponential backoff
 * (EVENT_LIMITS.webhooks: bounded attempts, then the event is skipped and logged).
 *
 * Pending deliveries are journaled without a second copy: the events are in the event journal
 * already, and the delivery keeps its cursor (the last offset answered 2xx, or given up on) in a
 * small file beside it, written atomically after each delivery. A restarted daemon resumes after
 * the cursor; events dropped by retention meanwhile are reported, not invented. A new webhook
 * starts at the newest event (it is not flooded with history).
 *
 * Delivery never blocks the daemon: the event log only wakes the loop; the loop reads the log in
 * pages (memory stays bounded however far behind the receiver is) and no request waits on it.
 *
 * SSRF: a webhook URL is a request the daemon makes from its own network position. Only http: and
 * https: are accepted, no redirects are followed, and a host that is not loopback needs the
 * operator's explicit opt-in (forkd serve --webhook-allow-remote).
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { EVENT_LIMITS, ForkdError } from '@forkd/protocol';
import type { ForkdEventT } from '@forkd/api';
import type { EventLog } from './log.js';

export interface WebhookConfig {
  url: string;
  secret: string;
  /** Hosts other than loopback are refused unless the operator opted in. */
  allowRemote?: boolean;
  /** Only these kinds (default: all). */
  kinds?: readonly string[];
}

export interface WebhookLimits { timeoutMs: number; maxAttempts: number; baseBackoffMs: number; maxBackoffMs: number }

export interface DeliveryReport {
  event: number;
  attempt: number;
  ok: boolean;
  status?: number;
  error?: string;
  /** The event was given up on after the last attempt. */
  gaveUp?: boolean;
}

/** `sha256=<hex>`: what x-forkd-signature carries for a body. */
export function signBody(secret: string, body: string | Buffer): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A receiver's check, constant time (also what the tests use). */
export function verifySignature(secret: string, body: string | Buffer, header: string | undefined): boolean {
  if (!header) return false;
  const want = Buffer.from(signBody(secret, body));
  const got = Buffer.from(header);
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

/** Delay before attempt n+1 after n failures: base * 2^(n-1), capped, with up to 20% jitter so receivers are not hit in lockstep. */
export function backoffMs(failures: number, l: Pick<WebhookLimits, 'baseBackoffMs' | 'maxBackoffMs'>, rand: () => number = Math.random): number {
  const d = Math.min(l.maxBackoffMs, l.baseBackoffMs * 2 ** Math.max(0, failures - 1));
  return Math.round(d * (1 + 0.2 * rand()));
}

const isLoopback = (host: string): boolean => {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
};

/** The URL checked: http(s) only, no credentials in it, loopback unless allowRemote. */
export function validateWebhookConfig(c: WebhookConfig): URL {
  const bad = (m: string) => new ForkdError('FORKD_E_INVALID_ARGUMENT', `webhook: ${m}`);
  if (c.url.length > EVENT_LIMITS.webhooks.maxUrlChars) throw bad(`the URL is longer than ${EVENT_LIMITS.webhooks.maxUrlChars} characters`);
  let u: URL;
  try {
    u = new URL(c.url);
  } catch {
    throw bad(`not a URL: ${JSON.stringify(c.url.slice(0, 80))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad(`only http: and https: URLs; got ${u.protocol}`);
  if (u.username || u.password) throw bad('credentials in the URL would be logged and sent in the clear: sign with the secret instead');
  if (!c.allowRemote && !isLoopback(u.hostname)) throw bad(`${u.hostname} is not loopback: the daemon would send requests from its own network position (SSRF); pass --webhook-allow-remote to allow it`);
  const { minSecretChars, maxSecretChars } = EVENT_LIMITS.webhooks;
  if (c.secret.length < minSecretChars || c.secret.length > maxSecretChars) throw bad(`the secret must be ${minSecretChars} to ${maxSecretChars} characters; got ${c.secret.length}`);
  return u;
}

/** The secret from a file the daemon's user alone may read (trailing newline dropped). */
export async function readWebhookSecret(file: string): Promise<string> {
  const st = await fs.stat(file);
  if ((st.mode & 0o077) !== 0) throw new ForkdError('FORKD_E_TOKEN_FILE_INSECURE', `webhook secret file ${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: run \`chmod 600 ${file}\``, { file });
  return (await fs.readFile(file, 'utf8')).replace(/\r?\n$/, '');
}

/** One POST; resolves with the status (any), rejects on a network error or timeout. */
function post(u: URL, body: string, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, timeout: timeoutMs, signal }, (res) => {
      res.resume(); // the receiver's answer body is not read: its status is all that counts
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

const cursorName = (u: URL): string => `webhook-${crypto.createHash('sha256').update(u.href).digest('hex').slice(0, 16)}.cursor`;

export class WebhookDelivery {
  private cursor = -1;
  private wake: (() => void) | null = null;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private unsubscribe: () => void = () => undefined;
  private readonly ac = new AbortController();
  private readonly url: URL;
  private readonly file: string;
  /** Each attempt's outcome (the daemon logs failures and counts them). */
  onReport: (r: DeliveryReport) => void = () => undefined;
  /** Events lost to retention before they could be delivered. */
  onSkipped: (from: number, to: number) => void = () => undefined;

  constructor(private readonly log: EventLog, private readonly config: WebhookConfig, private readonly limits: WebhookLimits = EVENT_LIMITS.webhooks) {
    this.url = validateWebhookConfig(config);
    this.file = path.join(log.dir, cursorName(this.url));
  }

  /** The last offset delivered or given up on. */
  get delivered(): number {
    return this.cursor;
  }

  async start(): Promise<void> {
    const saved = await fs.readFile(this.file, 'utf8').then((t) => Number(t.trim()), () => null);
    this.cursor = saved !== null && Number.isInteger(saved) && saved >= -1 ? saved : this.log.durableId;
    if (saved === null) await this.save();
    this.unsubscribe = this.log.subscribe(() => this.wake?.());
    // A failure here (the cursor file cannot be written) stops deliveries, never the daemon.
    this.loop = this.run().catch((e: unknown) => this.onReport({ event: this.cursor + 1, attempt: 0, ok: false, error: `deliveries stopped: ${e instanceof Error ? e.message : String(e)}`, gaveUp: true }));
  }

  /** Stops after the current attempt is aborted; the cursor stays where the last delivery left it. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.ac.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const oldest = this.log.oldestId;
      if (oldest !== null && this.cursor + 1 < oldest) {
        this.onSkipped(this.cursor + 1, oldest - 1);
        this.cursor = oldest - 1;
        await this.save();
      }
      // Durable, not merely numbered: an event still on its way to disk is not readable yet, and an
      // empty read must not skip it. Taken before the read: later events have higher offsets.
      const last = this.log.durableId;
      if (this.cursor >= last) {
        await this.idle(60_000);
        continue;
      }
      let page: ForkdEventT[];
      try {
        page = await this.log.read(this.cursor, {}, 100);
      } catch {
        await this.idle(1000); // a read error (disk): try again, the events are still there
        continue;
      }
      if (page.length === 0) {
        // Everything up to `last` is past the retention window: skipped, said so, not retried forever.
        this.onSkipped(this.cursor + 1, last);
        this.cursor = last;
        await this.save();
        continue;
      }
      for (const e of page) {
        if (this.stopped) return;
        if (!this.config.kinds?.length || this.config.kinds.includes(e.kind)) {
          const done = await this.deliver(e);
          if (!done) return; // stopped mid-retry: the event stays pending for the next start
        }
        this.cursor = e.id;
        await this.save();
      }
    }
  }

  /** Attempts until a 2xx or the last attempt; false only when stopped first. */
  private async deliver(e: ForkdEventT): Promise<boolean> {
    const body = JSON.stringify(e);
    const headers = { 'content-type': 'application/json', 'user-agent': 'forkd-webhook', 'x-forkd-signature': signBody(this.config.secret, body), 'x-forkd-event': e.kind, 'x-forkd-event-id': String(e.id) };
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) return false;
      let status: number | undefined;
      let error: string | undefined;
      try {
        status = await post(this.url, body, { ...headers, 'x-forkd-delivery-attempt': String(attempt) }, this.limits.timeoutMs, this.ac.signal);
      } catch (err) {
        if (this.stopped) return false;
        error = err instanceof Error ? err.message : String(err);
      }
      const ok = status !== undefined && status >= 200 && status < 300;
      const gaveUp = !ok && attempt >= this.limits.maxAttempts;
      this.onReport({ event: e.id, attempt, ok, ...(status !== undefined ? { status } : {}), ...(error ? { error } : {}), ...(gaveUp ? { gaveUp } : {}) });
      if (ok || gaveUp) return true;
      await this.idle(backoffMs(attempt, this.limits), false);
    }
  }

  /** Sleeps ms, or until a new event (when wakeOnEvent) or stop. */
  private idle(ms: number, wakeOnEvent = true): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        if (!wakeOnEvent && !this.stopped) return;
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  private async save(): Promise<void> {
    const tmp = `${this.file}.tmp`;
    const fh = await fs.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${this.cursor}\n`);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, this.file);
  }
}
