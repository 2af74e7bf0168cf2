/**
 * Files in a guest. Reads stream in chunks; writes go to a temporary file beside the target that
 * is renamed into place, so a failed or oversized write never leaves a half-written file.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { ForkdError, LIMITS, type EntryInfoT, type ResultOf } from '@forkd/protocol';
import type { AgentClient } from '../agent-client/index.js';

/** Host budget for one chunk of a read or write. */
const CHUNK_TIMEOUT_MS = 60_000;

type Signal = { signal?: AbortSignal };

export interface ReadStream {
  /** The file's size when the first chunk was read. */
  size: number;
  /** The file's bytes from the first chunk on; a failure after the first chunk is thrown from here. */
  chunks: AsyncIterable<Buffer>;
}

export class SandboxFiles {
  readonly #agent: () => AgentClient;

  constructor(agent: () => AgentClient) {
    this.#agent = agent;
  }

  /**
   * Opens a file for reading and reads its first chunk before returning, so early errors (not
   * found, a directory, larger than maxBytes) are thrown here, before a caller commits to a reply.
   * A file that grows while being read is cut at maxBytes.
   */
  async readStream(file: string, o: Signal & { maxBytes?: number } = {}): Promise<ReadStream> {
    const agent = this.#agent();
    const max = o.maxBytes ?? Number.POSITIVE_INFINITY;
    const signal = o.signal ? { signal: o.signal } : {};
    const st = await agent.stat(file, signal);
    if (st.type === 'dir') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${file} is a directory`, { path: file });
    if (st.size > max) throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `${file} is ${st.size} bytes; downloads are limited to ${max}`, { size: st.size });
    const read = (offset: number) => agent.call('files.read', { path: file, offset, length: LIMITS.maxFileChunkBytes }, { ...signal, timeoutMs: CHUNK_TIMEOUT_MS });
    const first = await read(0);
    async function* chunks(): AsyncGenerator<Buffer> {
      let next = first;
      let offset = 0;
      for (;;) {
        const chunk = next.payload;
        offset += chunk.length;
        if (chunk.length > 0) yield chunk;
        o.signal?.throwIfAborted(); // an aborted read is a failure, never a file that looks complete
        if (next.result.eof || chunk.length === 0) return;
        if (offset > max) return; // grew while being read: stop at the cap
        next = await read(offset);
      }
    }
    return { size: first.result.size, chunks: chunks() };
  }

  /** Writes a whole file from chunks (replacing it; parent directories are made), capped at maxBytes. */
  async write(file: string, data: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, o: Signal & { mode?: number; maxBytes?: number } = {}): Promise<ResultOf<'files.write'>> {
    const agent = this.#agent();
    const max = o.maxBytes ?? Number.POSITIVE_INFINITY;
    const signal = o.signal ? { signal: o.signal } : {};
    const tmp = path.posix.join(path.posix.dirname(file), `.${path.posix.basename(file)}.forkd-upload-${crypto.randomBytes(4).toString('hex')}`);
    let offset = 0;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      const chunk = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      await agent.call('files.write', { path: tmp, offset, truncate: offset === 0, mkdirs: true, ...(o.mode !== undefined ? { mode: o.mode } : {}) }, { payload: chunk, timeoutMs: CHUNK_TIMEOUT_MS, ...signal });
      offset += chunk.length;
    };
    try {
      for await (const c of data) {
        if (offset + pendingBytes + c.length > max) throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `uploads are limited to ${max} bytes`);
        pending.push(c);
        pendingBytes += c.length;
        if (pendingBytes >= LIMITS.maxFileChunkBytes) await flush();
      }
      if (pendingBytes > 0 || offset === 0) await flush();
      await agent.rename(tmp, file, signal);
    } catch (e) {
      await agent.remove(tmp, false).catch(() => undefined);
      throw e;
    }
    return { path: file, size: offset };
  }

  list(dir: string, depth?: number, o: Signal = {}): Promise<ResultOf<'files.list'>> {
    return this.#agent().list(dir, depth, o);
  }

  stat(file: string, o: Signal = {}): Promise<EntryInfoT> {
    return this.#agent().stat(file, o);
  }

  mkdir(dir: string, parents = true, o: Signal = {}): Promise<boolean> {
    return this.#agent().mkdir(dir, parents, o);
  }

  remove(file: string, recursive = false, o: Signal = {}): Promise<boolean> {
    return this.#agent().remove(file, recursive, o);
  }

  rename(from: string, to: string, o: Signal = {}): Promise<EntryInfoT> {
    return this.#agent().rename(from, to, o);
  }
}
