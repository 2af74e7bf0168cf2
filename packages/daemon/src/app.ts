/**
 * The HTTP application: fastify with the API's routes, bearer auth, error bodies with stable
 * codes, audit lines and request metrics. Knows nothing about VMs: handlers go through services.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import { routes } from '@forkd/api';
import { registerRoutes, type Handlers } from './http/register.js';
import { errorLogFields, httpError } from './http/errors.js';
import { AuthFailures, type Caller, type TokenSet } from './http/auth.js';
import { applyTimeouts, authenticated, checkHost, HTTP_LIMITS } from './http/server.js';
import type { AuditLog } from './audit.js';
import type { DaemonServices } from './handlers/context.js';
import { metaHandlers } from './handlers/meta.js';
import { sandboxHandlers } from './handlers/sandboxes.js';
import { processHandlers } from './handlers/processes.js';
import { fileHandlers } from './handlers/files.js';
import { templateHandlers } from './handlers/templates.js';
import { snapshotHandlers } from './handlers/snapshots.js';
import { branchingHandlers } from './handlers/branching.js';
import { registryHandlers } from './handlers/registry.js';
import { workspaceHandlers } from './handlers/workspaces.js';
import { uiHandlers } from './handlers/ui.js';
import { UiSessions } from './http/ui-sessions.js';
import { assertNotCrossSite, cookieValue } from './http/ui-auth.js';
import { OPEN_UI_PATHS, UI_PATHS, registerUiAssets } from './http/ui-static.js';
import { eventHandlers } from './events/stream.js';
import { sandboxMetricsHandlers } from './handlers/sandbox-metrics.js';

/** JSON bodies: code and stdin are capped at 4 MiB by the schemas; this bounds parsing. */
export const JSON_BODY_LIMIT = 8 * 1024 * 1024;

export interface AppOptions {
  services: DaemonServices;
  tokens: TokenSet;
  audit: AuditLog;
  isDraining: () => boolean;
  /** Called on every request (idle tracking). */
  onActivity?: () => void;
  /** Names a TCP request's Host may carry besides the listener's own address (--bind's host, --allow-host). */
  hostNames?: ReadonlySet<string>;
}

type AuthedRequest = FastifyRequest & { caller?: Caller };

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const { services: s } = o;
  const app = Fastify({
    logger: false, bodyLimit: JSON_BODY_LIMIT, return503OnClosing: true, genReqId: () => crypto.randomBytes(6).toString('hex'),
    connectionTimeout: HTTP_LIMITS.idleTimeoutMs, keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs, requestTimeout: 0,
  });
  applyTimeouts(app.server);
  const authRequired = new Map(Object.values(routes).map((r) => [`${r.method} ${r.path}`, r.auth]));
  const hostNames = o.hostNames ?? new Set<string>();
  // Uploads: the raw stream goes to the handler, which counts and caps it.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  for (const p of OPEN_UI_PATHS) authRequired.set(`GET ${p}`, false);
  const failures = new AuthFailures();
  const ui = new UiSessions();
  // A peer past the failure limit gets 429 before its token is looked at (A5: no guessing at speed).
  // Without an Authorization header, the web view's session cookie may stand in for the token.
  const checkToken = (req: FastifyRequest): Caller => {
    if (!o.tokens.required) return o.tokens.check(undefined);
    const peer = req.raw.socket?.remoteAddress ?? 'unix';
    failures.assertAllowed(peer);
    const sid = req.headers.authorization === undefined ? cookieValue(req.headers.cookie) : undefined;
    let caller: Caller | null;
    try {
      caller = sid !== undefined ? ui.caller(sid) : o.tokens.check(req.headers.authorization);
    } catch (e) {
      failures.failed(peer);
      if (req.url.startsWith('/ui') && e instanceof ForkdError && e.code === 'FORKD_E_UNAUTHORIZED') throw new ForkdError('FORKD_E_UNAUTHORIZED', 'the web view needs a session: open it with `forkd ui`');
      throw e;
    }
    if (caller === null) {
      failures.failed(peer);
      throw new ForkdError('FORKD_E_UNAUTHORIZED', 'the web view session is unknown or expired: run `forkd ui` again');
    }
    if (sid !== undefined) assertNotCrossSite(req.raw);
    return caller;
  };
  const routeOf = new Map<string, string>(Object.values(routes).map((r) => [`${r.method} ${r.path}`, r.path]));
  for (const p of UI_PATHS) routeOf.set(`GET ${p}`, p);

  app.addHook('onRequest', async (req, reply) => {
    o.onActivity?.();
    const started = process.hrtime.bigint();
    // Read now: once a client's connection is destroyed, the request no longer holds its socket.
    const remote = req.raw.socket?.remoteAddress ?? 'unix';
    reply.raw.once('close', () => {
      const route = req.routeOptions.url ? routeOf.get(`${req.method} ${req.routeOptions.url}`) ?? null : null;
      const status = reply.raw.statusCode;
      const latency = Number(process.hrtime.bigint() - started) / 1e6;
      const label = route ?? 'unmatched';
      s.metrics.http.inc({ route: label, status: String(status) });
      s.metrics.httpSeconds.observe({ route: label }, latency / 1000);
      if (route === '/healthz') return;
      const params = (req.params ?? {}) as Record<string, string>;
      const caller = (req as AuthedRequest).caller;
      // Unauthenticated traffic is counted by the request metric; its audit lines are rate-limited.
      (caller === undefined ? o.audit.writeUnauthenticated.bind(o.audit) : o.audit.write.bind(o.audit))({
        time: new Date().toISOString(),
        caller: caller?.identity ?? 'unauthenticated',
        ...(caller ? { scope: caller.scope } : {}),
        remote,
        method: req.method,
        path: req.url.split('?')[0] ?? req.url,
        route,
        resource: params.id ?? params.tag ?? params.name ?? null,
        status,
        latency_ms: Math.round(latency * 10) / 10,
        request_id: req.id,
      });
    });
    // Before any body is read: a request for another host, or without a valid token, is answered
    // and its connection closed (the error handler adds `connection: close`).
    checkHost(req.raw, hostNames);
    const needsAuth = req.routeOptions.url === undefined || (authRequired.get(`${req.method} ${req.routeOptions.url}`) ?? true);
    (req as AuthedRequest).caller = needsAuth ? checkToken(req) : { identity: 'anonymous', scope: 'read-only' };
    authenticated(req.raw.socket);
    if (o.isDraining() && req.url !== '/healthz') throw new ForkdError('FORKD_E_UNAVAILABLE', 'the daemon is shutting down');
  });

  app.setErrorHandler(async (err, req, reply) => {
    const fe = httpError(err);
    s.metrics.errors.inc({ code: fe.code });
    const logged = errorLogFields(fe);
    if (logged) s.log.error({ ...logged, route: req.routeOptions.url, req: req.id }, 'request failed');
    if (reply.sent || reply.raw.headersSent) return;
    if (fe.code === 'FORKD_E_UNAUTHORIZED' || fe.code === 'FORKD_E_HOST_NOT_ALLOWED' || (fe.code === 'FORKD_E_RATE_LIMITED' && (req as AuthedRequest).caller === undefined)) reply.header('connection', 'close');
    return reply.status(fe.status).type('application/json').send({ error: fe.toJSON() });
  });
  app.setNotFoundHandler(async (req, reply) => {
    return reply.status(404).send({ error: new ForkdError('FORKD_E_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`).toJSON() });
  });

  const handlers: Handlers = {
    ...metaHandlers(s),
    ...snapshotHandlers(s),
    ...sandboxHandlers(s),
    ...processHandlers(s),
    ...fileHandlers(s),
    ...branchingHandlers(s),
    ...registryHandlers(s),
    ...workspaceHandlers(s),
    ...uiHandlers(ui, failures),
    ...eventHandlers(s.events),
    ...sandboxMetricsHandlers(s),
    ...templateHandlers(s),
  } as Handlers;
  registerRoutes(app, handlers, {
    authenticate: (req) => (req as AuthedRequest).caller ?? checkToken(req),
    onResponseMismatch: (route, issues) => s.log.error({ route, issues }, 'response does not match its schema'),
  });
  registerUiAssets(app);
  await app.ready();
  return app;
}
