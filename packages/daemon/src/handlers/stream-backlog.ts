/**
 * Bytes of streamed output waiting in response buffers for slow clients, across every streamed
 * request of the daemon. Each stream reports its buffer after every write; one that would pass
 * its own cap or the shared one, or whose buffer has not drained within the deadline, is cut.
 */
import { LIMITS } from '@forkd/protocol';

export interface BacklogLimits {
  perRequestBytes: number;
  totalBytes: number;
  drainTimeoutMs: number;
}

export class StreamBacklog {
  private used = 0;
  constructor(readonly limits: BacklogLimits = LIMITS.streamBacklog) {}

  get heldBytes(): number {
    return this.used;
  }

  /**
   * Tracks one stream's response buffer. `overflow` is called (once) with the reason when the
   * stream must be cut; `release` gives its bytes back (call it when the response closes).
   */
  track(buffered: () => number, overflow: (reason: string) => void): { update(wrote: number): void; drained(): void; release(): void } {
    let mine = 0;
    /** Units written so far; minus what is buffered, what the client has taken. */
    let written = 0;
    let timer: NodeJS.Timeout | undefined;
    let cut = false;
    const stop = (reason: string): void => {
      if (cut) return;
      cut = true;
      clearTimeout(timer);
      overflow(reason);
    };
    /** Cuts the stream when the client takes nothing of its buffer for a whole deadline. */
    const watch = (): void => {
      const takenAtArm = written - buffered();
      timer = setTimeout(() => {
        timer = undefined;
        if (cut || buffered() === 0) return;
        if (written - buffered() > takenAtArm) return watch(); // slow, but reading
        stop(`the client read nothing for ${this.limits.drainTimeoutMs} ms`);
      }, this.limits.drainTimeoutMs);
      timer.unref?.();
    };
    const settle = (): void => {
      const now = buffered();
      this.used += now - mine;
      mine = now;
    };
    return {
      update: (wrote: number) => {
        if (cut) return;
        written += wrote;
        settle();
        if (mine > this.limits.perRequestBytes) return stop(`the client reads the stream too slowly (${mine} bytes waiting, limit ${this.limits.perRequestBytes})`);
        if (this.used > this.limits.totalBytes) return stop(`slow readers hold the daemon's whole stream budget (${this.used} bytes, limit ${this.limits.totalBytes})`);
        if (mine > 0 && timer === undefined) watch();
      },
      drained: () => {
        clearTimeout(timer);
        timer = undefined;
        settle();
      },
      release: () => {
        clearTimeout(timer);
        timer = undefined;
        this.used -= mine;
        mine = 0;
        cut = true;
      },
    };
  }
}
