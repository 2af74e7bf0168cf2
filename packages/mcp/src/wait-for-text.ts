/**
 * wait_for_text: poll a file in the guest until a marker appears. The path is data: it goes to
 * `dd` as one argv element (no shell, unlike forkd's original, which put it unquoted into
 * `sh -c "tail -c 4096 {path}"`). Reads continue from where the last poll stopped, so a marker
 * anywhere in a growing log is found, including one split across two reads.
 */
import type { Controller } from '@forkd/sdk';

/** Bytes read per poll (below the exec route's 1 MiB default output cap). */
export const CHUNK_BYTES = 512 * 1024;

export interface WaitForTextArgs {
  sandbox_id: string;
  path: string;
  marker: string;
  timeout_secs: number;
  poll_interval_ms: number;
}

export interface WaitForTextResult {
  found: boolean;
  elapsed_ms: number;
  /** Bytes of the file scanned so far. */
  scanned_bytes: number;
  /** Text around the match, or the last text seen when not found. */
  excerpt: string;
}

/** dd's "N bytes ... copied" line (stderr, C locale) gives the byte count; stdout is UTF-8-decoded text. */
export function bytesCopied(stderr: string): number | null {
  const m = /^(\d+) bytes?\b/m.exec(stderr);
  return m ? Number(m[1]) : null;
}

/** Searches carry+text; returns the match excerpt or null, and the carry for the next read. */
export function scan(carry: string, text: string, marker: string): { excerpt: string | null; carry: string } {
  const window = carry + text;
  const i = window.indexOf(marker);
  if (i >= 0) return { excerpt: window.slice(Math.max(0, i - 200), i + marker.length + 200), carry: '' };
  return { excerpt: null, carry: window.slice(-(marker.length - 1) || window.length) };
}

export async function waitForText(ctl: Controller, a: WaitForTextArgs, signal?: AbortSignal): Promise<WaitForTextResult> {
  const start = Date.now();
  const deadline = start + a.timeout_secs * 1000;
  let offset = 0;
  let carry = '';
  let last = '';
  for (;;) {
    const r = await ctl.exec(a.sandbox_id, {
      args: ['dd', `if=${a.path}`, 'iflag=skip_bytes,count_bytes', `skip=${offset}`, `count=${CHUNK_BYTES}`],
      envs: { LC_ALL: 'C' },
      timeout_secs: 30,
    }, signal);
    const n = r.exit_code === 0 ? bytesCopied(r.stderr) : null;
    if (n !== null && n > 0) {
      const s = scan(carry, r.stdout, a.marker);
      if (s.excerpt !== null) return { found: true, elapsed_ms: Date.now() - start, scanned_bytes: offset + n, excerpt: s.excerpt };
      carry = s.carry;
      last = (last + r.stdout).slice(-500);
      offset += n;
      if (n === CHUNK_BYTES) continue; // more is there already
    } else if (n === 0 && offset > 0) {
      // Nothing new: if the file was truncated or replaced (log rotation), start over.
      const st = await ctl.statFile(a.sandbox_id, a.path).catch(() => null);
      if (st && st.size < offset) {
        offset = 0;
        carry = '';
      }
    }
    // n === null: the file is not there yet (or unreadable); keep waiting.
    if (Date.now() + a.poll_interval_ms > deadline || signal?.aborted) {
      return { found: false, elapsed_ms: Date.now() - start, scanned_bytes: offset, excerpt: last };
    }
    await new Promise((res) => setTimeout(res, a.poll_interval_ms));
  }
}
