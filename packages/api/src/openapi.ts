/** Generates the OpenAPI 3.1 document from the route table (committed as openapi.json; a test checks drift). */
import { z } from 'zod';
import { routes, type RouteDef } from './routes.js';

function schema(s: z.ZodType): unknown {
  return z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });
}

export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [name, r] of Object.entries(routes) as Array<[string, RouteDef]>) {
    const path = r.path.replace(/:([a-z]+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, s] of [['path', r.params], ['query', r.query]] as const) {
      if (!s) continue;
      const js = schema(s) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [pname, ps] of Object.entries(js.properties ?? {})) {
        parameters.push({ name: pname, in: where, required: where === 'path' || (js.required ?? []).includes(pname), schema: ps });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, s] of Object.entries(r.responses)) {
      if (s === 'empty') responses[status] = { description: 'No content' };
      else if (s === 'octet') responses[status] = { description: 'Bytes', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } };
      else if (s === 'ndjson') responses[status] = { description: 'NDJSON stream', content: { 'application/x-ndjson': { schema: { type: 'string' } } } };
      else if (s === 'text') responses[status] = { description: 'Text', content: { 'text/plain': { schema: { type: 'string' } } } };
      else responses[status] = { description: Number(status) < 400 ? 'OK' : 'Error', content: { 'application/json': { schema: schema(s) } } };
    }
    const op: Record<string, unknown> = { operationId: name, summary: r.summary, responses };
    if (parameters.length) op.parameters = parameters;
    if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: schema(r.body) } } };
    if (r.bodyKind === 'octet') op.requestBody = { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } };
    if (r.auth) op.security = [{ bearer: [] }];
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'forkd', version, description: 'microVM sandboxes forked from warm snapshots' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
