/**
 * The `browser` language: Playwright (playwright-core, bundled next to the agent as
 * playwright-core.cjs and loaded only here) connected over CDP to the Chromium a recipe service
 * runs in the guest. The warm-up connects and opens a context and a page in the parent, so every
 * child restores with the DevTools websocket (a loopback TCP connection inside the guest) already
 * open. Each eval runs its code as the body of an async function of (browser, context, page), in a
 * persistent vm context like the JS eval's (globals set by one eval are there in the next).
 */
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { inspect } from 'node:util';
import { createRequire } from 'node:module';
import { ForkdError, LIMITS, PNG_SIGNATURE, type EvalResultT } from '@forkd/protocol';
import { CapturedOutput, OutputSink } from './capture-console.js';
import { describeError, describeValue } from './describe-value.js';
import { SerialQueue } from './serial-queue.js';

/** The little of Playwright's API this file uses (its own types are a dev dependency of the bundle step only). */
interface PwPage {
  isClosed(): boolean;
  setDefaultTimeout(ms: number): void;
  goto(url: string): Promise<unknown>;
}
interface PwContext {
  newPage(): Promise<PwPage>;
  setDefaultTimeout(ms: number): void;
}
interface PwBrowser {
  isConnected(): boolean;
  newContext(): Promise<PwContext>;
  close(): Promise<void>;
}
interface Playwright {
  chromium: { connectOverCDP(endpoint: string, o: { timeout: number }): Promise<PwBrowser> };
}

/** What an eval produced: the wire's result, plus the PNG bytes when the value was a PNG (page.screenshot()). */
export interface BrowserEvalOutcome {
  result: EvalResultT;
  png: Buffer | null;
}

export class BrowserRepl {
  private readonly sink = new OutputSink();
  private readonly queue = new SerialQueue();
  private readonly ctx: vm.Context;
  private pw: Playwright | null = null;
  private cdpPort: number | null = null;
  private browser: PwBrowser | null = null;
  private context: PwContext | null = null;
  private page: PwPage | null = null;

  /** helpersDir holds playwright-core.cjs in an image; outside one (tests) the npm package is used. */
  constructor(private readonly helpersDir: string) {
    this.ctx = vm.createContext({
      console: this.sink.makeConsole(),
      Buffer,
      setTimeout,
      clearTimeout,
      setInterval,
      clearInterval,
      URL,
      URLSearchParams,
      TextEncoder,
      TextDecoder,
      AbortController,
      performance,
      structuredClone,
    }, { name: 'forkd-browser' });
  }

  /** Whether the warm-up connected (the language is offered). */
  get connected(): boolean {
    return this.browser !== null;
  }

  /** Connects to the Chromium on the guest's loopback and opens a fresh context and page. */
  async connect(cdpPort: number, timeoutMs: number = LIMITS.browser.connectTimeoutMs): Promise<void> {
    this.cdpPort = cdpPort;
    const pw = this.load();
    let browser: PwBrowser;
    try {
      browser = await pw.chromium.connectOverCDP(`http://127.0.0.1:${cdpPort}`, { timeout: timeoutMs });
    } catch (e) {
      throw new ForkdError('FORKD_E_SERVICE_NOT_READY', `cannot connect Playwright to the browser's DevTools port 127.0.0.1:${cdpPort}: ${firstLine(e)}`);
    }
    this.browser = browser;
    this.context = await browser.newContext();
    this.page = await this.context.newPage();
  }

  eval(code: string, timeoutMs: number = LIMITS.defaultEvalTimeoutMs): Promise<BrowserEvalOutcome> {
    return this.queue.run(() => this.run(code, timeoutMs));
  }

  /**
   * The connection, re-established when it did not survive (the browser restarted, or the websocket
   * was closed): a fresh context and page then, since the old ones went with it.
   */
  private async ready(): Promise<{ browser: PwBrowser; context: PwContext; page: PwPage }> {
    if (this.cdpPort === null) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'the browser language needs a snapshot whose recipe starts a browser (playwright-browser)');
    if (!this.browser || !this.browser.isConnected()) {
      this.browser = null;
      try {
        await this.connect(this.cdpPort, 30_000);
      } catch (e) {
        throw new ForkdError('FORKD_E_SERVICE_EXITED', `the browser is gone and could not be reconnected: ${firstLine(e)}`);
      }
    }
    // A page (or context) the user's code closed is replaced, so the next eval has one to drive.
    if (this.page!.isClosed()) this.page = await this.context!.newPage();
    return { browser: this.browser!, context: this.context!, page: this.page! };
  }

  private async run(code: string, timeoutMs: number): Promise<BrowserEvalOutcome> {
    const t0 = performance.now();
    const { browser, context, page } = await this.ready();
    // Playwright's own actions time out first, with an error naming the action (page.goto: Timeout ...).
    const actionMs = Math.max(LIMITS.browser.minActionTimeoutMs, timeoutMs - LIMITS.browser.actionMarginMs);
    context.setDefaultTimeout(actionMs);
    page.setDefaultTimeout(actionMs);
    const out = new CapturedOutput();
    this.sink.current = out;
    let value: unknown;
    let error: EvalResultT['error'] = null;
    try {
      const fn = new vm.Script(`(async function (browser, context, page) {\n${code}\n})`, { filename: 'browser-eval.js' }).runInContext(this.ctx, { timeout: timeoutMs, displayErrors: false }) as (b: unknown, c: unknown, p: unknown) => Promise<unknown>;
      value = await withTimeout(fn(browser, context, page), timeoutMs - (performance.now() - t0));
    } catch (e) {
      // Playwright colours its call log for a terminal; the wire carries plain text.
      const d = describeError(e);
      error = { type: errorType(e, d.type), message: stripAnsi(d.message), traceback: stripAnsi(d.traceback) };
    } finally {
      this.sink.current = null;
    }
    const png = !error && isPng(value) ? Buffer.from(value) : null;
    const described = error ? { repr: null, json: null, json_ok: false } : png ? { repr: pngRepr(png), json: null, json_ok: false } : describeValue(value);
    return {
      result: { ok: error === null, ...described, error, stdout: out.out, stderr: out.err, duration_ms: Math.round((performance.now() - t0) * 1000) / 1000 },
      png,
    };
  }

  private load(): Playwright {
    if (this.pw) return this.pw;
    const bundled = path.join(this.helpersDir, 'playwright-core.cjs');
    const req = createRequire(path.join(this.helpersDir, 'agent.mjs'));
    try {
      this.pw = (fs.existsSync(bundled) ? req(bundled) : req('playwright-core')) as Playwright;
    } catch (e) {
      throw new ForkdError('FORKD_E_TOOL_MISSING', `Playwright is not available in the guest (${bundled}): ${firstLine(e)}`);
    }
    return this.pw;
  }
}

function isPng(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length >= PNG_SIGNATURE.length && Buffer.from(v.buffer, v.byteOffset, PNG_SIGNATURE.length).equals(PNG_SIGNATURE);
}

/** A PNG's repr: its size and dimensions (IHDR), not a dump of its bytes. */
function pngRepr(png: Buffer): string {
  const dims = png.length >= 24 ? ` ${png.readUInt32BE(16)}x${png.readUInt32BE(20)}` : '';
  return `<PNG image${dims}, ${png.length} bytes>`;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
/**
 * Playwright's own bundle defines its errors as class expressions (`TimeoutError2 = class ...`), so
 * their constructor name is the bundler's; the name a client matches on is the one Playwright sets
 * on the instance (`this.name = 'TimeoutError'`). A plain `Error` name keeps the class name.
 */
export function errorType(e: unknown, fallback: string): string {
  const name = e instanceof Error ? e.name : undefined;
  return typeof name === 'string' && name !== '' && name !== 'Error' ? name : fallback;
}

function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : inspect(e);
  return m.split('\n')[0] ?? m;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`browser eval timed out after the deadline (${Math.round(ms)} ms left)`), { code: 'ERR_SCRIPT_EXECUTION_TIMEOUT' })), Math.max(0, ms));
  });
  return Promise.race([Promise.resolve(p), expired]).finally(() => clearTimeout(timer));
}
