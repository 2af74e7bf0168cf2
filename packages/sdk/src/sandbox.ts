/**
 * The E2B-shaped Sandbox, on the Controller: an E2B user changes one import
 * (`import { Sandbox } from '@forkd/sdk'`). Templates are snapshot tags. Every method throws only
 * typed SDK errors (ForkdSdkError subclasses with a FORKD_E_* code).
 */
import { CALL_TIMEOUT_SECS, CLIENT_DEFAULTS } from '@forkd/protocol';
import { Controller, type EvalResult, type SandboxInfo as WireSandboxInfo, type SnapshotInfo } from './controller.js';
import { ForkdSdkError, errorFor, meansSandboxGone } from './errors.js';
import { guard } from './guard.js';
import { timeoutSecs } from './command-result.js';
import { Commands } from './commands.js';
import { Filesystem } from './filesystem.js';
import { deliver, evalLanguage, fromRunCode, toExecution, type Execution, type RunCodeLanguage, type RunCodeOpts } from './code.js';
import { SandboxPaginator, matchesMetadata, pausedDetails, toDetails, type SandboxDetails } from './sandbox-list.js';
import { checkPauseOpts, getOrResume, killSandboxOrPaused, pauseSandbox, pausedWorkspaces } from './pause.js';

/** Where the daemon is (else FORKD_URL / FORKD_TOKEN, else the default local socket). */
export interface SandboxConnectionOpts {
  /** http(s)://host:port or unix:/path/forkd.sock. */
  url?: string;
  socketPath?: string;
  token?: string;
  /** Per-request timeout for short calls (long calls such as exec use their own). */
  requestTimeoutMs?: number;
}

export interface SandboxOpts extends SandboxConnectionOpts {
  /** Snapshot tag (E2B's template); also given as the first argument of create(). */
  template?: string;
  /** Alias of template. */
  snapshotTag?: string;
  /** Kill the sandbox this long after creation (default 300 000, as E2B; 0 = no timeout). */
  timeoutMs?: number;
  /** Environment for every command and eval in the sandbox. */
  envs?: Record<string, string>;
  metadata?: Record<string, string>;
  /** forkd's per-sandbox limits (the daemon's defaults and maxima apply); a limit the host cannot enforce fails the create (FORKD_E_QUOTA_UNAVAILABLE). */
  limits?: SandboxLimitOpts;
  /** E2B: true = the public internet (never the host, other children, link-local or private ranges); false = only network.allowOut. Default: the daemon's --default-egress. */
  allowInternetAccess?: boolean;
  /**
   * Its own network (forkd's per_child_netns): a namespace with a unique address and a way out
   * under the egress policy (the daemon's --default-egress, default deny). true: that network under
   * the default policy; E2B's egress lists (IPs, CIDRs, host names, `*.` wildcards, optional
   * `:port`; denyOut wins) imply it, as does allowInternetAccess: true. Without it the sandbox
   * reaches nothing (its ports can still be exposed with getHost).
   */
  network?: boolean | SandboxNetworkOpts;
  /**
   * Let programs in the guest fork this sandbox from inside (Python/Node `forkd.fork(k, vary)`):
   * at most maxCount children per call and maxDepth guest forks deep. Off by default.
   */
  allowGuestFork?: { maxCount: number; maxDepth: number };
}

/** Per-sandbox limits in camelCase (REST: memory_limit_mib, cpu_weight, ...). */
export interface SandboxLimitOpts {
  /** The QEMU process's memory, MiB; over it the sandbox is killed (endReason 'oom'). */
  memoryLimitMib?: number;
  /** Relative CPU share (100 = default). */
  cpuWeight?: number;
  /** Hard CPU cap in cores (0.5 = half a core). */
  cpuQuota?: number;
  /** Tasks (threads) of the QEMU process. */
  pidsMax?: number;
  /** The disk overlay, MiB: writes past it are I/O errors in the guest. */
  diskLimitMib?: number;
  ioReadBps?: number;
  ioWriteBps?: number;
}

/** The spawn body's limit fields for SandboxLimitOpts. */
export function limitsBody(l: SandboxLimitOpts | undefined): Record<string, number> {
  if (!l) return {};
  const map: Array<[keyof SandboxLimitOpts, string]> = [['memoryLimitMib', 'memory_limit_mib'], ['cpuWeight', 'cpu_weight'], ['cpuQuota', 'cpu_quota'], ['pidsMax', 'pids_max'], ['diskLimitMib', 'disk_limit_mib'], ['ioReadBps', 'io_read_bps'], ['ioWriteBps', 'io_write_bps']];
  const out: Record<string, number> = {};
  for (const [k, wire] of map) if (l[k] !== undefined) out[wire] = l[k]!;
  return out;
}

export interface SandboxNetworkOpts {
  allowOut?: string[];
  denyOut?: string[];
}

/** The REST fields of an egress policy. */
function egressBody(allowInternetAccess: boolean | undefined, network: SandboxNetworkOpts | undefined) {
  return {
    ...(allowInternetAccess !== undefined ? { allow_internet_access: allowInternetAccess } : {}),
    ...(network?.allowOut ? { allow_out: network.allowOut } : {}),
    ...(network?.denyOut ? { deny_out: network.denyOut } : {}),
  };
}

export interface SandboxListOpts extends SandboxConnectionOpts {
  /** E2B's filter: only sandboxes whose metadata has all these pairs, in these states (default: running only). */
  query?: { metadata?: Record<string, string>; state?: Array<'running' | 'paused'> };
  /** forkd: only sandboxes of this snapshot. */
  template?: string;
  /** Page size for nextItems() (default: everything in one page). */
  limit?: number;
}

export interface ForkOpts {
  /** Children to spawn from one capture of this sandbox (default 1, at most 100). */
  count?: number;
  /** Timeout of each child (default 300 000, as E2B). */
  timeoutMs?: number;
  metadata?: Record<string, string>;
  mode?: 'full' | 'live';
  /**
   * Each child's values, set before it answers: environment variables of new processes and variables
   * of its persistent interpreters. `{ temperature: [0.1, 0.5, 0.9] }` (one value per child) or
   * `[{ temperature: 0.1 }, ...]` (one object per child). Each child's `variant` says what it got.
   */
  vary?: Record<string, Array<string | number | boolean>> | Array<Record<string, string | number | boolean>>;
  /** Each child's RNG seed (default: random; reported in each child's `variant.seed`). */
  seeds?: number[];
}

/** What a fork child was given: its index among the fork's children, its values and RNG seed. */
export interface SandboxVariant {
  index: number;
  values: Record<string, string | number | boolean>;
  seed: number;
}

/** E2B's SnapshotInfo: snapshotId is the snapshot tag, Sandbox.create(snapshotId) boots it; `info` is the daemon's full description. */
export interface SandboxSnapshot {
  snapshotId: string;
  names: string[];
  info: SnapshotInfo;
}

export const DEFAULT_SANDBOX_TIMEOUT_MS = CLIENT_DEFAULTS.sandboxTimeoutMs;
/** Without a template: FORKD_TEMPLATE, else the snapshot `npm run quickstart` creates. */
export const DEFAULT_TEMPLATE = 'quickstart-python';

function controllerFor(o: SandboxConnectionOpts = {}): Controller {
  try {
    return new Controller({
      ...(o.url !== undefined ? { url: o.url } : {}),
      ...(o.socketPath !== undefined ? { socketPath: o.socketPath } : {}),
      ...(o.token !== undefined ? { token: o.token } : {}),
      ...(o.requestTimeoutMs !== undefined ? { timeoutMs: o.requestTimeoutMs } : {}),
    });
  } catch (e) {
    // new URL() throws a bare TypeError for a malformed url (or FORKD_URL).
    throw e instanceof ForkdSdkError ? e : errorFor('FORKD_E_INVALID_ARGUMENT', `invalid daemon address: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export class Sandbox {
  readonly sandboxId: string;
  readonly commands: Commands;
  readonly files: Filesystem;
  /** The snapshot's language: what runCode and eval run without a language. */
  readonly language: 'python' | 'js';
  /** A fork child's index, values and seed (fork with `vary`); null when not a fork child. */
  readonly variant: SandboxVariant | null;

  /** Use Sandbox.create / Sandbox.connect. `controller` is the whole REST API, for what E2B has no name for. */
  protected constructor(readonly controller: Controller, info: WireSandboxInfo) {
    this.sandboxId = info.id;
    this.language = info.language;
    this.variant = info.variant ?? null;
    this.commands = new Commands(controller, info.id);
    this.files = new Filesystem(controller, info.id);
  }

  static create(opts?: SandboxOpts): Promise<Sandbox>;
  static create(template: string, opts?: SandboxOpts): Promise<Sandbox>;
  static create(a?: string | SandboxOpts, b?: SandboxOpts): Promise<Sandbox> {
    const opts = (typeof a === 'string' ? b : a) ?? {};
    const tag = (typeof a === 'string' ? a : undefined) ?? opts.template ?? opts.snapshotTag ?? process.env.FORKD_TEMPLATE ?? DEFAULT_TEMPLATE;
    return guard(async () => {
      const ctl = controllerFor(opts);
      const timeoutMs = opts.timeoutMs ?? DEFAULT_SANDBOX_TIMEOUT_MS;
      const [info] = await ctl.spawnSandboxes({
        snapshot_tag: tag,
        n: 1,
        ...(timeoutMs > 0 ? { timeout_ms: timeoutMs } : {}),
        ...(opts.envs ? { envs: opts.envs } : {}),
        ...(opts.metadata ? { metadata: opts.metadata } : {}),
        ...limitsBody(opts.limits),
        ...egressBody(opts.allowInternetAccess, typeof opts.network === 'object' ? opts.network : undefined),
        ...(opts.network || opts.allowInternetAccess ? { network: true } : {}),
        ...(opts.allowGuestFork ? { allow_guest_fork: { max_count: opts.allowGuestFork.maxCount, max_depth: opts.allowGuestFork.maxDepth } } : {}),
      });
      return new this(ctl, info!);
    });
  }

  /**
   * Attaches to a running sandbox, or resumes a paused one (same id, interpreter state, files,
   * envs and metadata). NotFoundError (FORKD_E_SANDBOX_NOT_FOUND) if it is neither.
   */
  static connect(sandboxId: string, opts: SandboxConnectionOpts = {}): Promise<Sandbox> {
    return guard(async () => {
      const ctl = controllerFor(opts);
      return new this(ctl, await getOrResume(ctl, sandboxId));
    });
  }

  /** Live sandboxes as E2B's paginator; `await Sandbox.list().toArray()` for a plain array. */
  static list(opts: SandboxListOpts = {}): SandboxPaginator {
    const ctl = controllerFor(opts);
    const want = opts.query?.metadata;
    const states = opts.query?.state ?? ['running'];
    const [first] = Object.entries(want ?? {});
    return new SandboxPaginator(() => guard(async () => {
      const out: SandboxDetails[] = [];
      if (states.includes('running')) {
        // The daemon filters on one metadata pair; any further pairs are checked here.
        const all = await ctl.listSandboxes({ ...(opts.template ? { tag: opts.template } : {}), ...(first ? { metadata: `${first[0]}=${first[1]}` } : {}) });
        out.push(...all.filter((s) => matchesMetadata(s.metadata, want)).map(toDetails));
      }
      if (states.includes('paused')) {
        const paused = (await pausedWorkspaces(ctl)).filter((w) => matchesMetadata(w.metadata, want) && (!opts.template || w.snapshot_tag === opts.template));
        // A workspace does not say its language: its snapshot does.
        const lang = paused.length ? new Map((await ctl.listSnapshots()).map((s) => [s.tag, s.language])) : new Map<string, 'python' | 'js'>();
        out.push(...paused.map((w) => pausedDetails(w, lang.get(w.state_tag ?? w.snapshot_tag) ?? lang.get(w.snapshot_tag) ?? 'python')));
      }
      return out;
    }), opts.limit);
  }

  /** true if it was killed, false if there was no such sandbox (E2B semantics). A paused sandbox is removed with its saved state. */
  static kill(sandboxId: string, opts: SandboxConnectionOpts = {}): Promise<boolean> {
    return guard(() => killSandboxOrPaused(controllerFor(opts), sandboxId));
  }

  static setTimeout(sandboxId: string, timeoutMs: number, opts: SandboxConnectionOpts = {}): Promise<void> {
    return guard(async () => {
      await controllerFor(opts).setSandboxTimeout(sandboxId, timeoutMs);
    });
  }

  static getInfo(sandboxId: string, opts: SandboxConnectionOpts = {}): Promise<SandboxDetails> {
    return guard(async () => toDetails(await controllerFor(opts).getSandbox(sandboxId)));
  }

  /** E2B's static fork: children of a running sandbox (see fork()). */
  static fork(sandboxId: string, opts: ForkOpts & SandboxConnectionOpts = {}): Promise<Array<Sandbox | ForkdSdkError>> {
    return guard(async () => {
      const ctl = controllerFor(opts);
      return new this(ctl, await ctl.getSandbox(sandboxId)).fork(opts);
    });
  }

  /** true if it was killed, false if it was already gone. A paused sandbox is removed with its saved state. */
  kill(): Promise<boolean> {
    return guard(() => killSandboxOrPaused(this.controller, this.sandboxId));
  }

  /**
   * E2B's pause: saves memory, devices and disk and stops the VM; Sandbox.connect(sandboxId)
   * resumes it with the same id. true if this call paused it, false if it was already paused.
   * The sandbox becomes a workspace named after its id (it has no timeout from then on).
   */
  pause(opts: { keepMemory?: boolean } = {}): Promise<boolean> {
    return guard(async () => {
      checkPauseOpts(opts);
      return pauseSandbox(this.controller, this.sandboxId);
    });
  }

  /** E2B's instance connect: resumes this sandbox if it is paused; resolves with this. */
  connect(): Promise<this> {
    return guard(async () => {
      await getOrResume(this.controller, this.sandboxId);
      return this;
    });
  }

  /**
   * E2B's getHost: "host:port" on the daemon's host (loopback unless the operator chose another
   * address) whose connections reach the guest's TCP `port`. Asynchronous here (the daemon opens
   * the listener on first use); the same address on every call; gone with the sandbox. Works
   * without `network` and whatever the egress policy.
   */
  getHost(port: number): Promise<string> {
    return guard(async () => {
      const e = await this.controller.exposePort(this.sandboxId, port);
      return `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
    });
  }

  /** The daemon kills the sandbox timeoutMs from now. */
  setTimeout(timeoutMs: number): Promise<void> {
    return guard(async () => {
      await this.controller.setSandboxTimeout(this.sandboxId, timeoutMs);
    });
  }

  /** Replaces this sandbox's egress policy, applied atomically (E2B's updateNetwork); nothing given: the daemon's default. */
  updateNetwork(network: SandboxNetworkOpts & { allowInternetAccess?: boolean } = {}): Promise<void> {
    return guard(async () => {
      await this.controller.updateSandboxNetwork(this.sandboxId, egressBody(network.allowInternetAccess, network));
    });
  }

  /** true while the sandbox exists and its agent answers. */
  isRunning(): Promise<boolean> {
    return guard(async () => {
      try {
        await this.controller.pingSandbox(this.sandboxId);
        return true;
      } catch (e) {
        if (meansSandboxGone(e)) return false;
        throw e;
      }
    });
  }

  getInfo(): Promise<SandboxDetails> {
    return guard(async () => toDetails(await this.controller.getSandbox(this.sandboxId)));
  }

  /** The agent's health (forkd's ping). */
  ping() {
    return guard(() => this.controller.pingSandbox(this.sandboxId));
  }

  /**
   * Runs code in the persistent interpreter (@e2b/code-interpreter's runCode): Python through the
   * run_code route (rich results: plots as PNG, DataFrames as HTML, display()), JavaScript through
   * eval (text and JSON of the last value). Errors in the code
   * are in `execution.error`, not thrown; only failures to run it throw.
   */
  runCode(code: string, opts: RunCodeOpts = {}): Promise<Execution> {
    return guard(async () => {
      const language = evalLanguage(opts.language) ?? this.language;
      const timeout_secs = timeoutSecs(opts.timeoutMs, CALL_TIMEOUT_SECS.eval * 1000);
      const e = language === 'python'
        ? fromRunCode(await this.controller.runCode(this.sandboxId, { code, timeout_secs }))
        : toExecution(await this.controller.eval(this.sandboxId, { code, language, timeout_secs }));
      deliver(e, opts);
      return e;
    });
  }

  /** The daemon's eval as it answers (result repr, result_json, error, traceback, stdout, stderr). */
  eval(code: string, opts: { language?: RunCodeLanguage; timeoutMs?: number } = {}): Promise<EvalResult> {
    return guard(async () => {
      const language = evalLanguage(opts.language);
      return this.controller.eval(this.sandboxId, { code, ...(language ? { language } : {}), timeout_secs: timeoutSecs(opts.timeoutMs, CALL_TIMEOUT_SECS.eval * 1000) });
    });
  }

  /**
   * E2B's fork: captures this sandbox once and spawns `count` children from that capture; this one
   * keeps running with its id and timeout. E2B's shape, Array<Sandbox | Error>: E2B reports a child
   * that failed to start as an Error entry. The daemon starts all children or none, so here every
   * entry is a Sandbox and a failure throws (typed) instead.
   */
  fork(opts: ForkOpts = {}): Promise<Array<Sandbox | ForkdSdkError>> {
    return guard(async () => {
      const timeoutMs = opts.timeoutMs ?? DEFAULT_SANDBOX_TIMEOUT_MS;
      const r = await this.controller.forkSandbox(this.sandboxId, {
        count: opts.count ?? 1,
        ...(timeoutMs > 0 ? { timeout_ms: timeoutMs } : {}),
        ...(opts.mode ? { mode: opts.mode } : {}),
        ...(opts.metadata ? { metadata: opts.metadata } : {}),
        ...(opts.vary ? { vary: opts.vary } : {}),
        ...(opts.seeds ? { seeds: opts.seeds } : {}),
      });
      const Ctor = this.constructor as new (c: Controller, i: WireSandboxInfo) => Sandbox;
      return r.sandboxes.map((s) => new Ctor(this.controller, s));
    });
  }

  /** Captures this sandbox as a snapshot (a branch); the sandbox keeps running. */
  createSnapshot(opts: { name?: string; mode?: 'full' | 'live' } = {}): Promise<SandboxSnapshot> {
    return guard(async () => {
      const r = await this.controller.branchSandbox(this.sandboxId, { ...(opts.name ? { tag: opts.name } : {}), ...(opts.mode ? { mode: opts.mode } : {}), wait: true });
      // Asked with wait=true, so the finished snapshot; a "writing" answer is followed to its end.
      const info = 'job_id' in r ? ((await this.controller.waitJob(r.job_id)) as SnapshotInfo) : r;
      return { snapshotId: info.tag, names: [info.tag], info };
    });
  }
}
