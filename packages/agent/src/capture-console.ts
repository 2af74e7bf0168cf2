/** A console for the eval context whose output goes to the current eval's capped buffers. */
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { LIMITS } from '@forkd/protocol';

export class CapturedOutput {
  out = '';
  err = '';
  outTruncated = false;
  errTruncated = false;
}

export class OutputSink {
  current: CapturedOutput | null = null;

  private writable(which: 'out' | 'err'): Writable {
    return new Writable({
      write: (chunk: Buffer | string, _enc, cb) => {
        const cur = this.current;
        if (cur) {
          const s = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
          const room = LIMITS.defaultOutputBytes - cur[which].length;
          if (s.length > room) {
            if (which === 'out') cur.outTruncated = true;
            else cur.errTruncated = true;
          }
          if (room > 0) cur[which] += s.length > room ? s.slice(0, room) : s;
        }
        cb();
      },
    });
  }

  makeConsole(): Console {
    return new Console({ stdout: this.writable('out'), stderr: this.writable('err'), colorMode: false });
  }
}
