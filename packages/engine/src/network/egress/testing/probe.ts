/**
 * The "guest" side of the egress tests, run inside the guest namespace: `probe.ts PROBES_JSON`,
 * prints one JSON result per probe (what came back, or the error), all probes in one process.
 */
import net from 'node:net';
import tls from 'node:tls';
import dgram from 'node:dgram';

export type Probe =
  | { kind: 'tcp'; addr: string; port: number }
  | { kind: 'http'; addr: string; port?: number; host: string; path?: string }
  | { kind: 'tls'; addr: string; port?: number; servername: string }
  | { kind: 'dns'; addr: string; name: string };

export interface ProbeResult { ok: boolean; text: string; firstByteMs?: number; bytes?: number; ms: number }

const TIMEOUT_MS = Number(process.env.PROBE_TIMEOUT_MS ?? 2000);

function collect(sock: net.Socket, start: number, send?: string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let text = '';
    let bytes = 0;
    let firstByteMs: number | undefined;
    const timer = setTimeout(() => { sock.destroy(); resolve({ ok: false, text: `timeout ${text.slice(0, 200)}`, ms: Date.now() - start }); }, TIMEOUT_MS);
    sock.on('data', (d: Buffer) => {
      firstByteMs ??= performance.now() - start;
      bytes += d.length;
      if (text.length < 4096) text += d.toString('latin1');
      timer.refresh();
    });
    sock.on('error', (e) => { clearTimeout(timer); resolve({ ok: false, text: `error ${(e as NodeJS.ErrnoException).code ?? e.message}`, ms: performance.now() - start }); });
    sock.on('end', () => { clearTimeout(timer); resolve({ ok: bytes > 0, text: text.slice(0, 4096), bytes, ...(firstByteMs !== undefined ? { firstByteMs } : {}), ms: performance.now() - start }); });
    if (send) sock.write(send);
  });
}

function dnsQuery(name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([Buffer.from([0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

async function run(p: Probe): Promise<ProbeResult> {
  const start = performance.now();
  switch (p.kind) {
    case 'tcp': return collect(net.connect({ host: p.addr, port: p.port }), start);
    case 'http': return collect(net.connect({ host: p.addr, port: p.port ?? 80 }), start, `GET ${p.path ?? '/'} HTTP/1.1\r\nHost: ${p.host}\r\nConnection: close\r\n\r\n`);
    case 'tls': {
      const s = tls.connect({ host: p.addr, port: p.port ?? 443, servername: p.servername, rejectUnauthorized: false });
      s.once('secureConnect', () => s.write(`GET / HTTP/1.1\r\nHost: ${p.servername}\r\nConnection: close\r\n\r\n`));
      return collect(s, start);
    }
    case 'dns': return new Promise((resolve) => {
      const sock = dgram.createSocket('udp4');
      const done = (r: ProbeResult) => { clearTimeout(timer); sock.close(); resolve(r); };
      const timer = setTimeout(() => done({ ok: false, text: 'timeout', ms: performance.now() - start }), TIMEOUT_MS);
      sock.on('error', (e) => done({ ok: false, text: `error ${(e as NodeJS.ErrnoException).code}`, ms: performance.now() - start }));
      sock.on('message', (m) => {
        const rcode = m.readUInt16BE(2) & 0xf;
        const an = m.readUInt16BE(6);
        const ip = an ? [...m.subarray(m.length - 4)].join('.') : '';
        done({ ok: rcode === 0 && an > 0, text: rcode ? `rcode ${rcode}` : ip, ms: performance.now() - start });
      });
      sock.send(dnsQuery(p.name), 53, p.addr);
    });
  }
}

const probes = JSON.parse(process.argv[2] ?? '[]') as Probe[];
const results = await Promise.all(probes.map(run));
process.stdout.write(`${JSON.stringify(results)}\n`);
