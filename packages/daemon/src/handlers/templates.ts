/** Templates: build (image with a cached layer per step, then the warm snapshot) and their content-addressed files. */
import type { Readable } from 'node:stream';
import { ForkdError, LIMITS } from '@forkd/protocol';
import { checkMachineSize, hasTemplateFile, putTemplateFile } from '@forkd/engine';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import { assertCallerTag } from './tags.js';
import { snapshotView } from './snapshots.js';

type TemplateRoutes = 'buildTemplate' | 'templateFilesMissing' | 'putTemplateFile';

export function templateHandlers(s: DaemonServices): Pick<Handlers, TemplateRoutes> {
  return {
    async buildTemplate({ body, req, caller }) {
      assertCallerTag(body.tag);
      // `from` is merged on the template as the client sent it: the validated body has every
      // default filled in, which would read as "set" and override what the parent recipe sets.
      const raw = (req.body as { template?: unknown } | undefined)?.template ?? body.template;
      const recipe = await s.engine.resolveTemplate(raw, `template ${body.template.name}`);
      const mem = body.mem_mib ?? recipe.default_mem_mib;
      checkMachineSize(recipe, mem, 1); // before the job is queued: a refusal is a 400, not a failed job
      const existing = await s.engine.getSnapshot(body.tag).catch(() => null);
      if (existing) s.owners.assertChangeable(caller, existing); // a rebuild replaces (or reuses) the caller's own snapshot
      const r = await s.writes.produce({ tag: body.tag, kind: 'create', source: null, owner: caller.identity, wait: body.wait === true, memMib: mem, replace: existing !== null }, async (progress) => {
        const t0 = Date.now();
        const built = await s.engine.buildTemplate({ tag: body.tag, recipe, memMib: mem, onProgress: progress });
        return {
          snapshot: snapshotView(built.snapshot, 0, { owner: caller.identity, shared: false }),
          template: recipe.name,
          image_key: built.image.key,
          image_cached: built.image.cached,
          snapshot_cached: built.snapshot_cached,
          steps: built.image.steps,
          build_ms: Date.now() - t0,
        };
      });
      return r.waited ? { status: 201, body: r.result } : { status: 202, body: r.job };
    },
    async templateFilesMissing({ body }) {
      const missing: string[] = [];
      for (const d of new Set(body.sha256)) if (!(await hasTemplateFile(s.engine.layout, d))) missing.push(d);
      return { status: 200, body: { missing } };
    },
    async putTemplateFile({ params, req, reply }) {
      reply.header('connection', 'close'); // an early refusal leaves the body unread
      const declared = Number(req.headers['content-length'] ?? NaN);
      const max = LIMITS.templates.maxCopyFileBytes;
      if (Number.isFinite(declared) && declared > max) throw new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', `a template file may hold at most ${max} bytes`, { max_bytes: max });
      const stream = req.body as Readable | undefined;
      const data: AsyncIterable<Buffer> = stream && typeof stream[Symbol.asyncIterator] === 'function' ? stream : (async function* () {})();
      const stored = await putTemplateFile(s.engine.layout, params.sha256, data);
      reply.removeHeader('connection');
      return { status: 201, body: stored };
    },
  };
}
