/**
 * Generates the OpenAPI 3.1 document from the route table (committed as openapi.json; a test
 * checks drift). Every exported, capitalised schema becomes a named component referenced by $ref.
 */
import { z } from 'zod';
import { routes, type RouteDef, type ResponseKind } from './routes.js';
import * as C from './common.js';
import * as Sn from './snapshots.js';
import * as Sb from './sandboxes.js';
import * as F from './files.js';
import * as W from './workspaces.js';
import * as Ev from './events.js';
import * as Mt from './metrics.js';

const COMPONENTS = '#/components/schemas/';

function registry(): z.core.$ZodRegistry<{ id: string }> {
  const reg = z.registry<{ id: string }>();
  for (const mod of [C, Sn, Sb, F, W, Ev, Mt]) {
    for (const [name, v] of Object.entries(mod)) {
      if (v instanceof z.ZodType && /^[A-Z]/.test(name) && !reg.has(v)) reg.add(v, { id: name });
    }
  }
  return reg;
}

function clean(value: unknown): unknown {
  const text = JSON.stringify(value).replaceAll('"#/$defs/', `"${COMPONENTS}`);
  const v = JSON.parse(text) as Record<string, unknown>;
  delete v.$schema;
  delete v.$id;
  delete v.$defs;
  return v;
}

export function openApiDocument(version: string): Record<string, unknown> {
  const reg = registry();
  const opts = { io: 'input', unrepresentable: 'any', uri: (id: string) => `${COMPONENTS}${id}` } as const;
  const all = z.toJSONSchema(reg, opts) as { schemas: Record<string, unknown> };
  const components = Object.fromEntries(Object.entries(all.schemas).map(([k, v]) => [k, clean(v)]));
  const schema = (s: z.ZodType): unknown => {
    const id = reg.get(s)?.id;
    return id ? { $ref: `${COMPONENTS}${id}` } : clean(z.toJSONSchema(s, { ...opts, metadata: reg } as never));
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [name, r] of Object.entries(routes) as Array<[string, RouteDef]>) {
    // Fastify-style :param -> OpenAPI {param}.
    const path = r.path.replace(/:([a-z][a-z0-9_]*)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, s] of [['path', r.params], ['query', r.query]] as const) {
      if (!s) continue;
      const js = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [pname, ps] of Object.entries(js.properties ?? {})) {
        parameters.push({ name: pname, in: where, required: where === 'path' || (js.required ?? []).includes(pname), schema: ps });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, s] of Object.entries(r.responses) as Array<[string, ResponseKind]>) {
      if (s === 'empty') responses[status] = { description: 'No content' };
      else if (s === 'octet') responses[status] = { description: 'Bytes', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } };
      else if (s === 'ndjson') responses[status] = { description: 'NDJSON stream', content: { 'application/x-ndjson': { schema: { type: 'string' } } } };
      else if (s === 'text') responses[status] = { description: 'Text', content: { 'text/plain': { schema: { type: 'string' } } } };
      else responses[status] = { description: Number(status) < 400 ? 'OK' : 'Error', content: { 'application/json': { schema: schema(s) } } };
    }
    if (r.stream === 'ndjson') {
      const ok = responses['200'] as { content: Record<string, unknown> };
      ok.content['application/x-ndjson'] = { schema: schema(Sb.ExecStreamLine), description: 'with stream=true: one JSON object per line' };
    }
    if (r.stream === 'sse') {
      const ok = responses['200'] as { content: Record<string, unknown> };
      ok.content['text/event-stream'] = { schema: schema(Ev.ForkdEvent), description: 'unless follow=false: `id: <offset>`, `event: <kind>`, `data: <ForkdEvent JSON>` per event; `: ping` comments; a final `event: error` (EventStreamError) when the daemon ends the stream' };
    }
    const op: Record<string, unknown> = { operationId: name, summary: r.summary, responses };
    if (parameters.length) op.parameters = parameters;
    if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: schema(r.body) } } };
    if (r.bodyKind === 'octet') op.requestBody = { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } };
    if (r.auth) op.security = [{ bearer: [] }];
    // Scopes: a read-only token may only GET; admin-only routes refuse user tokens too.
    const def = r;
    if (def.auth && (def.method !== 'GET' || def.admin) && !responses['403']) responses['403'] = { description: 'Error', content: { 'application/json': { schema: schema(C.ErrorBody) } } };
    if (def.admin) op['x-forkd-admin'] = true;
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'forkd', version, description: 'microVM sandboxes forked from warm snapshots' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: components },
    paths,
  };
}
