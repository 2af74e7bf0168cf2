/**
 * Test hosts for the egress tests, run inside a test namespace (nsenter): `servers.ts SPEC_JSON`.
 * HTTP and TLS servers answer their label (GET /big?mb=N streams N MiB), TCP servers write their
 * label, the DNS server answers A queries from a table. Prints "ready" once everything listens.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import dgram from 'node:dgram';
import type { IncomingMessage, ServerResponse } from 'node:http';

export type ServerSpec =
  | { kind: 'http'; addr: string; port: number; label: string }
  | { kind: 'https'; addr: string; port: number; label: string; cert: string; key: string }
  | { kind: 'tcp'; addr: string; port: number; label: string }
  | { kind: 'dns'; addr: string; port: number; records: Record<string, string> };

const chunk = Buffer.alloc(1024 * 1024, 0x61);

function answer(label: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const big = /^\/big\?mb=(\d+)$/.exec(req.url ?? '');
    if (!big) return void res.end(`${label} host=${req.headers.host ?? ''}\n`);
    const mb = Number(big[1]);
    res.writeHead(200, { 'content-length': String(mb * chunk.length) });
    let sent = 0;
    const pump = () => {
      while (sent < mb) {
        sent++;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  };
}

function dnsAnswer(msg: Buffer, records: Record<string, string>): Buffer | null {
  if (msg.length < 12) return null;
  let p = 12;
  const labels: string[] = [];
  while (p < msg.length && msg[p] !== 0) { labels.push(msg.subarray(p + 1, p + 1 + msg[p]!).toString()); p += 1 + msg[p]!; }
  const qEnd = p + 5;
  const qtype = msg.readUInt16BE(p + 1);
  const ip = records[labels.join('.').toLowerCase()];
  const head = Buffer.from(msg.subarray(0, qEnd));
  head.writeUInt16BE(0x8180 | (ip ? 0 : 3), 2);
  head.writeUInt16BE(ip && qtype === 1 ? 1 : 0, 6);
  head.writeUInt32BE(0, 8);
  if (!ip || qtype !== 1) return head;
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ...ip.split('.').map(Number)]);
  return Buffer.concat([head, rr]);
}

async function start(spec: ServerSpec): Promise<void> {
  const listen = (s: net.Server) => new Promise<void>((r, j) => { s.once('error', j); s.listen(spec.port, spec.addr, () => r()); });
  switch (spec.kind) {
    case 'http': return listen(http.createServer(answer(spec.label)));
    case 'https': return listen(https.createServer({ cert: spec.cert, key: spec.key }, answer(spec.label)));
    case 'tcp': return listen(net.createServer((s) => { s.on('error', () => undefined); s.end(`${spec.label}\n`); }));
    case 'dns': {
      const sock = dgram.createSocket('udp4');
      sock.on('message', (m, r) => { const a = dnsAnswer(m, spec.records); if (a) sock.send(a, r.port, r.address); });
      return new Promise((r) => sock.bind(spec.port, spec.addr, () => r()));
    }
  }
}

const specs = JSON.parse(process.argv[2] ?? '[]') as ServerSpec[];
for (const s of specs) await start(s);
process.stdout.write('ready\n');
