/**
 * `run_code`: a cell with rich results (pyrich.py in the persistent Python interpreter). The
 * interpreter's images arrive base64 over its local pipe; here they are decoded, checked against
 * the limits again and moved into the frame payload (packRichImages), as the wire wants.
 */
import { ForkdError, JPEG_SIGNATURE, LIMITS, packRichImages, PNG_SIGNATURE, RunCodeResult, type ResultOf, type RichImages, type RichResultWireT } from '@forkd/protocol';
import type { CallContext, ParamsOut, Reply } from '../handler.js';
import type { PyReply } from '../python-repl.js';
import type { Runtime } from '../runtime.js';

type RawResult = Omit<RichResultWireT, 'png_bytes' | 'jpeg_bytes'> & { png_b64?: string; jpeg_b64?: string };

export function makeRunCode(rt: Runtime) {
  return async function runCode(p: ParamsOut<'run_code'>, ctx: CallContext): Promise<Reply<ResultOf<'run_code'>>> {
    if (p.language === 'browser') return browserCell(rt, p.code, p.timeout_ms ?? LIMITS.defaultEvalTimeoutMs);
    if (!rt.python.available) throw new ForkdError('FORKD_E_TOOL_MISSING', 'run_code needs Python, and python3 is not installed in the guest');
    const timeout = p.timeout_ms ?? LIMITS.defaultEvalTimeoutMs;
    const t0 = performance.now();
    const { reply, interrupted, killed } = await rt.python.runCell(p.code, timeout, ctx.onCancel);
    return toWire(reply, { interrupted, killed, timeoutMs: timeout, durationMs: performance.now() - t0 });
  };
}

/**
 * A browser cell: the value is the main result (its repr as text, JSON when it has one), and a PNG
 * value (`return await page.screenshot()`) is that result's PNG, the way a plot is in a Python cell.
 */
async function browserCell(rt: Runtime, code: string, timeoutMs: number): Promise<Reply<ResultOf<'run_code'>>> {
  const { result: r, png } = await rt.browser.eval(code, timeoutMs);
  const dropped: string[] = [];
  const images: RichImages = {};
  if (png && png.length > LIMITS.richResults.maxImageBytes) dropped.push(`result 0: image/png of ${png.length} bytes exceeds the caps`);
  else if (png) images.png = png;
  const text = r.repr === null ? undefined : r.repr.slice(0, LIMITS.richResults.maxTextChars);
  const main = r.repr !== null || png ? [{ result: { ...(text !== undefined ? { text } : {}), ...(r.json_ok ? { json: r.json } : {}), is_main_result: true }, images }] : [];
  const { results, payload } = packRichImages(main);
  const error = r.error ? { name: r.error.type, value: r.error.message, traceback: r.error.traceback } : null;
  const chunks = (s: string) => (s ? [s] : []);
  return { result: { results, stdout: chunks(r.stdout), stderr: chunks(r.stderr), error, execution_count: null, interpreter: 'browser', dropped, duration_ms: r.duration_ms }, payload };
}

/** The interpreter's reply as the wire's result and payload (exported for unit tests). */
export function toWire(reply: PyReply, o: { interrupted: boolean; killed: boolean; timeoutMs: number; durationMs: number }): Reply<ResultOf<'run_code'>> {
  if (!reply.ok) {
    const name = o.killed ? 'TimeoutError' : (reply.error?.type ?? 'Error');
    const value = o.killed ? `run_code timed out after ${o.timeoutMs} ms; the interpreter did not stop on SIGINT and was restarted: its state was lost` : (reply.error?.message ?? 'run_code failed');
    return { result: { results: [], stdout: [], stderr: [], error: { name, value, traceback: reply.error?.traceback ?? '' }, execution_count: null, interpreter: 'plain', dropped: [], duration_ms: o.durationMs } };
  }
  const raw = reply.result as { results?: RawResult[] } & Record<string, unknown>;
  const dropped: string[] = Array.isArray(raw.dropped) ? (raw.dropped as string[]) : [];
  const items: Array<{ result: RawResult; images: RichImages }> = [];
  let total = 0;
  for (const [i, r] of (raw.results ?? []).entries()) {
    const { png_b64, jpeg_b64, ...rest } = r;
    const images: RichImages = {};
    for (const [kind, b64] of [['png', png_b64], ['jpeg', jpeg_b64]] as const) {
      if (typeof b64 !== 'string') continue;
      const bytes = Buffer.from(b64, 'base64');
      if (bytes.length > LIMITS.richResults.maxImageBytes || total + bytes.length > LIMITS.richResults.maxTotalBytes) {
        dropped.push(`result ${i}: image/${kind} of ${bytes.length} bytes exceeds the caps`);
        continue;
      }
      // The host refuses an image that is not one (a hostile guest's); a user's _repr_png_ that
      // returns other bytes loses that format here instead of failing the whole call.
      const signature = kind === 'png' ? PNG_SIGNATURE : JPEG_SIGNATURE;
      if (!bytes.subarray(0, signature.length).equals(signature)) {
        dropped.push(`result ${i}: image/${kind} does not start with the ${kind.toUpperCase()} signature`);
        continue;
      }
      total += bytes.length;
      images[kind] = bytes;
    }
    items.push({ result: rest, images });
  }
  const { results, payload } = packRichImages(items);
  let error = (raw.error as { name: string; value: string; traceback: string } | null) ?? null;
  if (o.interrupted && error?.name === 'KeyboardInterrupt') error = { ...error, name: 'TimeoutError', value: `run_code timed out after ${o.timeoutMs} ms (interrupted with KeyboardInterrupt)` };
  // Validated here too: a reply the host would refuse is this side's bug, reported as such.
  const maxNotes = LIMITS.richResults.maxResults * 10;
  const notes = dropped.length > maxNotes ? [...dropped.slice(0, maxNotes - 1), `${dropped.length - maxNotes + 1} more left out`] : dropped;
  const parsed = RunCodeResult.safeParse({ ...raw, results, error, dropped: notes });
  if (!parsed.success) throw new ForkdError('FORKD_E_INTERNAL', `run_code produced an invalid reply: ${parsed.error.issues.slice(0, 3).map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
  return { result: parsed.data, payload };
}
