/**
 * Files in a sandbox. Downloads stream from the guest with backpressure; uploads stream the
 * request body into the guest, which writes a temporary file and renames it into place (see the
 * engine's SandboxFiles). Both are size-capped.
 */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { ForkdError } from '@forkd/protocol';
import { MAX_DOWNLOAD_BYTES, MAX_UPLOAD_BYTES } from '@forkd/api';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';

type FileRoutes = 'readFile' | 'writeFile' | 'removeFile' | 'listFiles' | 'statFile' | 'mkdir' | 'renameFile';

export function fileHandlers(s: DaemonServices): Pick<Handlers, FileRoutes> {
  return {
    async readFile({ params, query, reply, signal, caller }) {
      return s.sandboxes.withSandbox(params.id, caller, 'files.read', async (sb) => {
        // The first chunk is read before any header is sent, so early errors still get a status.
        const file = await sb.files.readStream(query.path, { signal, maxBytes: MAX_DOWNLOAD_BYTES });
        const out = reply.raw;
        reply.hijack();
        out.writeHead(200, { 'content-type': 'application/octet-stream', 'x-forkd-file-size': String(file.size) });
        try {
          for await (const chunk of file.chunks) {
            // A client that goes away never drains: the abort (fired on 'close') ends the wait, so
            // the call slot and the buffered chunk are released at once.
            if (!out.write(chunk)) await once(out, 'drain', { signal });
          }
        } catch (e) {
          out.destroy(e as Error); // mid-stream failure: the client sees a truncated transfer, not a complete file
          throw signal.aborted ? signal.reason : e;
        }
        out.end();
        return 'sent' as const;
      });
    },
    async writeFile({ params, query, req, reply, signal, caller }) {
      // Any early refusal leaves the body unread: close the connection rather than drain it.
      reply.header('connection', 'close');
      const declared = Number(req.headers['content-length'] ?? NaN);
      if (Number.isFinite(declared) && declared > MAX_UPLOAD_BYTES) throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `uploads are limited to ${MAX_UPLOAD_BYTES} bytes`);
      const body = req.body as Readable | undefined;
      const data: AsyncIterable<Buffer> | Buffer[] = body && typeof body[Symbol.asyncIterator] === 'function' ? body : [];
      const mode = query.mode ? Number.parseInt(query.mode, 8) : undefined;
      return s.sandboxes.withSandbox(params.id, caller, 'files.write', async (sb) => {
        const written = await sb.files.write(query.path, data, { signal, maxBytes: MAX_UPLOAD_BYTES, ...(mode !== undefined ? { mode } : {}) });
        reply.removeHeader('connection');
        return { status: 200, body: { path: query.path, size: written.size } };
      });
    },
    async removeFile({ params, query, signal, caller }) {
      const removed = await s.sandboxes.withSandbox(params.id, caller, 'files.remove', (sb) => sb.files.remove(query.path, query.recursive ?? false, { signal }));
      return { status: 200, body: { removed } };
    },
    async listFiles({ params, query, signal, caller }) {
      return { status: 200, body: await s.sandboxes.withSandbox(params.id, caller, 'files.list', (sb) => sb.files.list(query.path, query.depth, { signal })) };
    },
    async statFile({ params, query, signal, caller }) {
      return { status: 200, body: await s.sandboxes.withSandbox(params.id, caller, 'files.stat', (sb) => sb.files.stat(query.path, { signal })) };
    },
    async mkdir({ params, body, signal, caller }) {
      const created = await s.sandboxes.withSandbox(params.id, caller, 'files.mkdir', (sb) => sb.files.mkdir(body.path, body.parents, { signal }));
      return { status: 200, body: { created } };
    },
    async renameFile({ params, body, signal, caller }) {
      return { status: 200, body: await s.sandboxes.withSandbox(params.id, caller, 'files.rename', (sb) => sb.files.rename(body.from, body.to, { signal })) };
    },
  };
}
