/**
 * forkd guest agent. Guest mode (default): serve the virtio-serial port named org.forkd.agent.
 *   --port PATH        serve this character device instead
 *   --listen SOCKPATH  test mode: serve a Unix socket, one host at a time
 *   --no-system        test mode: restore never sets the clock or reseeds the kernel RNG
 *   --no-python        test mode: behave as if python3 were not installed
 *   --spawn-helper BIN test mode: start commands through this forkd-spawn
 *   --guest-fork-socket PATH  serve the guest library (forkd.fork()) here (test mode has none by default)
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAgent } from './agent.js';
import { findAgentPort } from './find-port.js';
import { sleep, type Transport } from './transport.js';
import { ListenTransport } from './transport-listen.js';
import { PortTransport } from './transport-port.js';
import { routeCryptoRandomToKernel } from './kernel-random.js';

interface Args {
  port?: string;
  listen?: string;
  noSystem: boolean;
  noPython: boolean;
  spawnHelper?: string;
  guestForkSocket?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { noSystem: false, noPython: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--port') a.port = argv[++i];
    else if (k === '--listen') a.listen = argv[++i];
    else if (k === '--no-system') a.noSystem = true;
    else if (k === '--no-python') a.noPython = true;
    else if (k === '--spawn-helper') a.spawnHelper = argv[++i];
    else if (k === '--guest-fork-socket') a.guestForkSocket = argv[++i];
    else throw new Error(`unknown argument: ${k}`);
  }
  return a;
}

function log(msg: string): void {
  process.stderr.write(`forkd-agent: ${msg}\n`);
}

async function main(): Promise<void> {
  process.on('uncaughtException', (err) => log(`uncaught exception: ${err?.stack ?? err}`));
  process.on('unhandledRejection', (err) => log(`unhandled rejection: ${(err as Error)?.stack ?? err}`));
  const args = parseArgs(process.argv.slice(2));
  routeCryptoRandomToKernel();
  const helpersDir = path.dirname(fileURLToPath(import.meta.url));
  const agent = createAgent({ helpersDir, noSystem: args.noSystem, spawnHelper: args.spawnHelper, ...(args.noPython ? { python: null } : {}), ...(args.guestForkSocket ? { guestForkSocket: args.guestForkSocket } : {}) });
  let transport: Transport;
  if (args.listen) {
    transport = new ListenTransport(args.listen);
  } else {
    let port = args.port ?? findAgentPort();
    while (!port) {
      // The virtio-serial device may still be probing: wait for it rather than exit.
      await sleep(100);
      port = findAgentPort();
    }
    transport = new PortTransport(port);
  }
  const stop = (): void => {
    agent.shutdown();
    void transport.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await transport.start(agent.server);
  // After the host channel: a guest library that cannot reach the socket fails fast with ENOENT.
  await agent.startGuestFork().catch((e: unknown) => log(`guest fork socket unavailable: ${(e as Error).message}`));
  log(`serving ${args.listen ?? args.port ?? 'virtio-serial port'} (pid ${process.pid})`);
}

main().catch((err) => {
  log(`fatal: ${(err as Error)?.stack ?? err}`);
  process.exit(1);
});
