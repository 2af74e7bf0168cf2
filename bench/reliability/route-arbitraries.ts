/**
 * fast-check arbitraries for REST requests, derived from the route table: each route's params,
 * query and body schemas are turned into JSON Schema (as the OpenAPI document is) and from there
 * into arbitraries of valid values; a share of requests is then broken on purpose (a key dropped,
 * an unknown key, a value of the wrong type, junk bytes, wrong content types, bad tokens).
 */
import fc from 'fast-check';
import { z } from 'zod';
import { routes, type RouteDef } from '@forkd/api';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  prefixItems?: JsonSchema[];
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  enum?: Json[];
  const?: Json;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
}

const toSchema = (s: z.ZodType): JsonSchema => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

/** Values a schema accepts (as far as JSON Schema can say: zod refinements are not in it). */
export function arbitraryOf(s: JsonSchema, depth = 0): fc.Arbitrary<Json> {
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return fc.oneof(...alts.map((a) => arbitraryOf(a, depth + 1)));
  if (s.allOf?.length) return arbitraryOf(s.allOf[0]!, depth + 1);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer': {
      const min = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : -(2 ** 31));
      const max = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : 2 ** 31);
      return fc.oneof(fc.integer({ min: Math.max(min, Number.MIN_SAFE_INTEGER), max: Math.min(max, Number.MAX_SAFE_INTEGER) }), fc.constantFrom(min, max).filter(Number.isSafeInteger));
    }
    case 'number':
      return fc.double({ min: s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1e-3 : -1e9), max: s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1e-3 : 1e9), noNaN: true });
    case 'string': {
      if (s.pattern) return fc.stringMatching(new RegExp(s.pattern)).filter((v) => v.length >= (s.minLength ?? 0) && v.length <= (s.maxLength ?? Infinity));
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 200), unit: 'grapheme' });
    }
    case 'array': {
      const item = s.items ? arbitraryOf(s.items, depth + 1) : fc.constant(null as Json);
      return fc.array(item, { minLength: s.minItems ?? 0, maxLength: Math.min(s.maxItems ?? 4, depth > 2 ? 1 : 4) });
    }
    case 'object': {
      const props = s.properties ?? {};
      const required = new Set(s.required ?? []);
      // Optional keys are left out more often than not: zod refinements JSON Schema cannot carry
      // (e.g. "exactly one of", "not supported", egress entry syntax) make objects with many of
      // them set mostly invalid; with many optional keys, about two are set per object.
      const ABSENT = Symbol('absent');
      const optional = Object.keys(props).filter((k) => !required.has(k)).length;
      const absentWeight = Math.max(3, optional);
      const entries = Object.entries(props).map(([k, v]) => {
        const value = GUEST_PATH_KEYS.has(k) && v.type === 'string' && !v.pattern ? guestPath : arbitraryOf(v, depth + 1);
        const maybe = required.has(k) ? value : fc.oneof({ arbitrary: fc.constant(ABSENT), weight: absentWeight }, { arbitrary: value, weight: 2 });
        return maybe.map((x) => [k, x] as const);
      });
      const known = fc.tuple(...entries).map((kv) => Object.fromEntries(kv.filter(([, x]) => x !== ABSENT)) as Record<string, Json>);
      const extra = s.additionalProperties;
      if (Object.keys(props).length === 0 && extra && typeof extra === 'object') {
        const key = s.propertyNames ? arbitraryOf(s.propertyNames) as fc.Arbitrary<string> : fc.string({ minLength: 1, maxLength: 12 });
        return fc.dictionary(key, arbitraryOf(extra, depth + 1), { maxKeys: 4 }) as fc.Arbitrary<Json>;
      }
      return known as fc.Arbitrary<Json>;
    }
    default:
      return anyJson;
  }
}

/** Guest paths are absolute (a zod refinement JSON Schema does not carry): such keys get paths, now and then a relative one. */
const GUEST_PATH_KEYS = new Set(['path', 'from', 'to', 'cwd']);
const guestPath: fc.Arbitrary<Json> = fc.oneof(
  { arbitrary: fc.stringMatching(/^(\/[a-z0-9._-]{1,12}){1,4}$/), weight: 8 },
  { arbitrary: fc.constantFrom('/', '/tmp', '/proc/self/fd/0', 'relative/x', '../..', '/tmp/../../etc/passwd'), weight: 2 },
);

const anyJson: fc.Arbitrary<Json> = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>;

/** A valid value broken one way: a key dropped, an unknown key, or one value of the wrong type. */
function mutated(v: Json): fc.Arbitrary<Json> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return anyJson;
  const keys = Object.keys(v);
  return fc.oneof(
    fc.constant(keys.length ? Object.fromEntries(Object.entries(v).slice(1)) : { junk: 1 }),
    fc.tuple(fc.string({ minLength: 1, maxLength: 10 }), anyJson).map(([k, x]) => ({ ...v, [`x_${k}`]: x })),
    fc.tuple(fc.constantFrom(...(keys.length ? keys : ['k'])), anyJson).map(([k, x]) => ({ ...v, [k]: x })),
  );
}

export type Token = 'valid' | 'wrong' | 'none' | 'malformed';
export interface FuzzRequest {
  route: string;
  method: string;
  path: string;
  token: Token;
  headers: Record<string, string>;
  body: Buffer | null;
  /** A short description of the body for the report. */
  bodyText: string;
}

/** What the fuzzer may point requests at: real resources for harmless routes, made-up ones for the rest. */
export interface Targets {
  sandboxIds: string[];
  tags: string[];
  workspaces: string[];
}

/**
 * Routes whose valid requests would start real work (VM boots, RAM copies, builds) or end the
 * targets: these only ever see made-up ids, tags and names, so the run stays cheap and the
 * targets stay up (their validation, auth and 404 paths are still exercised).
 */
const COSTLY = new Set(['createSnapshot', 'deleteSnapshot', 'compactSnapshot', 'diffSnapshot', 'spawn', 'killSandbox', 'setTimeout', 'branch', 'fork', 'createWorkspace', 'deleteWorkspace', 'suspendWorkspace', 'resumeWorkspace']);

const junkSegment = fc.oneof(fc.string({ maxLength: 80, unit: 'binary' }), fc.constantFrom('..', '.', '%00', '%2e%2e%2f', 'sb-XYZ', '', 'a'.repeat(300)));

function pathParam(name: string, schema: JsonSchema | undefined, t: Targets, costly: boolean): fc.Arbitrary<string> {
  const real = name === 'id' ? t.sandboxIds : name === 'tag' ? t.tags : name === 'name' ? t.workspaces : [];
  const valid = (schema ? arbitraryOf(schema) : fc.string()) as fc.Arbitrary<string>;
  const choices: Array<fc.WeightedArbitrary<string>> = [{ arbitrary: valid, weight: 3 }, { arbitrary: junkSegment, weight: 2 }];
  if (real.length && !costly) choices.push({ arbitrary: fc.constantFrom(...real), weight: 6 });
  return fc.oneof(...choices);
}

/** Guest paths on a real sandbox stay under /tmp/r3 (a random `/` with recursive=true would wreck the target). */
function confine(v: Json): Json {
  if (typeof v === 'string') return v.startsWith('/') ? `/tmp/r3${v}` : v;
  if (Array.isArray(v) || v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, ['path', 'from', 'to', 'cwd'].includes(k) ? confine(x) : x]));
}

const junkBody = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
  fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
  fc.constantFrom('{', '[]', '"x"', '42', 'null', '{"a":', '\u0000', '{}'.repeat(1000), `${'['.repeat(5000)}${']'.repeat(5000)}`, '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}').map((s) => Buffer.from(s)),
  anyJson.map((j) => Buffer.from(JSON.stringify(j))),
);

export function requestArbitrary(t: Targets): fc.Arbitrary<FuzzRequest> {
  const perRoute = (Object.entries(routes) as Array<[string, RouteDef]>).map(([name, r]) => {
    const costly = COSTLY.has(name);
    const params = r.params ? toSchema(r.params) : null;
    const paramNames = [...r.path.matchAll(/:([a-z]+)/g)].map((m) => m[1]!);
    const pathArb = fc.tuple(...paramNames.map((p) => pathParam(p, params?.properties?.[p], t, costly)), fc.constant(0)).map((vals) => {
      let i = 0;
      const filled = r.path.replace(/:([a-z]+)/g, () => encodeURIComponent(vals[i++] as string));
      return { path: filled, real: vals.some((v) => typeof v === 'string' && t.sandboxIds.includes(v)) };
    });
    const querySchema = r.query ? toSchema(r.query) : null;
    const queryArb: fc.Arbitrary<string> = fc.oneof(
      { arbitrary: querySchema ? arbitraryOf(querySchema) : fc.constant({} as Json), weight: 4 },
      { arbitrary: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }) as fc.Arbitrary<Json>, weight: 1 },
    ).map((q) => {
      const entries = Object.entries((q ?? {}) as Record<string, Json>).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)] as [string, string]);
      return entries.length ? `?${new URLSearchParams(entries).toString()}` : '';
    });
    const bodySchema = r.body && r.bodyKind !== 'octet' ? toSchema(r.body) : null;
    // Valid means valid: values the route's zod schema accepts (refinements included).
    const validBody = bodySchema && r.body ? arbitraryOf(bodySchema).filter((v) => r.body!.safeParse(v).success) : anyJson;
    const bodyArb: fc.Arbitrary<{ body: Buffer | null; json: Json | undefined; kind: string }> = r.bodyKind === 'octet'
      ? fc.uint8Array({ maxLength: 64 * 1024 }).map((b) => ({ body: Buffer.from(b), json: undefined, kind: 'octet' }))
      : fc.oneof(
          { arbitrary: validBody.map((j) => ({ body: null, json: j, kind: 'valid' })), weight: r.body ? 5 : 1 },
          { arbitrary: validBody.chain(mutated).map((j) => ({ body: null, json: j, kind: 'mutated' })), weight: 2 },
          { arbitrary: junkBody.map((b) => ({ body: b, json: undefined, kind: 'junk' })), weight: 2 },
          { arbitrary: fc.constant({ body: null, json: undefined, kind: 'none' }), weight: r.body ? 1 : 4 },
        );
    const contentType = fc.constantFrom('application/json', 'application/json', 'application/json', 'text/plain', 'application/octet-stream', 'application/json; charset=latin1', '');
    return fc.tuple(pathArb, queryArb, bodyArb, contentType, fc.constantFrom<Token>('valid', 'valid', 'valid', 'valid', 'valid', 'valid', 'wrong', 'none', 'malformed'), fc.integer({ min: 0, max: 19 })).map(([p, q, b, ct, token, wrongMethod]) => {
      const json = b.json !== undefined ? (p.real ? confine(b.json) : b.json) : undefined;
      const body = json !== undefined ? Buffer.from(JSON.stringify(json)) : b.body;
      const headers: Record<string, string> = {};
      if (body && ct) headers['content-type'] = r.bodyKind === 'octet' && ct === 'application/json' ? 'application/octet-stream' : ct;
      // A few requests use a method the route does not have (404/405 territory).
      const method = wrongMethod === 0 ? (r.method === 'GET' ? 'PATCH' : 'GET') : r.method;
      const text = body ? body.subarray(0, 300).toString('utf8').replace(/[^\x20-\x7e]/g, '?') : '';
      return { route: name, method, path: p.path + q, token, headers, body: method === 'GET' ? null : body, bodyText: `${b.kind}${text ? `: ${text}` : ''}` };
    });
  });
  return fc.oneof(...perRoute);
}
