/**
 * The web view's files (packages/daemon/web: plain HTML, CSS and JavaScript; no framework, nothing
 * fetched from elsewhere at run time), read once at start and served with a strict content security
 * policy. The page is behind the API's auth like any route; only the login page (which holds no data
 * and only trades the code in its URL fragment for the cookie) is open.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** src/http or dist/http: the web folder is two levels up either way. */
const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');

interface Asset {
  url: string;
  file: string;
  type: string;
  /** Served without auth (the login page and its script). */
  open: boolean;
}

const ASSETS: Asset[] = [
  { url: '/ui', file: 'index.html', type: 'text/html; charset=utf-8', open: false },
  { url: '/ui/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8', open: false },
  { url: '/ui/tree-layout.js', file: 'tree-layout.js', type: 'text/javascript; charset=utf-8', open: false },
  { url: '/ui/app.css', file: 'app.css', type: 'text/css; charset=utf-8', open: false },
  { url: '/ui/login', file: 'login.html', type: 'text/html; charset=utf-8', open: true },
  { url: '/ui/login.js', file: 'login.js', type: 'text/javascript; charset=utf-8', open: true },
];

/** Every path of the web view's files (named in metrics and audit lines like API routes). */
export const UI_PATHS: readonly string[] = ASSETS.map((a) => a.url);

/** The paths served without auth (the app's auth hook looks them up). */
export const OPEN_UI_PATHS: ReadonlySet<string> = new Set(ASSETS.filter((a) => a.open).map((a) => a.url));

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

export function registerUiAssets(app: FastifyInstance, webDir = WEB_DIR): void {
  for (const a of ASSETS) {
    const body = readFileSync(path.join(webDir, a.file));
    app.get(a.url, async (_req, reply) => reply.headers(SECURITY_HEADERS).type(a.type).send(body));
  }
}
