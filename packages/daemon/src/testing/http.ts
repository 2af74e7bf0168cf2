/** Raw HTTP to a test daemon (for malformed requests the SDK would never send). */
import http from 'node:http';
import type { TestDaemon } from './daemon.js';

export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: unknown;
}

export function raw(d: TestDaemon, r: { method: string; path: string; body?: string | Buffer; headers?: Record<string, string>; tcp?: boolean; timeoutMs?: number }): Promise<RawReply> {
  const useTcp = r.tcp ?? d.url !== null;
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  if (r.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) headers['content-length'] = String(Buffer.byteLength(r.body));
  return new Promise((resolve, reject) => {
    const u = useTcp && d.url ? new URL(d.url) : null;
    const req = http.request({ agent: false, ...(u ? { hostname: u.hostname, port: u.port } : { socketPath: d.socketPath }), method: r.method, path: r.path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(r.timeoutMs ?? 60_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(r.body);
  });
}

export function errorCode(r: RawReply): string | undefined {
  return (r.json as { error?: { code?: string } } | null)?.error?.code;
}
