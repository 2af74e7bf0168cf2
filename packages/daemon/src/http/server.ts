/**
 * The daemon's listeners as servers facing hostile clients: timeouts that end slow or silent
 * connections before they are authenticated, connection caps on TCP (per peer and in total),
 * optional TLS, and the Host check that keeps DNS-rebound web pages out.
 *
 * Authenticated requests may stream for hours (exec output, downloads, uploads), so the only
 * timeout that covers a whole request is the socket's idle timeout, and authentication clears it
 * (see `authenticated`); Node's whole-request timeout is therefore off.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Socket } from 'node:net';
import { ForkdError } from '@forkd/protocol';

export const HTTP_LIMITS = {
  /** A request's headers must be complete within this (slowloris). */
  headersTimeoutMs: 15_000,
  /** A connection silent this long before its request is authenticated is closed. */
  idleTimeoutMs: 30_000,
  /** How often Node checks the headers timeout (its default, 30 s, would let slow headers live 45 s). */
  timeoutCheckIntervalMs: 2_000,
  /** An idle keep-alive connection between requests is closed after this. */
  keepAliveTimeoutMs: 10_000,
  /** Open TCP connections in total (across peers). */
  maxConnections: 1024,
  /** Open TCP connections from one peer address. */
  maxConnectionsPerPeer: 128,
} as const;

export interface ConnectionCaps {
  maxConnections: number;
  maxConnectionsPerPeer: number;
}

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** Timeouts for any server the daemon listens with (fastify's own included). */
export function applyTimeouts(server: http.Server): void {
  server.headersTimeout = HTTP_LIMITS.headersTimeoutMs;
  server.requestTimeout = 0;
  server.keepAliveTimeout = HTTP_LIMITS.keepAliveTimeoutMs;
  server.setTimeout(HTTP_LIMITS.idleTimeoutMs);
}

/** The request is authenticated: it may now be silent or slow for as long as it streams. */
export function authenticated(socket: Socket): void {
  socket.setTimeout(0);
}

/** A TCP (or TLS) server that feeds `handle`, with the daemon's timeouts and connection caps. */
export function createTcpServer(handle: http.RequestListener, caps: ConnectionCaps, tls: TlsFiles | null): http.Server {
  const options = { connectionsCheckingInterval: HTTP_LIMITS.timeoutCheckIntervalMs };
  const server: http.Server = tls ? https.createServer({ ...options, cert: tls.cert, key: tls.key }, handle) : http.createServer(options, handle);
  applyTimeouts(server);
  server.maxConnections = caps.maxConnections;
  const perPeer = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress ?? '?';
    const open = perPeer.get(peer) ?? 0;
    if (open >= caps.maxConnectionsPerPeer) {
      socket.destroy();
      return;
    }
    perPeer.set(peer, open + 1);
    socket.once('close', () => {
      const left = (perPeer.get(peer) ?? 1) - 1;
      if (left <= 0) perPeer.delete(peer);
      else perPeer.set(peer, left);
    });
  });
  // A TLS handshake that fails is the client's business, not an unhandled error.
  server.on('tlsClientError', (_err: Error, socket: Socket) => socket.destroy());
  return server;
}

const isLoopbackAddress = (a: string): boolean => a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');

/**
 * Refuses a TCP request whose Host is not this listener's own name: the address it was reached on
 * (with its port), `localhost` when that address is loopback, or one of `names` (the host given to
 * --bind and to --allow-host). Unix socket requests are not checked.
 */
export function checkHost(req: http.IncomingMessage, names: ReadonlySet<string>): void {
  const socket = req.socket as net.Socket | null; // null once the client's connection is gone
  if (!socket || socket.remoteAddress === undefined || socket.localAddress === undefined) return; // Unix socket
  const local = socket.localAddress.replace(/^::ffff:(?=\d+\.)/, '');
  const port = socket.localPort;
  const given = req.headers.host ?? '';
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(given);
  const host = (m?.[1] ?? m?.[2] ?? '').toLowerCase();
  const hostPort = m?.[3] !== undefined ? Number(m[3]) : 'encrypted' in socket ? 443 : 80;
  const ok = m !== null && hostPort === port && (host === local || names.has(host) || (host === 'localhost' && isLoopbackAddress(local)) || (net.isIP(host) !== 0 && host === socket.localAddress));
  if (!ok) {
    throw new ForkdError('FORKD_E_HOST_NOT_ALLOWED', `Host ${JSON.stringify(given)} is not a name of this listener (${local.includes(':') ? `[${local}]` : local}:${port}): refused (DNS rebinding guard); add the name with --allow-host`);
  }
}
