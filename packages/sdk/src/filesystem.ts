/**
 * sandbox.files, E2B's Filesystem, over the daemon's file routes (streamed download and upload,
 * list, stat, mkdir, remove, rename). Entries use E2B's camelCase names.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Controller, EntryInfo as WireEntryInfo } from './controller.js';
import { NotFoundError } from './errors.js';
import { guard, toSdkError } from './guard.js';

/** E2B's EntryInfo, minus owner/group (the agent does not report them). */
export interface EntryInfo {
  name: string;
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  mode: number;
  permissions: string;
  modifiedTime: Date;
  symlinkTarget?: string;
}

export interface WriteInfo {
  name: string;
  path: string;
  type: 'file';
  size: number;
}

export type WriteData = string | Uint8Array | ArrayBuffer | Blob | Readable | WebReadableStream<Uint8Array> | globalThis.ReadableStream<Uint8Array>;
export interface WriteEntry { path: string; data: WriteData }

export function toEntryInfo(e: WireEntryInfo): EntryInfo {
  return {
    name: e.name,
    path: e.path,
    type: e.type,
    size: e.size,
    mode: e.mode,
    permissions: e.permissions,
    modifiedTime: new Date(e.modified_ms),
    ...(e.symlink_target !== null ? { symlinkTarget: e.symlink_target } : {}),
  };
}

function baseName(p: string): string {
  const parts = p.split('/').filter(Boolean);
  return parts[parts.length - 1] ?? '/';
}

/** Everything write() accepts, as what Controller.writeFile takes. */
async function body(data: WriteData): Promise<string | Uint8Array | Readable> {
  if (typeof data === 'string' || data instanceof Uint8Array || data instanceof Readable) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof Blob !== 'undefined' && data instanceof Blob) return new Uint8Array(await data.arrayBuffer());
  return Readable.fromWeb(data as WebReadableStream<Uint8Array>);
}

export class Filesystem {
  constructor(private readonly ctl: Controller, private readonly sandboxId: string) {}

  read(path: string, opts?: { format?: 'text' }): Promise<string>;
  read(path: string, opts: { format: 'bytes' }): Promise<Uint8Array>;
  read(path: string, opts: { format: 'blob' }): Promise<Blob>;
  read(path: string, opts: { format: 'stream' }): Promise<globalThis.ReadableStream<Uint8Array>>;
  read(path: string, opts: { format?: 'text' | 'bytes' | 'blob' | 'stream' } = {}): Promise<string | Uint8Array | Blob | globalThis.ReadableStream<Uint8Array>> {
    return guard(async () => {
      const format = opts.format ?? 'text';
      if (format === 'stream') return this.stream(path);
      const buf = await this.ctl.readFile(this.sandboxId, path);
      if (format === 'text') return buf.toString('utf8');
      const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      // Buffers from node:http are backed by an ArrayBuffer, never a SharedArrayBuffer.
      return format === 'blob' ? new Blob([bytes as Uint8Array<ArrayBuffer>]) : bytes;
    });
  }

  /** Creates parent directories and replaces the file atomically (E2B semantics). */
  write(path: string, data: WriteData): Promise<WriteInfo>;
  write(files: WriteEntry[]): Promise<WriteInfo[]>;
  write(pathOrFiles: string | WriteEntry[], data?: WriteData): Promise<WriteInfo | WriteInfo[]> {
    return guard(async () => {
      if (typeof pathOrFiles === 'string') return this.writeOne(pathOrFiles, data ?? '');
      const out: WriteInfo[] = [];
      for (const f of pathOrFiles) out.push(await this.writeOne(f.path, f.data));
      return out;
    });
  }

  /** E2B's alias for write(entries). */
  writeFiles(files: WriteEntry[]): Promise<WriteInfo[]> {
    return this.write(files);
  }

  list(path: string, opts: { depth?: number } = {}): Promise<EntryInfo[]> {
    return guard(async () => (await this.ctl.listFiles(this.sandboxId, path, opts.depth)).entries.map(toEntryInfo));
  }

  /** Removes a file or a whole directory tree. */
  remove(path: string): Promise<void> {
    return guard(async () => {
      await this.ctl.removeFile(this.sandboxId, path, true);
    });
  }

  /** true if it was created, false if it already existed. */
  makeDir(path: string): Promise<boolean> {
    return guard(async () => (await this.ctl.mkdir(this.sandboxId, path, true)).created);
  }

  exists(path: string): Promise<boolean> {
    return guard(async () => {
      try {
        await this.ctl.statFile(this.sandboxId, path);
        return true;
      } catch (e) {
        if (e instanceof NotFoundError && e.code === 'FORKD_E_FILE_NOT_FOUND') return false;
        throw e;
      }
    });
  }

  rename(oldPath: string, newPath: string): Promise<EntryInfo> {
    return guard(async () => toEntryInfo(await this.ctl.renameFile(this.sandboxId, oldPath, newPath)));
  }

  getInfo(path: string): Promise<EntryInfo> {
    return guard(async () => toEntryInfo(await this.ctl.statFile(this.sandboxId, path)));
  }

  private async writeOne(path: string, data: WriteData): Promise<WriteInfo> {
    const r = await this.ctl.writeFile(this.sandboxId, path, await body(data));
    return { name: baseName(r.path), path: r.path, type: 'file', size: r.size };
  }

  /** The download as a web stream whose errors are typed SDK errors too. */
  private async stream(path: string): Promise<globalThis.ReadableStream<Uint8Array>> {
    const res = await this.ctl.readFileStream(this.sandboxId, path);
    const it = (res.stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { value, done } = await it.next();
          if (done) controller.close();
          else controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
        } catch (e) {
          controller.error(toSdkError(e));
        }
      },
      cancel() {
        res.stream.destroy();
      },
    });
  }
}
