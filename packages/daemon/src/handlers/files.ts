/**
 * Files in a sandbox. Downloads stream from the agent in chunks with backpressure; uploads stream
 * the request body to a temporary file beside the target and rename it into place, so a failed
 * or oversized upload never leaves a half-written file. Both are size-capped.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ForkdError, LIMITS } from '@forkd/protocol';
import { MAX_DOWNLOAD_BYTES, MAX_UPLOAD_BYTES } from '@forkd/api';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';

type FileRoutes = 'readFile' | 'writeFile' | 'removeFile' | 'listFiles' | 'statFile' | 'mkdir' | 'renameFile';

export function fileHandlers(s: DaemonServices): Pick<Handlers, FileRoutes> {
  return {
    async readFile({ params, query, reply, signal }) {
      return s.sandboxes.withAgent(params.id, 'files.read', async (a) => {
        const st = await a.stat(query.path, { signal });
        if (st.type === 'dir') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${query.path} is a directory`, { path: query.path });
        if (st.size > MAX_DOWNLOAD_BYTES) throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `${query.path} is ${st.size} bytes; downloads are limited to ${MAX_DOWNLOAD_BYTES}`, { size: st.size });
        // The first chunk is read before any header is sent, so early errors still get a status.
        let offset = 0;
        let first = await a.call('files.read', { path: query.path, offset, length: LIMITS.maxFileChunkBytes }, { signal, timeoutMs: 60_000 });
        const out = reply.raw;
        reply.hijack();
        out.writeHead(200, { 'content-type': 'application/octet-stream', 'x-forkd-file-size': String(first.result.size) });
        for (;;) {
          const chunk = first.payload;
          offset += chunk.length;
          if (chunk.length > 0 && !out.write(chunk)) await new Promise((r) => out.once('drain', r));
          if (first.result.eof || chunk.length === 0 || signal.aborted) break;
          if (offset > MAX_DOWNLOAD_BYTES) break; // grew while being read: stop at the cap
          first = await a.call('files.read', { path: query.path, offset, length: LIMITS.maxFileChunkBytes }, { signal, timeoutMs: 60_000 }).catch((e: unknown) => {
            out.destroy(e as Error); // mid-stream failure: the client sees a truncated transfer, not a complete file
            throw e;
          });
        }
        out.end();
        return 'sent' as const;
      });
    },
    async writeFile({ params, query, req, reply, signal }) {
      // Any early refusal leaves the body unread: close the connection rather than drain it.
      reply.header('connection', 'close');
      const declared = Number(req.headers['content-length'] ?? NaN);
      if (Number.isFinite(declared) && declared > MAX_UPLOAD_BYTES) throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `uploads are limited to ${MAX_UPLOAD_BYTES} bytes`);
      const body = req.body as Readable | undefined;
      const mode = query.mode ? Number.parseInt(query.mode, 8) : undefined;
      const tmp = path.posix.join(path.posix.dirname(query.path), `.${path.posix.basename(query.path)}.forkd-upload-${crypto.randomBytes(4).toString('hex')}`);
      return s.sandboxes.withAgent(params.id, 'files.write', async (a) => {
        let offset = 0;
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        const flush = async (): Promise<void> => {
          const chunk = Buffer.concat(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
          await a.call('files.write', { path: tmp, offset, truncate: offset === 0, mkdirs: true, ...(mode !== undefined ? { mode } : {}) }, { payload: chunk, signal, timeoutMs: 60_000 });
          offset += chunk.length;
        };
        try {
          if (body && typeof body[Symbol.asyncIterator] === 'function') {
            for await (const c of body as AsyncIterable<Buffer>) {
              if (offset + pendingBytes + c.length > MAX_UPLOAD_BYTES) throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `uploads are limited to ${MAX_UPLOAD_BYTES} bytes`);
              pending.push(c);
              pendingBytes += c.length;
              if (pendingBytes >= LIMITS.maxFileChunkBytes) await flush();
            }
          }
          if (pendingBytes > 0 || offset === 0) await flush();
          await a.rename(tmp, query.path, { signal });
        } catch (e) {
          await a.remove(tmp, false).catch(() => undefined);
          throw e;
        }
        reply.removeHeader('connection');
        return { status: 200, body: { path: query.path, size: offset } };
      });
    },
    async removeFile({ params, query, signal }) {
      const removed = await s.sandboxes.withAgent(params.id, 'files.remove', (a) => a.remove(query.path, query.recursive ?? false, { signal }));
      return { status: 200, body: { removed } };
    },
    async listFiles({ params, query, signal }) {
      return { status: 200, body: await s.sandboxes.withAgent(params.id, 'files.list', (a) => a.list(query.path, query.depth, { signal })) };
    },
    async statFile({ params, query, signal }) {
      return { status: 200, body: await s.sandboxes.withAgent(params.id, 'files.stat', (a) => a.stat(query.path, { signal })) };
    },
    async mkdir({ params, body, signal }) {
      const created = await s.sandboxes.withAgent(params.id, 'files.mkdir', (a) => a.mkdir(body.path, body.parents, { signal }));
      return { status: 200, body: { created } };
    },
    async renameFile({ params, body, signal }) {
      return { status: 200, body: await s.sandboxes.withAgent(params.id, 'files.rename', (a) => a.rename(body.from, body.to, { signal })) };
    },
  };
}
