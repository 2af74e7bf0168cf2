/**
 * The lifecycle event log: every event gets the next offset (one more than the last, across
 * restarts), is appended to a segment file (checksummed JSON lines, the state journal's format) and
 * fsynced, and only then shown to readers and subscribers, so an offset a client saw is still there
 * after a crash. Retention drops whole segments: those whose newest event is older than the window,
 * and the oldest ones while the log is over its size cap. The newest segment is never dropped (its
 * last offset is where numbering resumes); reads skip its events older than the window.
 *
 * Files: <dir>/seg-<first offset, 16 digits>.jsonl. A torn last line (crash mid-write) is dropped
 * and appends go to a new segment; any other bad line costs that line only.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EVENT_LIMITS, ForkdError } from '@forkd/protocol';
import type { EventKindT, ForkdEventT } from '@forkd/api';
import { encodeEntry, replayFile } from '../state/journal.js';

export interface EventInput {
  owner: string;
  kind: EventKindT;
  sandbox_id?: string | null;
  snapshot_tag?: string | null;
  details?: Record<string, unknown>;
}

/** Where the daemon's parts report events (the registry, workspaces, snapshot writes). */
export interface EventSink {
  emit(e: EventInput): void;
}
export const NO_EVENTS: EventSink = { emit: () => undefined };

export interface EventFilter {
  /** Only events this predicate accepts (tenancy: the caller's own, or all for an admin). */
  visible?: (owner: string) => boolean;
  sandboxIds?: readonly string[];
  kinds?: readonly string[];
}

export interface EventLogOptions {
  retentionMs?: number;
  maxBytes?: number;
  /** A new segment once the current one reaches this (default maxBytes / 8). */
  segmentBytes?: number;
  /** Events kept in memory for recent resumes. */
  memoryTail?: number;
  now?: () => number;
  /** Seam for tests: makes an append durable. */
  datasync?: (fh: fs.FileHandle) => Promise<void>;
}

interface Segment {
  first: number;
  last: number;
  lastTime: number;
  bytes: number;
  file: string;
}

const SEG = /^seg-(\d{16})\.jsonl$/;
const segName = (first: number): string => `seg-${String(first).padStart(16, '0')}.jsonl`;

export function matches(e: ForkdEventT, f: EventFilter): boolean {
  if (f.visible && !f.visible(e.owner)) return false;
  if (f.kinds && f.kinds.length > 0 && !f.kinds.includes(e.kind)) return false;
  if (f.sandboxIds && f.sandboxIds.length > 0 && (e.sandbox_id === null || !f.sandboxIds.includes(e.sandbox_id))) return false;
  return true;
}

/** Details cut to the cap: an oversized value is replaced by a note, never half a JSON document. */
function boundedDetails(d: Record<string, unknown> | undefined): Record<string, unknown> {
  const details = d ?? {};
  const bytes = Buffer.byteLength(JSON.stringify(details));
  if (bytes <= EVENT_LIMITS.maxDetailsBytes) return details;
  return { truncated: true, bytes };
}

export class EventLog implements EventSink {
  private segments: Segment[] = [];
  private fh: fs.FileHandle | null = null;
  private nextId = 0;
  private durable = -1;
  private tail: ForkdEventT[] = [];
  private queue: Array<{ event: ForkdEventT; line: Buffer; resolve: (e: ForkdEventT) => void; reject: (e: unknown) => void }> = [];
  private draining: Promise<void> | null = null;
  private closed = false;
  private readonly subscribers = new Set<(e: ForkdEventT) => void>();
  private readonly closers = new Set<() => void>();
  private readonly retentionMs: number;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly memoryTail: number;
  private readonly now: () => number;
  private readonly datasync: (fh: fs.FileHandle) => Promise<void>;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Called with a failed append (the event is lost; the daemon logs it). */
  onError: (e: unknown) => void = () => undefined;

  private constructor(readonly dir: string, o: EventLogOptions) {
    this.retentionMs = o.retentionMs ?? EVENT_LIMITS.defaultRetentionMs;
    this.maxBytes = o.maxBytes ?? EVENT_LIMITS.defaultMaxBytes;
    this.segmentBytes = o.segmentBytes ?? Math.max(4096, Math.floor(this.maxBytes / 8));
    this.memoryTail = o.memoryTail ?? EVENT_LIMITS.memoryTail;
    this.now = o.now ?? Date.now;
    this.datasync = o.datasync ?? ((fh) => fh.datasync());
  }

  static async open(dir: string, o: EventLogOptions = {}): Promise<{ log: EventLog; badLines: number; tornTail: boolean }> {
    if (o.retentionMs !== undefined && !(o.retentionMs > 0 && o.retentionMs <= EVENT_LIMITS.maxRetentionMs)) {
      throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `events retention must be between 1 ms and ${EVENT_LIMITS.maxRetentionMs} ms`);
    }
    if (o.maxBytes !== undefined && !(o.maxBytes >= EVENT_LIMITS.minMaxBytes)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `events max bytes must be at least ${EVENT_LIMITS.minMaxBytes}`);
    const log = new EventLog(dir, o);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const names = (await fs.readdir(dir)).filter((n) => SEG.test(n)).sort();
    let badLines = 0;
    let tornTail = false;
    for (const name of names) {
      const file = path.join(dir, name);
      const seg: Segment = { first: Number(SEG.exec(name)![1]), last: -1, lastTime: 0, bytes: (await fs.stat(file)).size, file };
      const r = await replayFile(file, (entry) => {
        const ev = entry.v as ForkdEventT;
        if (entry.k !== 'event' || typeof ev?.id !== 'number') return void badLines++;
        seg.last = Math.max(seg.last, ev.id);
        seg.lastTime = Math.max(seg.lastTime, ev.time_unix_ms);
        log.nextId = Math.max(log.nextId, ev.id + 1);
        log.remember(ev);
      });
      badLines += r.badLines;
      tornTail = r.tornTail;
      log.nextId = Math.max(log.nextId, seg.first);
      log.durable = log.nextId - 1;
      log.segments.push(seg);
    }
    // Appending after a torn line would glue the next event to it: start a fresh segment instead.
    const last = log.segments.at(-1);
    if (last && !tornTail && last.bytes < log.segmentBytes) log.fh = await fs.open(last.file, 'a', 0o600);
    await log.sweep();
    log.sweepTimer = setInterval(() => void log.sweep().catch((e: unknown) => log.onError(e)), 60_000);
    log.sweepTimer.unref();
    return { log, badLines, tornTail };
  }

  /** The last offset given out (-1: none yet); it may still be on its way to disk. */
  get lastId(): number {
    return this.nextId - 1;
  }

  /** The last offset on disk and shown to readers (-1: none). */
  get durableId(): number {
    return this.durable;
  }

  /** The oldest offset still readable, or null when the log holds none in the window. */
  get oldestId(): number | null {
    const from = this.now() - this.retentionMs;
    const seg = this.segments.find((s) => s.last >= 0 && s.lastTime >= from);
    return seg ? seg.first : null;
  }

  get bytesOnDisk(): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0);
  }

  /** Records an event; resolves with it once it is on disk (and shown to subscribers). */
  append(input: EventInput): Promise<ForkdEventT> {
    if (this.closed) return Promise.reject(new ForkdError('FORKD_E_UNAVAILABLE', 'the event log is closed'));
    const t = this.now();
    const event: ForkdEventT = { id: this.nextId++, time: new Date(t).toISOString(), time_unix_ms: t, owner: input.owner, kind: input.kind, sandbox_id: input.sandbox_id ?? null, snapshot_tag: input.snapshot_tag ?? null, details: boundedDetails(input.details) };
    const line = Buffer.from(encodeEntry({ k: 'event', id: String(event.id), v: event }));
    return new Promise((resolve, reject) => {
      this.queue.push({ event, line, resolve, reject });
      this.kick();
    });
  }

  /** Fire and forget (EventSink): a failed write is reported to onError. */
  emit(input: EventInput): void {
    this.append(input).catch((e: unknown) => this.onError(e));
  }

  /** Called with every event once it is durable, in offset order; returns the unsubscribe. */
  subscribe(fn: (e: ForkdEventT) => void, onClose?: () => void): () => void {
    this.subscribers.add(fn);
    if (onClose) this.closers.add(onClose);
    return () => {
      this.subscribers.delete(fn);
      if (onClose) this.closers.delete(onClose);
    };
  }

  /** Events after `since` that pass the filter, oldest first, at most `limit`, within the retention window. */
  async read(since: number, filter: EventFilter, limit: number = EVENT_LIMITS.maxPage): Promise<ForkdEventT[]> {
    const from = this.now() - this.retentionMs;
    const out: ForkdEventT[] = [];
    const take = (e: ForkdEventT): boolean => {
      if (e.id > since && e.time_unix_ms >= from && matches(e, filter)) out.push(e);
      return out.length >= limit;
    };
    const tailStart = this.tail[0]?.id ?? this.nextId;
    if (since + 1 < tailStart) {
      // Older than memory holds: the segments that may have them, from disk.
      for (const seg of this.segments) {
        if (seg.last <= since || seg.first >= tailStart) continue;
        const found: ForkdEventT[] = [];
        await replayFile(seg.file, (entry) => {
          const ev = entry.v as ForkdEventT;
          if (entry.k === 'event' && ev.id < tailStart) found.push(ev);
        }).catch((e: unknown) => {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // dropped by retention meanwhile
        });
        for (const ev of found) if (take(ev)) return out;
      }
    }
    for (const ev of this.tail) if (take(ev)) return out;
    return out;
  }

  /** Ends every subscriber's stream (the daemon is stopping: open streams would hold its HTTP server open). */
  endStreams(): void {
    for (const c of [...this.closers]) c();
    this.subscribers.clear();
    this.closers.clear();
  }

  /** Ends the streams, stops the sweeper and closes the file once queued events are written. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.endStreams();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    while (this.draining) await this.draining;
    await this.fh?.close();
    this.fh = null;
  }

  private remember(e: ForkdEventT): void {
    this.tail.push(e);
    if (this.tail.length > this.memoryTail * 2) this.tail = this.tail.slice(-this.memoryTail);
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      // One segment's worth at a time (at least one event), so segments stay near their size.
      const room = this.fh && this.segments.at(-1) ? Math.max(0, this.segmentBytes - this.segments.at(-1)!.bytes) : 0;
      let n = 0;
      for (let bytes = 0; n < this.queue.length && (n === 0 || bytes + this.queue[n]!.line.length <= (room || this.segmentBytes)); n++) bytes += this.queue[n]!.line.length;
      const batch = this.queue.splice(0, n);
      try {
        if (!this.fh || room === 0) await this.roll(batch[0]!.event.id);
        const buf = Buffer.concat(batch.map((p) => p.line));
        const fh = this.fh!;
        for (let off = 0; off < buf.length;) off += (await fh.write(buf, off, buf.length - off, null)).bytesWritten;
        await this.datasync(fh);
        const seg = this.segments.at(-1)!;
        seg.bytes += buf.length;
        seg.last = batch.at(-1)!.event.id;
        seg.lastTime = batch.at(-1)!.event.time_unix_ms;
      } catch (e) {
        // The handle may hold a torn line now: later events go to a fresh segment.
        await this.fh?.close().catch(() => undefined);
        this.fh = null;
        for (const p of batch) p.reject(e);
        continue;
      }
      for (const p of batch) {
        this.durable = p.event.id;
        this.remember(p.event);
        for (const fn of this.subscribers) fn(p.event);
        p.resolve(p.event);
      }
      if (this.bytesOnDisk > this.maxBytes) await this.sweep();
    }
  }

  private async roll(first: number): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    const file = path.join(this.dir, segName(first));
    this.fh = await fs.open(file, 'a', 0o600);
    this.segments.push({ first, last: -1, lastTime: 0, bytes: (await this.fh.stat()).size, file });
  }

  /** Drops whole segments past the window or over the size cap, oldest first; never the newest. */
  private async sweep(): Promise<void> {
    const from = this.now() - this.retentionMs;
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!;
      const expired = oldest.last < 0 || oldest.lastTime < from;
      if (!expired && this.bytesOnDisk <= this.maxBytes) break;
      await fs.rm(oldest.file, { force: true });
      this.segments.shift();
      const firstKept = this.segments[0]!.first;
      if (this.tail.length > 0 && this.tail[0]!.id < firstKept) this.tail = this.tail.filter((e) => e.id >= firstKept);
    }
  }
}
