/**
 * HTTP to the daemon over a Unix socket or TCP (node:http: fetch cannot reach Unix sockets).
 * Where the daemon is: options, else FORKD_URL ("http://host:port" or "unix:/path/forkd.sock"),
 * else the default socket <FORKD_HOME | $XDG_DATA_HOME/forkd | ~/.local/share/forkd>/forkd.sock.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { defaultSocketPath } from '@forkd/protocol';
import { errorFor, errorFromResponse } from './errors.js';

export interface ConnectionOptions {
  /** http(s)://host:port, or unix:/path/to/forkd.sock. */
  url?: string;
  /** Unix socket path (overrides url). */
  socketPath?: string;
  /** Bearer token (default FORKD_TOKEN). */
  token?: string;
  /** Per-request timeout in ms (default 120 s; long calls pass their own). */
  timeoutMs?: number;
  /** Certificate authorities (PEM) trusted for an https daemon, besides the system's (or NODE_EXTRA_CA_CERTS). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Send the token over plain http to a host that is not loopback (default: refused; env FORKD_ALLOW_INSECURE=1). */
  allowInsecure?: boolean;
}

export { defaultSocketPath };

export interface Endpoint {
  socketPath?: string;
  base?: URL;
  token?: string;
  timeoutMs: number;
  ca?: string | Buffer | Array<string | Buffer>;
}

const isLoopbackHost = (h: string): boolean => h === 'localhost' || h === '[::1]' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);

export function resolveEndpoint(o: ConnectionOptions = {}): Endpoint {
  const token = o.token ?? process.env.FORKD_TOKEN ?? undefined;
  const timeoutMs = o.timeoutMs ?? 120_000;
  const common = { timeoutMs, ...(token ? { token } : {}) };
  if (o.socketPath) return { socketPath: o.socketPath, ...common };
  const url = o.url ?? process.env.FORKD_URL;
  if (url) {
    if (url.startsWith('unix:')) return { socketPath: url.slice('unix:'.length), ...common };
    const base = new URL(url);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw errorFor('FORKD_E_INVALID_ARGUMENT', `unsupported daemon URL ${url}`);
    const allowInsecure = o.allowInsecure ?? process.env.FORKD_ALLOW_INSECURE === '1';
    if (token && base.protocol === 'http:' && !isLoopbackHost(base.hostname) && !allowInsecure) {
      throw errorFor('FORKD_E_INVALID_ARGUMENT', `refusing to send the token in cleartext to ${base.host}: use https:// (forkd serve --tls-cert/--tls-key), or allowInsecure: true / FORKD_ALLOW_INSECURE=1 if the network is trusted`);
    }
    return { base, ...common, ...(o.ca ? { ca: o.ca } : {}) };
  }
  return { socketPath: defaultSocketPath(), ...common };
}

export interface RawRequest {
  method: string;
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  /** Raw body (uploads). */
  body?: Readable | Buffer;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  stream: http.IncomingMessage;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/**
 * Sends a request; resolves with the response stream for any status (see readJson/expectOk).
 * Node keeps idle connections for reuse; when the daemon has closed one (its keep-alive timeout)
 * before this process noticed (e.g. its event loop was busy), the request fails on that socket with
 * ECONNRESET or EPIPE before any answer. An idempotent request with a replayable body is then sent
 * once more on a fresh connection (Node's documented pattern, `request.reusedSocket`).
 */
export async function send(ep: Endpoint, r: RawRequest): Promise<RawResponse> {
  try {
    return await sendOnce(ep, r);
  } catch (e) {
    if (!(e instanceof StaleSocketError)) throw e;
    return sendOnce(ep, r, false);
  }
}

class StaleSocketError extends Error {}

function sendOnce(ep: Endpoint, r: RawRequest, mayRetry = true): Promise<RawResponse> {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(r.query ?? {})) if (v !== undefined) qs.set(k, String(v));
  const pathWithQuery = `${r.path}${qs.size ? `?${qs.toString()}` : ''}`;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (ep.token) headers.authorization = `Bearer ${ep.token}`;
  let payload: Buffer | Readable | undefined;
  if (r.json !== undefined) {
    payload = Buffer.from(JSON.stringify(r.json));
    headers['content-type'] = 'application/json';
  } else if (r.body !== undefined) {
    payload = r.body;
    headers['content-type'] = r.contentType ?? 'application/octet-stream';
  }
  if (Buffer.isBuffer(payload)) headers['content-length'] = String(payload.length);
  const timeoutMs = r.timeoutMs ?? ep.timeoutMs;
  return new Promise((resolve, reject) => {
    const opts: http.RequestOptions = ep.socketPath
      ? { socketPath: ep.socketPath, path: pathWithQuery, method: r.method, headers }
      : { protocol: ep.base!.protocol, hostname: ep.base!.hostname, port: ep.base!.port, path: `${ep.base!.pathname.replace(/\/$/, '')}${pathWithQuery}`, method: r.method, headers, ...(ep.ca ? { ca: ep.ca } : {}) };
    const lib = ep.base?.protocol === 'https:' ? https : http;
    const req = lib.request(opts, (res) => {
      clearTimeout(timer);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, stream: res });
    });
    const timer = setTimeout(() => req.destroy(errorFor('FORKD_E_TIMEOUT', `no response from the forkd daemon within ${timeoutMs} ms (${r.method} ${r.path})`)), timeoutMs);
    const onAbort = () => req.destroy(errorFor('FORKD_E_UNAVAILABLE', 'request aborted'));
    r.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (mayRetry && req.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE') && IDEMPOTENT.has(r.method.toUpperCase()) && !(payload && !Buffer.isBuffer(payload))) {
        reject(new StaleSocketError(e.message));
      } else if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
        reject(errorFor('FORKD_E_UNAVAILABLE', `no forkd daemon at ${ep.socketPath ?? ep.base?.href} (${e.code}): start one with \`forkd serve\``, { endpoint: ep.socketPath ?? ep.base?.href }));
      } else reject(e instanceof Error && 'code' in e && String(e.code).startsWith('FORKD_E_') ? e : errorFor('FORKD_E_UNAVAILABLE', `request to the forkd daemon failed: ${e.message}`));
    });
    req.on('close', () => r.signal?.removeEventListener('abort', onAbort));
    if (payload === undefined) req.end();
    else if (Buffer.isBuffer(payload)) req.end(payload);
    else payload.pipe(req);
  });
}

/** Reads a whole response body (bounded). */
export async function readBody(res: RawResponse, maxBytes = 64 * 1024 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of res.stream as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > maxBytes) {
      res.stream.destroy();
      throw errorFor('FORKD_E_PAYLOAD_TOO_LARGE', `response larger than ${maxBytes} bytes`);
    }
    parts.push(c);
  }
  return Buffer.concat(parts, n);
}

/** Throws the typed error for a non-2xx response. */
export async function expectOk(res: RawResponse): Promise<void> {
  if (res.status >= 200 && res.status < 300) return;
  const text = (await readBody(res, 1024 * 1024)).toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  throw errorFromResponse(res.status, body);
}

export async function readJson<T>(res: RawResponse): Promise<T> {
  await expectOk(res);
  const buf = await readBody(res);
  return (buf.length ? JSON.parse(buf.toString('utf8')) : null) as T;
}
