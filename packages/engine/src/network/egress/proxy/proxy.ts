/**
 * The egress proxy: one process per uplink (not per child), listening on the proxy address in the
 * uplink namespace. Each child's nft rules send its guest's TCP 80/443 and DNS here; the child is
 * known by its source address (its unique host-side address). For HTTP and TLS the proxy reads the
 * name the guest asks for (Host, SNI), checks it against that child's policy, resolves it itself
 * (a forged DNS answer in the guest changes nothing), refuses always-denied addresses and splices the
 * connection. DNS queries for allowed names are forwarded to the uplink's resolver; others get NXDOMAIN.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { promises as dnsp } from 'node:dns';
import { readFileSync } from 'node:fs';
import type { EgressPolicy } from '@forkd/protocol';
import type { EgressConfig } from '../config.js';
import { sniffHttpHost, sniffTlsSni, MAX_SNIFF_BYTES, type Sniffed } from './sniff.js';
import { parseDnsQuery, dnsErrorResponse, RCODE } from './dns-message.js';
import { nameAllowed, addressAllowed, addressRulesOf, type AddressRules } from './decide.js';

const SNIFF_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;
const DNS_TIMEOUT_MS = 3_000;
const MAX_CACHE_TTL_S = 60;
const MAX_CACHE_NAMES = 10_000;

export interface ProxyStats { accepted: number; spliced: number; refused: number; dnsForwarded: number; dnsRefused: number }

const plain = (addr: string | undefined) => (addr ?? '').replace(/^::ffff:/, '');

/** host:port -> [host, port]; a bare address gets port 53. */
function hostPort(server: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(server);
  if (!m || net.isIP(m[1]!) === 0) throw new Error(`bad resolver "${server}"`);
  return [m[1]!, m[2] ? Number(m[2]) : 53];
}

function systemResolvers(): string[] {
  try {
    return [...readFileSync('/etc/resolv.conf', 'utf8').matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]!);
  } catch {
    return [];
  }
}

export class EgressProxy {
  readonly stats: ProxyStats = { accepted: 0, spliced: 0, refused: 0, dnsForwarded: 0, dnsRefused: 0 };
  private readonly policies = new Map<string, EgressPolicy>();
  private readonly rules: AddressRules;
  private readonly resolver = new dnsp.Resolver({ timeout: DNS_TIMEOUT_MS, tries: 2 });
  private readonly upstream: [string, number];
  private readonly servers: Array<net.Server | dgram.Socket> = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly cache = new Map<string, { addrs: string[]; until: number }>();

  constructor(private readonly config: EgressConfig) {
    this.rules = addressRulesOf(config);
    const resolvers = config.resolvers.length ? config.resolvers : systemResolvers();
    if (resolvers.length === 0) throw new Error('no DNS resolver: give one (--egress-resolver) or configure /etc/resolv.conf');
    this.upstream = hostPort(resolvers[0]!);
    this.resolver.setServers(resolvers.map((r) => { const [h, p] = hostPort(r); return net.isIP(h) === 6 ? `[${h}]:${p}` : `${h}:${p}`; }));
  }

  setPolicy(hostAddr: string, policy: EgressPolicy): void { this.policies.set(hostAddr, policy); }
  removePolicy(hostAddr: string): boolean { return this.policies.delete(hostAddr); }
  children(): string[] { return [...this.policies.keys()]; }

  async listen(): Promise<void> {
    const { addr, httpPort, tlsPort, dnsPort } = this.config.proxy;
    const tcp = (port: number, onConn: (s: net.Socket) => void) => new Promise<void>((resolve, reject) => {
      const server = net.createServer(onConn);
      server.once('error', reject);
      server.listen({ host: addr, port }, () => { server.off('error', reject); resolve(); });
      this.servers.push(server);
    });
    await tcp(httpPort, (s) => this.onWebConnection(s, 80, sniffHttpHost));
    await tcp(tlsPort, (s) => this.onWebConnection(s, 443, sniffTlsSni));
    await tcp(dnsPort, (s) => this.onDnsTcp(s));
    const udp = dgram.createSocket(net.isIP(addr) === 6 ? 'udp6' : 'udp4');
    udp.on('message', (msg, rinfo) => void this.answerDns(msg, rinfo.address).then((r) => r && udp.send(r, rinfo.port, rinfo.address)));
    await new Promise<void>((resolve, reject) => { udp.once('error', reject); udp.bind(dnsPort, addr, () => resolve()); });
    this.servers.push(udp);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => (s instanceof net.Server ? s.close(() => r()) : s.close(() => r())))));
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
  }

  private refuse(client: net.Socket, port: number, why: string): void {
    this.stats.refused++;
    if (port === 80) {
      const body = `forkd egress policy: ${why}\n`;
      client.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    } else {
      client.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31])); // TLS alert: fatal access_denied
    }
  }

  private onWebConnection(client: net.Socket, port: number, sniff: (b: Buffer) => Sniffed): void {
    this.track(client);
    this.stats.accepted++;
    const policy = this.policies.get(plain(client.remoteAddress));
    if (!policy) return void client.destroy();
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => client.destroy(), SNIFF_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const got = sniff(buf);
      if (got === 'more' && buf.length < MAX_SNIFF_BYTES) return;
      client.off('data', onData);
      client.pause();
      clearTimeout(timer);
      if (got === 'more' || got === null) return this.refuse(client, port, 'no host name in the request');
      void this.splice(client, port, policy, got.name, buf);
    };
    client.on('data', onData);
  }

  private async splice(client: net.Socket, port: number, policy: EgressPolicy, name: string, head: Buffer): Promise<void> {
    if (!nameAllowed(policy, name, port)) return this.refuse(client, port, `${name} is not allowed`);
    const addrs = await this.lookup(name);
    const target = addrs.find((a) => addressAllowed(this.rules, policy, a, port));
    if (!target) return this.refuse(client, port, addrs.length ? `${name} resolves to a denied address` : `${name} does not resolve`);
    if (client.destroyed) return;
    const upstream = net.connect({ host: target, port });
    this.track(upstream);
    upstream.setTimeout(CONNECT_TIMEOUT_MS, () => upstream.destroy());
    upstream.once('connect', () => {
      upstream.setTimeout(0);
      this.stats.spliced++;
      upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.once('close', () => client.destroy());
    client.once('close', () => upstream.destroy());
  }

  /** The host resolver's addresses for a name (IPv4 first), cached for their TTL (at most a minute). */
  private async lookup(name: string): Promise<string[]> {
    const hit = this.cache.get(name);
    if (hit && hit.until > Date.now()) return hit.addrs;
    let records = await this.resolver.resolve4(name, { ttl: true }).catch(() => []);
    if (records.length === 0) records = await this.resolver.resolve6(name, { ttl: true }).catch(() => []);
    const addrs = records.map((r) => r.address);
    const ttl = Math.min(MAX_CACHE_TTL_S, ...records.map((r) => r.ttl));
    if (addrs.length && ttl > 0) {
      if (this.cache.size >= MAX_CACHE_NAMES) this.cache.clear();
      this.cache.set(name, { addrs, until: Date.now() + ttl * 1000 });
    }
    return addrs;
  }

  /** The answer for one DNS query from a child (null: drop it). */
  private async answerDns(msg: Buffer, from: string): Promise<Buffer | null> {
    const q = parseDnsQuery(msg);
    if (!q) return null;
    const policy = this.policies.get(plain(from));
    if (!policy) { this.stats.dnsRefused++; return dnsErrorResponse(msg, q, RCODE.REFUSED); }
    if (!nameAllowed(policy, q.name, null)) { this.stats.dnsRefused++; return dnsErrorResponse(msg, q, RCODE.NXDOMAIN); }
    this.stats.dnsForwarded++;
    return (await this.forwardDns(msg)) ?? dnsErrorResponse(msg, q, RCODE.SERVFAIL);
  }

  private forwardDns(msg: Buffer): Promise<Buffer | null> {
    const [host, port] = this.upstream;
    return new Promise((resolve) => {
      const sock = dgram.createSocket(net.isIP(host) === 6 ? 'udp6' : 'udp4');
      const done = (r: Buffer | null) => { clearTimeout(timer); sock.close(); resolve(r); };
      const timer = setTimeout(() => done(null), DNS_TIMEOUT_MS);
      sock.on('error', () => done(null));
      sock.on('message', (answer) => { if (answer.length >= 2 && answer.readUInt16BE(0) === msg.readUInt16BE(0)) done(answer); });
      sock.send(msg, port, host);
    });
  }

  /** DNS over TCP: two-byte length-prefixed messages, each answered like a UDP query. */
  private onDnsTcp(client: net.Socket): void {
    this.track(client);
    let buf = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > 64 * 1024 + 2) return void client.destroy();
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        void this.answerDns(Buffer.from(msg), plain(client.remoteAddress)).then((r) => {
          if (!r || client.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          client.write(Buffer.concat([len, r]));
        });
      }
    });
  }
}
