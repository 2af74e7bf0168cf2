/**
 * An append-only, fsynced journal of state changes (JSON lines, each with a checksum). A change
 * is acknowledged only after its line is on disk, so it survives `kill -9` and power loss.
 * Appends that arrive while an fsync runs are written and synced together (group commit).
 * On open, a torn or corrupt tail (a crash mid-write) is dropped; the file is then rewritten as a
 * compact snapshot of the current state (tmp + fsync + rename + fsync dir).
 */
import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

export interface JournalEntry {
  /** Record kind, e.g. "sandbox", "job", "workspace". */
  k: string;
  /** Record id. */
  id: string;
  /** The whole record, or null when it was deleted. */
  v: unknown;
}

function sum(body: string): string {
  return crypto.createHash('sha256').update(body).digest('hex').slice(0, 16);
}

export function encodeEntry(e: JournalEntry): string {
  const body = JSON.stringify(e);
  return `${sum(body)} ${body}\n`;
}

/** Parses journal text; stops at the first line that is incomplete or fails its checksum. */
export function decodeJournal(text: string): { entries: JournalEntry[]; validBytes: number; dropped: number } {
  const entries: JournalEntry[] = [];
  let pos = 0;
  let dropped = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    if (nl < 0) {
      dropped = 1;
      break;
    }
    const line = text.slice(pos, nl);
    const sp = line.indexOf(' ');
    const body = sp > 0 ? line.slice(sp + 1) : '';
    if (sp !== 16 || sum(body) !== line.slice(0, sp)) {
      dropped = 1;
      break;
    }
    try {
      const e = JSON.parse(body) as JournalEntry;
      if (typeof e.k === 'string' && typeof e.id === 'string') entries.push(e);
    } catch {
      dropped = 1;
      break;
    }
    pos = nl + 1;
  }
  return { entries, validBytes: Buffer.byteLength(text.slice(0, pos)), dropped };
}

export class Journal {
  private fh: fs.FileHandle | null = null;
  private queue: Array<{ line: string; resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing = false;
  /** Live records: kind -> id -> value. */
  readonly records = new Map<string, Map<string, unknown>>();

  private constructor(readonly file: string) {}

  static async open(file: string): Promise<{ journal: Journal; droppedTail: boolean }> {
    const j = new Journal(path.resolve(file));
    await fs.mkdir(path.dirname(j.file), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = await fs.readFile(j.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const { entries, dropped } = decodeJournal(text);
    for (const e of entries) j.apply(e);
    await j.compact();
    return { journal: j, droppedTail: dropped > 0 };
  }

  private apply(e: JournalEntry): void {
    let m = this.records.get(e.k);
    if (!m) this.records.set(e.k, (m = new Map()));
    if (e.v === null) m.delete(e.id);
    else m.set(e.id, e.v);
  }

  all<T>(kind: string): T[] {
    return [...(this.records.get(kind)?.values() ?? [])] as T[];
  }

  get<T>(kind: string, id: string): T | undefined {
    return this.records.get(kind)?.get(id) as T | undefined;
  }

  /** Records the change and resolves once it is on disk. */
  put(kind: string, id: string, value: unknown): Promise<void> {
    const e: JournalEntry = { k: kind, id, v: value };
    this.apply(e);
    return this.enqueue(encodeEntry(e));
  }

  delete(kind: string, id: string): Promise<void> {
    return this.put(kind, id, null);
  }

  private enqueue(line: string): Promise<void> {
    if (!this.fh) return Promise.reject(new Error('journal is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0 && this.fh) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.fh.write(batch.map((b) => b.line).join(''));
        await this.fh.datasync();
        for (const b of batch) b.resolve();
      } catch (e) {
        for (const b of batch) b.reject(e);
      }
    }
    this.flushing = false;
  }

  /** Rewrites the file as one line per live record. */
  async compact(): Promise<void> {
    const tmp = `${this.file}.tmp-${process.pid}`;
    const lines: string[] = [];
    for (const [k, m] of this.records) for (const [id, v] of m) lines.push(encodeEntry({ k, id, v }));
    const fh = await fs.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o600);
    try {
      await fh.write(lines.join(''));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.fh?.close();
    await fs.rename(tmp, this.file);
    const dir = await fs.open(path.dirname(this.file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    this.fh = await fs.open(this.file, 'a', 0o600);
  }

  async close(): Promise<void> {
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.fh?.close();
    this.fh = null;
  }
}
