import { FORKD_VERSION } from '@forkd/protocol';
import { openApiDocument } from '@forkd/api';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';

export function metaHandlers(s: DaemonServices): Pick<Handlers, 'healthz' | 'version' | 'metrics' | 'openapi'> {
  let doc: Record<string, unknown> | null = null;
  return {
    async healthz() {
      return { status: 200, body: { ok: true } };
    },
    async version() {
      const env = await s.engine.platform.resolve().catch(() => null);
      return { status: 200, body: { version: FORKD_VERSION, api: 'v1', qemu: env?.qemuVersion ?? null, accel: env?.accel ?? null } };
    },
    async metrics({ reply }) {
      reply.header('content-type', s.metrics.registry.contentType);
      return { status: 200, body: await s.metrics.registry.metrics() };
    },
    async openapi() {
      doc ??= openApiDocument(FORKD_VERSION);
      return { status: 200, body: doc };
    },
  };
}
