import { ForkdError, toForkdError, ERROR_CODES } from '@forkd/protocol';
import type { ProgressEvent } from '@forkd/engine';

export interface OutputOptions {
  json?: boolean;
}

/**
 * A guest- or caller-chosen string made safe for a terminal: control characters (ESC, BEL, C1,
 * DEL, and line breaks unless kept) are shown as escapes, so no ANSI/OSC sequence reaches the
 * terminal from a file name, a label or an error message (OSC 52 writes the clipboard).
 */
export function escapeControls(s: string, o: { keepLineBreaks?: boolean } = {}): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    if (o.keepLineBreaks && (c === '\n' || c === '\t')) return c;
    const code = c.charCodeAt(0);
    return code === 0x1b ? '\\e' : code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : c;
  });
}

/** Renders rows as an aligned table for humans (every cell escaped: tables list guest-chosen names). */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => escapeControls(String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Progress on stderr: one rewritten line on a terminal, throttled lines otherwise. */
export function progressPrinter(enabled = true): { onProgress: (ev: ProgressEvent) => void; done: () => void } {
  const tty = process.stderr.isTTY === true;
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let i = 0;
  let last = '';
  let lastAt = 0;
  let lastPhase = '';
  return {
    onProgress: (ev) => {
      if (!enabled) return;
      const pct = ev.fraction !== undefined ? ` ${Math.round(ev.fraction * 100)}%` : '';
      const line = `[${ev.phase}]${pct} ${ev.message}`;
      if (tty) {
        process.stderr.write(`\r\x1b[2K${frames[i++ % frames.length]} ${line.slice(0, (process.stderr.columns ?? 100) - 3)}`);
        last = line;
      } else {
        const now = Date.now();
        if (ev.phase !== lastPhase || now - lastAt > 2000 || ev.fraction === 1) {
          process.stderr.write(`${line}\n`);
          lastAt = now;
          lastPhase = ev.phase;
        }
      }
    },
    done: () => {
      if (enabled && tty && last) process.stderr.write('\r\x1b[2K');
    },
  };
}

/** Exit status: 2 for bad input (4xx codes), 1 for everything else. */
export function exitCodeFor(err: ForkdError): number {
  return ERROR_CODES[err.code] < 500 ? 2 : 1;
}

/** The HTTP status the daemon answered with, when the error is its answer (the SDK sets it only then). */
function httpStatusOf(err: unknown): number | undefined {
  const s = (err as { httpStatus?: unknown } | null)?.httpStatus;
  return typeof s === 'number' ? s : undefined;
}

export function reportError(err: unknown, opts: OutputOptions): number {
  const fe = toForkdError(err);
  const status = httpStatusOf(err);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ error: { ...fe.toJSON(), ...(status !== undefined ? { status } : {}) } }, null, 2)}\n`);
  } else {
    // Messages can carry guest text (its errors, its console): escaped, line breaks kept.
    process.stderr.write(`forkd: error ${fe.code}${status !== undefined ? ` (HTTP ${status})` : ''}: ${escapeControls(fe.message, { keepLineBreaks: true })}\n`);
    const consoleTail = fe.details?.console;
    if (typeof consoleTail === 'string' && consoleTail.trim()) process.stderr.write(`--- guest console (tail) ---\n${escapeControls(consoleTail.trim(), { keepLineBreaks: true })}\n`);
  }
  return exitCodeFor(fe);
}

export function ms(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(v < 10 ? 1 : 0)} ms` : '-';
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

export function parseIntStrict(name: string, value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${name} must be an integer; got ${JSON.stringify(value)}`);
  return Number.parseInt(value, 10);
}
