/**
 * Reliability R5 (issue 9): hostile clients against a daemon on TCP with a token (no VM needed).
 *   A. 200 unauthenticated connections that each send headers and a large JSON body, never the
 *      last byte, and hold the connection (probe P3 of the security review, smaller bodies).
 *   B. 200 slowloris connections trickling one header byte a second, never finishing the headers.
 * During each: the daemon's RSS, how many attackers the daemon has closed, and whether an
 * authenticated request (from another loopback address) is answered, and how fast.
 * The 100 aborted downloads of R5 need VMs and are measured with the download fix, not here.
 * Usage: npm run bench:clients   (CONNS=200 BODY_MIB=2 HOLD_SECS=5 TRICKLE_SECS=20); also R5 of npm run bench:reliability.
 */
import net from 'node:net';
import { promises as fs } from 'node:fs';
import { startTestDaemon } from '@forkd/daemon/testing';

export interface HostileClientsOptions {
  conns: number;
  bodyMib: number;
  holdSecs: number;
  trickleSecs: number;
}

export const clientsOptionsFromEnv = (): HostileClientsOptions => ({
  conns: Number(process.env.CONNS ?? 200),
  bodyMib: Number(process.env.BODY_MIB ?? 2),
  holdSecs: Number(process.env.HOLD_SECS ?? 5),
  trickleSecs: Number(process.env.TRICKLE_SECS ?? 20),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function hostileClients(o: HostileClientsOptions, out: (s: string) => void): Promise<void> {
  const { conns: CONNS, bodyMib: BODY_MIB, holdSecs: HOLD_SECS, trickleSecs: TRICKLE_SECS } = o;

  const d = await startTestDaemon({ tcp: true, token: true, fixture: false, keeperGraceSecs: 5 });
  const pid = d.proc.pid!;
  const port = Number(new URL(d.url!).port);
  const mib = async () => Number(/VmRSS:\s+(\d+) kB/.exec(await fs.readFile(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

  /** An authenticated GET from 127.0.0.2 (another peer than the attackers): status and latency. */
  function ping(): Promise<string> {
    const t0 = performance.now();
    return new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
      let got = '';
      const done = (what: string) => {
        s.destroy();
        resolve(what);
      };
      s.on('data', (c: Buffer) => {
        got += c.toString('latin1');
        const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
        if (m) done(`${m[1]} in ${(performance.now() - t0).toFixed(1)} ms`);
      });
      s.on('error', (e) => done(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      s.setTimeout(10_000, () => done('no answer in 10 s'));
      s.write(`GET /v1/sandboxes HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${d.token}\r\nConnection: close\r\n\r\n`);
    });
  }

  interface Attacker {
    socket: net.Socket;
    closedByServer: boolean;
  }
  function attacker(first: string | Buffer, rest?: Buffer): Attacker {
    const a: Attacker = { socket: net.connect({ host: '127.0.0.1', port }), closedByServer: false };
    a.socket.on('error', () => undefined);
    a.socket.resume(); // read, or a close by the daemon goes unnoticed
    a.socket.once('close', () => (a.closedByServer = true));
    a.socket.write(first);
    if (rest) a.socket.write(rest);
    return a;
  }
  const release = (as: Attacker[]) => {
    for (const a of as) {
      a.socket.removeAllListeners('close');
      a.socket.destroy();
    }
  };

  out(`# R5 hostile clients: ${CONNS} connections, ${BODY_MIB} MiB bodies held ${HOLD_SECS} s, slowloris for ${TRICKLE_SECS} s`);
  out(`# command: CONNS=${CONNS} BODY_MIB=${BODY_MIB} HOLD_SECS=${HOLD_SECS} TRICKLE_SECS=${TRICKLE_SECS} npm run bench:clients`);
  await ping();
  const base = await mib();
  out(`idle: daemon RSS ${base.toFixed(0)} MiB; authenticated ping ${await ping()}`);

  // A. Large unauthenticated bodies, last byte never sent.
  const body = Buffer.alloc(BODY_MIB * 1024 * 1024, 0x61);
  const head = `POST /v1/sandboxes HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 1}\r\n\r\n`;
  const bodies = Array.from({ length: CONNS }, () => attacker(head, body));
  await sleep(HOLD_SECS * 1000);
  const aRss = await mib();
  out(`A. ${CONNS} unauthenticated ${BODY_MIB} MiB bodies: daemon RSS ${aRss.toFixed(0)} MiB (+${(aRss - base).toFixed(0)}), closed by the daemon ${bodies.filter((a) => a.closedByServer).length}/${CONNS}, authenticated ping ${await ping()}`);
  release(bodies);
  await sleep(1000);
  out(`   after release: daemon RSS ${(await mib()).toFixed(0)} MiB`);

  // B. Slowloris: one header byte a second.
  const line = `GET /v1/sandboxes HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: ${'a'.repeat(TRICKLE_SECS + 10)}`;
  const slow = Array.from({ length: CONNS }, () => attacker(line.slice(0, 20)));
  const started = Date.now();
  for (let i = 20; Date.now() - started < TRICKLE_SECS * 1000 && i < line.length; i++) {
    await sleep(1000);
    for (const a of slow) if (!a.socket.destroyed) a.socket.write(line[i]!);
  }
  const bRss = await mib();
  out(`B. ${CONNS} slowloris connections after ${TRICKLE_SECS} s: daemon RSS ${bRss.toFixed(0)} MiB (+${(bRss - base).toFixed(0)}), closed by the daemon ${slow.filter((a) => a.closedByServer).length}/${CONNS}, authenticated ping ${await ping()}`);
  release(slow);
  await sleep(1000);
  out(`after: daemon RSS ${(await mib()).toFixed(0)} MiB; authenticated ping ${await ping()}`);
  await d.stop();
}
