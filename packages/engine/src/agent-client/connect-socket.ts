/** Connects to a Unix socket, retrying until it exists and accepts or the deadline passes. */
import net from 'node:net';
import { ForkdError } from '@forkd/protocol';

const RETRY_MS = 25;

export async function connectWithRetry(socketPath: string, timeoutMs: number): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown = null;
  for (;;) {
    try {
      return await connectOnce(socketPath, Math.max(1, deadline - Date.now()));
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(RETRY_MS, Math.max(0, deadline - Date.now()))));
  }
  throw new ForkdError('FORKD_E_AGENT_UNAVAILABLE', `could not connect to the agent socket ${socketPath} within ${timeoutMs} ms: ${(lastErr as Error)?.message ?? lastErr}`, { socket: socketPath });
}

function connectOnce(socketPath: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('connect timed out'));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    });
  });
}
