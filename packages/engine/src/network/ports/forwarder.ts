/**
 * Exposed ports: a host TCP listener (loopback unless the operator names another address) per
 * (sandbox, guest port); each accepted connection is relayed into the child's namespace by
 * forkd-nsconnect, which connects to the guest there. No route into the namespace and no egress
 * rule is involved, so it works for a child without `network` and under any egress policy.
 */
import net from 'node:net';
import { spawn } from 'node:child_process';
import { ForkdError } from '@forkd/protocol';
import type { ChildNetwork } from '../types.js';
import { nsconnectBinary } from './nsconnect.js';

export interface ExposedPort {
  /** Host address and port a client connects to. */
  host: string;
  port: number;
  guestPort: number;
}

export class PortForwards {
  private readonly listeners = new Map<number, { server: net.Server; exposed: ExposedPort }>();
  private readonly sockets = new Set<net.Socket>();
  private closed = false;

  constructor(private readonly net: ChildNetwork, private readonly bindHost = '127.0.0.1') {}

  /** The host address forwarding to guestPort (the same one on every call). */
  async expose(guestPort: number): Promise<ExposedPort> {
    if (!Number.isInteger(guestPort) || guestPort < 1 || guestPort > 65535) throw new ForkdError('FORKD_E_OUT_OF_RANGE', `port must be 1..65535; got ${guestPort}`, { port: guestPort, min: 1, max: 65535 });
    if (this.closed) throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', 'the sandbox has ended');
    const known = this.listeners.get(guestPort);
    if (known) return known.exposed;
    const helper = await nsconnectBinary();
    // Half-open: a client that finishes sending still gets the whole answer.
    const server = net.createServer({ allowHalfOpen: true }, (sock) => this.relay(helper, sock, guestPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new ForkdError('FORKD_E_UNAVAILABLE', `cannot listen on ${this.bindHost}: ${e.message}`)));
      server.listen(0, this.bindHost, () => resolve());
    });
    const again = this.listeners.get(guestPort); // a concurrent call won
    if (again || this.closed) {
      server.close();
      if (again) return again.exposed;
      throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', 'the sandbox has ended');
    }
    const exposed = { host: this.bindHost, port: (server.address() as net.AddressInfo).port, guestPort };
    this.listeners.set(guestPort, { server, exposed });
    return exposed;
  }

  list(): ExposedPort[] {
    return [...this.listeners.values()].map((l) => l.exposed);
  }

  /** Set by the idle pause: a connection wakes a stopped guest and keeps it running while open. */
  gate: { enter(): Promise<void>; leave(): void } | null = null;

  private relay(helper: string, sock: net.Socket, guestPort: number): void {
    sock.setNoDelay(true);
    this.sockets.add(sock);
    const gate = this.gate;
    if (!gate) return this.pipe(helper, sock, guestPort, () => undefined);
    sock.pause(); // bytes wait in the socket until the guest runs
    let held = true;
    const leave = (): void => {
      if (held) gate.leave();
      held = false;
    };
    gate.enter().then(
      () => (sock.destroyed ? leave() : this.pipe(helper, sock, guestPort, leave)),
      () => {
        this.sockets.delete(sock);
        sock.destroy();
      },
    );
  }

  private pipe(helper: string, sock: net.Socket, guestPort: number, onEnd: () => void): void {
    const child = spawn(helper, [this.net.netnsPath, this.net.guestAddr, String(guestPort)], { stdio: ['pipe', 'pipe', 'ignore'] });
    const end = () => {
      onEnd();
      this.sockets.delete(sock);
      sock.destroy();
      child.kill('SIGKILL');
    };
    sock.pipe(child.stdin!);
    child.stdout!.pipe(sock);
    child.stdin!.on('error', () => undefined);
    sock.on('error', end);
    sock.on('close', end);
    child.once('error', end);
  }

  /** Stops listening and cuts every relayed connection. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.listeners.values()];
    this.listeners.clear();
    for (const s of this.sockets) s.destroy();
    await Promise.all(all.map((l) => new Promise<void>((r) => l.server.close(() => r()))));
  }
}
