/** Connecting to Unix sockets: the agent's, QMP's, the keeper's and the daemon's all go through here. */
import net from 'node:net';

/** Why a connection was not made: the last attempt's error, and whether the deadline ended the tries. */
export class UnixConnectError extends Error {
  constructor(
    message: string,
    readonly errno: string | undefined,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

/** One attempt. Rejects with the socket's error, or after timeoutMs. */
export function connectUnixSocket(socketPath: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
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

export interface ConnectRetry {
  /** Budget for all attempts together. */
  timeoutMs: number;
  /** Pause between attempts while the server has not bound its socket yet. */
  intervalMs: number;
  /** Whether an attempt's error is worth another (default: every error is). */
  retryable?: (err: NodeJS.ErrnoException) => boolean;
}

/** Attempts until one connects or the budget is spent; rejects with UnixConnectError. */
export async function connectUnixSocketWithRetry(socketPath: string, r: ConnectRetry): Promise<net.Socket> {
  const deadline = Date.now() + r.timeoutMs;
  for (;;) {
    let err: NodeJS.ErrnoException;
    try {
      return await connectUnixSocket(socketPath, Math.max(1, deadline - Date.now()));
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    if (Date.now() >= deadline) throw new UnixConnectError(err.message, err.code, true);
    if (r.retryable && !r.retryable(err)) throw new UnixConnectError(err.message, err.code, false);
    await new Promise((res) => setTimeout(res, Math.min(r.intervalMs, Math.max(0, deadline - Date.now()))));
  }
}

/** Whether something accepts connections on a Unix socket path (a live server, not a stale file). */
export async function socketAnswers(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  try {
    (await connectUnixSocket(socketPath, timeoutMs)).destroy();
    return true;
  } catch {
    return false;
  }
}
