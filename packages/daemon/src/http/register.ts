/**
 * Registers every route of the API table on fastify: the table's zod schemas validate params,
 * query and body before a handler runs, and the handler's JSON answer is checked against the
 * declared response schema (a mismatch is our bug: logged and answered 500).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ForkdError } from '@forkd/protocol';
import { routes, type RouteDef, type RouteName } from '@forkd/api';
import { zodMessage } from './errors.js';
import type { Caller } from './auth.js';
import { assertScope } from '../tenancy/access.js';

type R = typeof routes;
type Out<T> = T extends z.ZodType ? z.output<T> : undefined;
type Field<K extends RouteName, F extends string> = R[K] extends Record<F, infer S> ? Out<S> : undefined;

export interface Ctx<K extends RouteName> {
  params: Field<K, 'params'>;
  query: Field<K, 'query'>;
  body: Field<K, 'body'>;
  req: FastifyRequest;
  reply: FastifyReply;
  /** Who calls: identity and scope (the local admin on a socket without a token file). */
  caller: Caller;
  /** Aborted when the client goes away before the answer is complete. */
  signal: AbortSignal;
}

/** A JSON answer, or 'sent' when the handler wrote a stream itself. */
export type Answer = { status: number; body?: unknown } | 'sent';
export type Handlers = { [K in RouteName]: (ctx: Ctx<K>) => Promise<Answer> };

export interface RegisterOptions {
  /** The caller of a request (throws a 401 ForkdError). */
  authenticate: (req: FastifyRequest) => Caller;
  onResponseMismatch: (route: string, issues: string) => void;
}

function parse(schema: z.ZodType | undefined, value: unknown, where: string): unknown {
  if (!schema) return undefined;
  const r = schema.safeParse(value ?? (where === 'body' ? {} : value));
  if (!r.success) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', zodMessage(r.error.issues, where), { where });
  return r.data;
}

export function registerRoutes(app: FastifyInstance, handlers: Handlers, opts: RegisterOptions): void {
  for (const [name, def] of Object.entries(routes) as Array<[RouteName, RouteDef]>) {
    app.route({
      method: def.method,
      url: def.path,
      ...(def.bodyKind === 'octet' ? { bodyLimit: Number.MAX_SAFE_INTEGER } : {}),
      handler: async (req, reply) => {
        const caller: Caller = def.auth ? opts.authenticate(req) : { identity: 'anonymous', scope: 'read-only' };
        assertScope(caller, def.method, { name, admin: def.admin === true, readOnlyAllowed: def.readOnlyAllowed === true });
        const params = parse(def.params, req.params, 'params');
        const query = parse(def.query, def.query ? req.query : undefined, 'query');
        const body = def.bodyKind === 'octet' ? req.body : parse(def.body, req.body, 'body');
        const ac = new AbortController();
        reply.raw.once('close', () => {
          if (!reply.raw.writableFinished) ac.abort(new ForkdError('FORKD_E_UNAVAILABLE', 'client went away'));
        });
        const handler = handlers[name] as (c: Ctx<RouteName>) => Promise<Answer>;
        const answer = await handler({ params, query, body, req, reply, caller, signal: ac.signal } as Ctx<RouteName>);
        if (answer === 'sent') return reply;
        const declared = def.responses[answer.status];
        if (declared === 'empty' || answer.body === undefined) return reply.status(answer.status).send();
        if (declared && typeof declared === 'object') {
          const check = declared.safeParse(answer.body);
          if (!check.success) {
            opts.onResponseMismatch(name, zodMessage(check.error.issues, 'response'));
            throw new ForkdError('FORKD_E_INTERNAL', `the ${name} response does not match its schema`);
          }
        }
        return reply.status(answer.status).send(answer.body);
      },
    });
  }
}
