/**
 * An append-only, fsynced journal of state changes (JSON lines, each with a checksum). A change
 * is acknowledged, and only then visible in memory, after its line is on disk, so it survives
 * `kill -9` and power loss. Appends that arrive while an fsync runs are written and synced
 * together (group commit). One writer per state: the journal holds `<state>.lock` (./lock.ts).
 *
 * Replay streams the file line by line. A final line without its newline (a crash mid-write) was
 * never acknowledged and is dropped; any other bad line (checksum, JSON, over the line cap) costs
 * that line only, and the original file is kept aside as `<state>.corrupt-<time>`. The file is then
 * rewritten as a compact snapshot of the live records (tmp + fsync + rename + fsync dir), and again
 * while the daemon runs whenever it outgrows the live records (COMPACT_*).
 *
 * A failed write or fsync poisons the handle (after a failed fsync, later fsyncs can succeed although
 * earlier pages were dropped): that batch and later appends are refused until a compaction from the
 * acknowledged records into a fresh file succeeds.
 */
import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import { StateLock } from './lock.js';

export interface JournalEntry {
  /** Record kind, e.g. "sandbox", "job", "workspace". */
  k: string;
  /** Record id. */
  id: string;
  /** The whole record, or null when it was deleted. */
  v: unknown;
}

/** The longest line written or replayed; a longer line on disk is counted bad without being buffered. */
export const MAX_LINE_BYTES = 64 << 20;
/** Online compaction once the file is larger than this many times the live records… */
export const COMPACT_RATIO = 2;
/** …and larger than this. */
export const COMPACT_MIN_BYTES = 1 << 20;
/** After a failed write, at most one recovery attempt per this interval (a full disk fails fast). */
const RECOVERY_INTERVAL_MS = 1_000;
const READ_CHUNK_BYTES = 1 << 20;
const SUM_HEX = 16;
const NEWLINE = 0x0a;
const NEWLINE_BYTE = Buffer.from([NEWLINE]);

function sum(body: string | Uint8Array): string {
  return crypto.createHash('sha256').update(body).digest('hex').slice(0, SUM_HEX);
}

export function encodeEntry(e: JournalEntry): string {
  const body = JSON.stringify(e);
  return `${sum(body)} ${body}\n`;
}

/** One line's bytes (without its newline) to an entry, or null when it is corrupt. */
export function decodeLine(line: Uint8Array): JournalEntry | null {
  if (line.length <= SUM_HEX + 1 || line[SUM_HEX] !== 0x20) return null;
  const body = line.subarray(SUM_HEX + 1);
  if (sum(body) !== Buffer.from(line.buffer, line.byteOffset, SUM_HEX).toString('latin1')) return null;
  try {
    const e = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.length).toString('utf8')) as JournalEntry;
    return e && typeof e === 'object' && typeof e.k === 'string' && typeof e.id === 'string' ? e : null;
  } catch {
    return null;
  }
}

/** What replay found besides good lines. */
export interface ReplayReport {
  /** The last line had no newline (a crash mid-write: never acknowledged) and was dropped. */
  tornTail: boolean;
  /** Complete lines skipped: checksum or JSON failures, or longer than MAX_LINE_BYTES. */
  badLines: number;
  /** Where the original file was kept when badLines > 0, else null. */
  keptAside: string | null;
}

/** Streams the file's lines (with their newline) to `onEntry`, never holding more than one line (≤ MAX_LINE_BYTES) in memory. */
export async function replayFile(file: string, onEntry: (e: JournalEntry, line: Buffer) => void): Promise<{ tornTail: boolean; badLines: number }> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { tornTail: false, badLines: 0 };
    throw e;
  }
  let badLines = 0;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let oversize = false;
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  const endLine = (): void => {
    if (oversize) badLines++;
    else {
      // One copy per line, newline included: the live record keeps exactly the bytes it had on disk.
      const line = Buffer.concat([...parts, NEWLINE_BYTE], partBytes + 1);
      const e = decodeLine(line.subarray(0, partBytes));
      if (e) onEntry(e, line);
      else badLines++;
    }
    parts = [];
    partBytes = 0;
    oversize = false;
  };
  const take = (piece: Buffer): void => {
    if (oversize || piece.length === 0) return;
    if (partBytes + piece.length > MAX_LINE_BYTES) {
      oversize = true;
      parts = [];
      partBytes = 0;
      return;
    }
    parts.push(piece);
    partBytes += piece.length;
  };
  try {
    for (;;) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      const data = chunk.subarray(0, bytesRead);
      let pos = 0;
      for (let nl = data.indexOf(NEWLINE, pos); nl >= 0; nl = data.indexOf(NEWLINE, pos)) {
        take(data.subarray(pos, nl));
        endLine();
        pos = nl + 1;
      }
      // The chunk is reused by the next read: a line that goes on past it keeps a copy.
      if (pos < data.length) take(Buffer.from(data.subarray(pos)));
    }
  } finally {
    await fh.close();
  }
  return { tornTail: partBytes > 0 || oversize, badLines };
}

/** Seams for tests: how a buffer reaches the file and how it is made durable. */
export interface JournalIo {
  /** Writes up to `length` bytes at the end of the file; returns how many were written. */
  write(fh: fs.FileHandle, buf: Buffer, offset: number, length: number): Promise<number>;
  datasync(fh: fs.FileHandle): Promise<void>;
}

const nodeIo: JournalIo = {
  write: async (fh, buf, offset, length) => (await fh.write(buf, offset, length, null)).bytesWritten,
  datasync: (fh) => fh.datasync(),
};

export interface JournalOptions {
  /** A lock already taken on this state (the daemon takes it first); default: the journal takes one. */
  lock?: StateLock;
  io?: Partial<JournalIo>;
  /** Online compaction thresholds (tests lower them). */
  compactRatio?: number;
  compactMinBytes?: number;
}

interface Pending {
  entry: JournalEntry;
  line: Buffer;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface Stored {
  value: unknown;
  /** The acknowledged line, written again as is by compaction. */
  line: Buffer;
}

export class Journal {
  private fh: fs.FileHandle | null = null;
  private queue: Pending[] = [];
  private compactWaiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private draining: Promise<void> | null = null;
  private closed = false;
  /** Set by a failed write or fsync until a compaction into a fresh file succeeds. */
  private failure: ForkdError | null = null;
  private lastRecoveryAt = 0;
  /** Bytes in the file, and what the live records alone would take. */
  private fileBytes = 0;
  private liveBytes = 0;
  /** No automatic compaction below this size (raised after a failed attempt, so it is not retried per append). */
  private compactFloor: number;
  private readonly live = new Map<string, Map<string, Stored>>();
  private readonly io: JournalIo;
  private readonly compactRatio: number;

  private constructor(
    /** The state file's real path. */
    readonly file: string,
    private readonly lock: StateLock,
    o: JournalOptions,
  ) {
    this.io = { ...nodeIo, ...o.io };
    this.compactRatio = o.compactRatio ?? COMPACT_RATIO;
    this.compactFloor = o.compactMinBytes ?? COMPACT_MIN_BYTES;
  }

  static async open(file: string, o: JournalOptions = {}): Promise<{ journal: Journal; replay: ReplayReport }> {
    const lock = o.lock ?? (await StateLock.acquire(file));
    try {
      const j = new Journal(lock.state, lock, o);
      const { tornTail, badLines } = await replayFile(j.file, (e, line) => j.apply(e, line));
      let keptAside: string | null = null;
      if (badLines > 0) keptAside = await keepAside(j.file);
      await j.compact();
      return { journal: j, replay: { tornTail, badLines, keptAside } };
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  private apply(e: JournalEntry, line: Buffer): void {
    let m = this.live.get(e.k);
    if (!m) this.live.set(e.k, (m = new Map()));
    this.liveBytes -= m.get(e.id)?.line.length ?? 0;
    if (e.v === null) m.delete(e.id);
    else {
      m.set(e.id, { value: e.v, line });
      this.liveBytes += line.length;
    }
  }

  all<T>(kind: string): T[] {
    return [...(this.live.get(kind)?.values() ?? [])].map((s) => s.value) as T[];
  }

  get<T>(kind: string, id: string): T | undefined {
    return this.live.get(kind)?.get(id)?.value as T | undefined;
  }

  /** Records the change; resolves once it is on disk (and only then shows it to get/all). */
  put(kind: string, id: string, value: unknown): Promise<void> {
    if (this.closed) return Promise.reject(new ForkdError('FORKD_E_UNAVAILABLE', `the state journal ${this.file} is closed`));
    const entry: JournalEntry = { k: kind, id, v: value };
    const line = Buffer.from(encodeEntry(entry));
    if (line.length > MAX_LINE_BYTES) {
      return Promise.reject(new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `a ${kind} record of ${line.length} bytes is larger than the journal's line limit (${MAX_LINE_BYTES} bytes)`, { kind, id, bytes: line.length, limit: MAX_LINE_BYTES }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, line, resolve, reject });
      this.kick();
    });
  }

  delete(kind: string, id: string): Promise<void> {
    return this.put(kind, id, null);
  }

  /** Rewrites the file as one line per live record, after every append queued before this call. */
  compact(): Promise<void> {
    if (this.closed) return Promise.reject(new ForkdError('FORKD_E_UNAVAILABLE', `the state journal ${this.file} is closed`));
    return new Promise((resolve, reject) => {
      this.compactWaiters.push({ resolve, reject });
      this.kick();
    });
  }

  /** Current size of the file (bytes), e.g. to watch online compaction. */
  get bytesOnDisk(): number {
    return this.fileBytes;
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.draining) await this.draining;
    await this.fh?.close();
    this.fh = null;
    await this.lock.release();
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
      // Work queued between the drain's last look and now.
      if (this.queue.length > 0 || this.compactWaiters.length > 0) this.kick();
    });
  }

  /** The one writer: appends, compactions and recoveries run here, one at a time, in order. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0 || this.compactWaiters.length > 0) {
      if (this.failure && !(await this.recover())) {
        for (const p of this.queue.splice(0)) p.reject(this.failure);
        for (const w of this.compactWaiters.splice(0)) w.reject(this.failure);
        break;
      }
      if (this.queue.length > 0) await this.appendBatch(this.queue.splice(0));
      if (this.failure) {
        await this.recover();
        continue;
      }
      const waiters = this.compactWaiters.splice(0);
      const grown = this.fileBytes > Math.max(this.compactFloor, this.compactRatio * this.liveBytes);
      if (waiters.length === 0 && !grown) continue;
      try {
        await this.rewrite();
        for (const w of waiters) w.resolve();
      } catch (e) {
        // The append handle is untouched by a failed rewrite: appends go on; wait for more growth.
        this.compactFloor = this.fileBytes + Math.max(COMPACT_MIN_BYTES, this.liveBytes);
        for (const w of waiters) w.reject(e);
      }
    }
  }

  private async appendBatch(batch: Pending[]): Promise<void> {
    const buf = batch.length === 1 ? batch[0]!.line : Buffer.concat(batch.map((p) => p.line));
    try {
      if (!this.fh) throw new Error('no open journal file');
      await writeFully(this.io, this.fh, buf);
      this.fileBytes += buf.length;
      await this.io.datasync(this.fh);
    } catch (e) {
      this.failure = new ForkdError('FORKD_E_UNAVAILABLE', `the state journal ${this.file} could not be written (${(e as Error).message}): the change was not recorded, and no change is until the journal is rewritten`, { state: this.file }, { cause: e });
      for (const p of batch) p.reject(this.failure);
      return;
    }
    for (const p of batch) {
      this.apply(p.entry, p.line);
      p.resolve();
    }
  }

  /** After a failed write: a fresh file from the acknowledged records, through a new handle. */
  private async recover(): Promise<boolean> {
    if (Date.now() - this.lastRecoveryAt < RECOVERY_INTERVAL_MS) return false;
    this.lastRecoveryAt = Date.now();
    try {
      await this.rewrite();
      this.failure = null;
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Writes the live records to a tmp file through the handle that then appends to it, fsyncs,
   * renames it over the journal and fsyncs the directory. Until the rename the old file and handle
   * stay as they were, so a failure here loses nothing.
   */
  private async rewrite(): Promise<void> {
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fh = await fs.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_APPEND, 0o600);
    let renamed = false;
    try {
      let bytes = 0;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flushPending = async (): Promise<void> => {
        await writeFully(this.io, fh, Buffer.concat(pending, pendingBytes));
        bytes += pendingBytes;
        pending = [];
        pendingBytes = 0;
      };
      for (const m of this.live.values()) {
        for (const s of m.values()) {
          pending.push(s.line);
          pendingBytes += s.line.length;
          if (pendingBytes >= READ_CHUNK_BYTES * 8) await flushPending();
        }
      }
      if (pendingBytes > 0) await flushPending();
      await fh.sync();
      await fs.rename(tmp, this.file);
      renamed = true;
      await syncDir(path.dirname(this.file));
      const old = this.fh;
      this.fh = fh;
      this.fileBytes = bytes;
      await old?.close().catch(() => undefined);
    } catch (e) {
      if (!renamed) {
        await fh.close().catch(() => undefined);
        await fs.rm(tmp, { force: true });
      } else {
        // Renamed but not known durable: the old handle now appends to an unlinked file.
        await this.fh?.close().catch(() => undefined);
        this.fh = fh;
        this.failure ??= new ForkdError('FORKD_E_UNAVAILABLE', `the state journal ${this.file} could not be synced after a rewrite (${(e as Error).message})`, { state: this.file }, { cause: e });
      }
      throw e;
    }
  }
}

/** Loops until every byte is written: a short write must never leave a torn line acknowledged. */
async function writeFully(io: JournalIo, fh: fs.FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    const n = await io.write(fh, buf, off, buf.length - off);
    if (!(n > 0)) throw new Error(`short write: ${off} of ${buf.length} bytes, then ${n}`);
    off += n;
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Keeps the original journal (a hard link: no copy of a large file) before compaction replaces it. */
async function keepAside(file: string): Promise<string> {
  const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  try {
    await fs.link(file, aside);
  } catch {
    await fs.copyFile(file, aside, fsc.COPYFILE_EXCL);
  }
  return aside;
}
