import net from 'node:net';

/** Whether something accepts connections on a Unix socket path (a live server, not a stale file). */
export function socketAnswers(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.createConnection(socketPath);
    c.setTimeout(timeoutMs, () => {
      c.destroy();
      resolve(false);
    });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}
