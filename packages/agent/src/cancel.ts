/**
 * Cancellation of one request (host `cancel` frame, or the host going away). A plain callback
 * list: an AbortController per request, with EventTarget listeners, cost ~0.2 ms per call in a
 * guest under TCG, on every call, for a feature almost never used.
 */
export class Cancellation {
  private callbacks: Array<() => void> | null = null;
  cancelled = false;

  /** Runs cb on cancel (at once if already cancelled); returns the unregister function. */
  onCancel(cb: () => void): () => void {
    if (this.cancelled) {
      cb();
      return noop;
    }
    (this.callbacks ??= []).push(cb);
    return () => {
      const i = this.callbacks?.indexOf(cb) ?? -1;
      if (i >= 0) this.callbacks!.splice(i, 1);
    };
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const cbs = this.callbacks ?? [];
    this.callbacks = null;
    for (const cb of cbs) cb();
  }
}

function noop(): void {}
