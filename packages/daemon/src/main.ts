/**
 * A minimal daemon entry for daemons started on demand (launch.ts); `forkd serve` is the full one.
 *   main.js --socket PATH [--home DIR] [--idle-exit-secs N]
 */
import { parseArgs } from 'node:util';
import { toForkdError } from '@forkd/protocol';
import { Daemon } from './daemon.js';

const { values } = parseArgs({ options: { socket: { type: 'string' }, home: { type: 'string' }, 'idle-exit-secs': { type: 'string' } } });
try {
  const daemon = await Daemon.start({
    ...(values.socket ? { socket: values.socket } : {}),
    ...(values.home ? { home: values.home } : {}),
    ...(values['idle-exit-secs'] ? { idleExitMs: Number(values['idle-exit-secs']) * 1000 } : {}),
  });
  const stop = () => void daemon.stop().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (e) {
  const fe = toForkdError(e);
  process.stderr.write(`forkd daemon: ${fe.code}: ${fe.message}\n`);
  process.exit(1);
}
