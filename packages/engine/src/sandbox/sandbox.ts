import type { ChildNetwork } from '../network/index.js';
import { ForkdError, type EvalResultT, type PingResultT, type EvalLanguageT, type RunCodeLanguageT, type VaryValuesT } from '@forkd/protocol';
import type { AgentClient, RunCodeOutcome } from '../agent-client/index.js';
import { truncateGuestText } from '../agent-client/guest-errors.js';
import type { Vm } from '../vm/vm.js';
import type { BranchSource } from '../snapshot/branch.js';
import { SandboxCommands, type Envs } from './commands.js';
import { SandboxFiles } from './files.js';
import os from 'node:os';
import { processCpuMs, readHostStats, type HostStats } from './host-stats.js';
import type { StatsResultT } from '@forkd/protocol';
import { IdlePause, type IdlePauseSettings, type IdlePauseStats } from '../vm/idle-pause.js';

export interface SandboxTimings {
  /** From the spawn request to `cont` returning: the guest is running. */
  spawn_to_running_ms: number;
  /** From the spawn request to the agent's reply after restore (clock set, RNG reseeded). */
  spawn_to_ready_ms: number;
  /** launch: QEMU started and QMP up; migrate: device state loaded; agent_wait: host connected to the agent channel; restore: clock + RNG reset answered. */
  phases: { launch_ms: number; migrate_ms: number; cont_ms: number; agent_wait_ms?: number; restore_ms: number };
  /** Guest clock minus host clock before the agent corrected it. */
  clock_skew_ms: number;
  /** Taken from the warm pool (started and loaded ahead: launch and migrate are 0). */
  from_pool?: boolean;
}

/** What a fork child was given (fork with variations): its index, values and RNG seed. */
export interface SandboxVariant {
  index: number;
  values: VaryValuesT;
  seed: number;
  /** The child's `vary` call answered (host ms from resume to its reply). */
  vary_ms: number;
}

/** Guest budget for setting envs in an interpreter (the host waits a margin longer). */
const SET_ENVS_TIMEOUT_MS = 30_000;

/** Each sandbox's VM, for the engine only: outside it, a sandbox is reached through its methods. */
const vms = new WeakMap<Sandbox, Vm>();

/** A running child: a restored VM whose agent has answered. Everything done inside the guest goes through here. */
export class Sandbox {
  readonly id: string;
  readonly commands: SandboxCommands;
  readonly files: SandboxFiles;
  /** Set on a child of a fork with variations (spawn's `variants`); null otherwise. */
  variant: SandboxVariant | null = null;
  #envs: Envs;

  /** envs: what the guest already has (an adopted sandbox); setEnvs changes them. */
  constructor(
    vm: Vm,
    readonly tag: string,
    readonly timings: SandboxTimings,
    readonly language: EvalLanguageT,
    readonly createdAt = new Date(),
    envs: Envs = {},
  ) {
    vms.set(this, vm);
    this.id = `sb-${vm.id}`;
    this.#envs = { ...envs };
    const agent = (): AgentClient => agentOf(this);
    this.commands = new SandboxCommands(agent, () => this.#envs);
    this.files = new SandboxFiles(agent);
  }

  get pid(): number {
    return vmOf(this).pid;
  }
  /** Why the VM ended ('oom': killed by its memory limit); settles once it has exited. */
  get endCause(): Promise<'killed' | 'oom' | 'exited'> {
    return vmOf(this).endCause;
  }

  /** Memory charged to this child's cgroup now (bytes), or null without a memory limit. */
  async memoryChargedBytes(): Promise<number | null> {
    return (await vmOf(this).cgroup?.memoryBytes().catch(() => null)) ?? null;
  }

  /** The host's view: QEMU's CPU time and memory, its cgroup's charge, its disk overlay's blocks. */
  hostStats(): Promise<HostStats> {
    const vm = vmOf(this);
    return readHostStats({ pid: vm.pid, cgroupMemory: async () => (await vm.cgroup?.memoryBytes()) ?? null, diskPath: vm.diskPath, hostCpus: os.cpus().length });
  }

  /** The guest's view (its agent): CPU ticks, memory and root-disk usage. */
  guestStats(o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<StatsResultT> {
    return agentOf(this).stats(o);
  }

  /** Resolves when the VM process has exited, for whatever reason. */
  get exited(): Promise<void> {
    return vmOf(this).proc.exited.then(() => undefined);
  }

  /** The VM's run directory (what a successor needs to adopt it). */
  get dir(): string {
    return vmOf(this).dir;
  }

  get alive(): boolean {
    return vmOf(this).alive;
  }

  /** The child's network plumbing (namespace, tap, veth, unique address), or null. */
  get net(): ChildNetwork | null {
    return vmOf(this).net;
  }

  /** The child's network namespace (a name `ip netns exec` takes), or null. */
  get netns(): string | null {
    return vmOf(this).net?.netns ?? null;
  }

  /** The guest's address: from inside `netns` the guest answers there. */
  get guestAddr(): string | null {
    return vmOf(this).net?.guestAddr ?? null;
  }

  /**
   * A host address (loopback unless the operator named another) whose connections reach the
   * guest's TCP port: E2B's getHost. The same address on every call; gone with the sandbox.
   */
  async exposePort(port: number): Promise<{ host: string; port: number }> {
    const lease = vmOf(this).network;
    if (!lease) throw new ForkdError('FORKD_E_NOT_IMPLEMENTED', `sandbox ${this.id} has no network namespace (the daemon runs without root or without networking): its ports cannot be exposed`);
    const e = await lease.ports.expose(port);
    return { host: e.host, port: e.port };
  }

  /** Whether the child has a way out (a veth to the uplink), not just its own namespace. */
  get network(): boolean {
    return Boolean(vmOf(this).net?.vethUplink);
  }

  /** The environment every command gets (under its own env) and the interpreter was given. */
  get envs(): Envs {
    return { ...this.#envs };
  }

  ping(o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PingResultT> {
    return agentOf(this).ping(o);
  }

  /** Evaluates code in the guest's interpreter; timeoutMs is the guest's budget (the host waits a margin longer). */
  eval(language: EvalLanguageT, code: string, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<EvalResultT> {
    return agentOf(this).eval(language, code, { ...(o.timeoutMs !== undefined ? { evalTimeoutMs: o.timeoutMs } : {}), ...(o.signal ? { signal: o.signal } : {}) });
  }

  /** Runs a Python (or browser) cell with rich results (E2B runCode): PNG/JPEG bytes in images, beside results. */
  runCode(code: string, o: { timeoutMs?: number; signal?: AbortSignal; language?: RunCodeLanguageT } = {}): Promise<RunCodeOutcome> {
    return agentOf(this).runCode(code, { ...(o.timeoutMs !== undefined ? { evalTimeoutMs: o.timeoutMs } : {}), ...(o.signal ? { signal: o.signal } : {}), ...(o.language ? { language: o.language } : {}) });
  }

  /** Adds envs: to the interpreter of the sandbox's language now, and to every later command. */
  async setEnvs(envs: Envs): Promise<void> {
    if (Object.keys(envs).length === 0) return;
    const json = JSON.stringify(envs);
    const code = this.language === 'python'
      ? `import os as _forkd_os, json as _forkd_json\n_forkd_os.environ.update(_forkd_json.loads(${JSON.stringify(json)}))`
      : `Object.assign(process.env, ${json}); undefined`;
    // A browser sandbox's agent process is a JS one: its env is what later commands inherit.
    const r = await this.eval(this.language === 'python' ? 'python' : 'js', code, { timeoutMs: SET_ENVS_TIMEOUT_MS });
    if (!r.ok) throw new ForkdError('FORKD_E_AGENT_ERROR', `could not set envs in sandbox ${this.id}: ${truncateGuestText(r.error?.message ?? '')}`);
    this.#envs = { ...this.#envs, ...envs };
  }

  /** The idle pause's state (null when this sandbox is never paused). */
  get idlePause(): IdlePauseStats | null {
    return vmOf(this).idle?.stats ?? null;
  }

  kill(): Promise<void> {
    return vmOf(this).kill();
  }
}

/** Runs fn with the guest running (woken from an idle pause if stopped, kept awake until fn ends). */
export function holdAwake<T>(sb: Sandbox, fn: () => Promise<T>): Promise<T> {
  const idle = vmOf(sb).idle;
  return idle ? idle.hold(fn) : fn();
}

/**
 * Stops the sandbox's guest after settings.afterMs without a call (vm/idle-pause.ts). Not for a
 * child with an uplink (connections from outside may wait on it). An agent that cannot set the
 * clock (made before `clock` existed) is never stopped: checked at its idle checks until it
 * answers, off the spawn path.
 */
export function enableIdlePause(sb: Sandbox, settings: IdlePauseSettings, onError: (what: string, e: unknown) => void = () => undefined): boolean {
  const vm = vmOf(sb);
  const agent = agentOf(sb);
  if (vm.idle || vm.net?.vethUplink || !vm.alive) return false;
  const own = { ungated: true, timeoutMs: 10_000 };
  const syncClock = async (): Promise<void> => void (await agent.clock(own));
  let canWake = false; // only a success is kept: a timed-out check is tried again at the next one
  const idle = new IdlePause({
    stop: async () => void (await vm.qmp.execute('stop')),
    cont: async () => void (await vm.qmp.execute('cont')),
    syncClock,
    guestBusy: async () => {
      canWake ||= await syncClock().then(() => true, () => false);
      if (!canWake) return true;
      if ((await agent.procList(own)).some((p) => p.running)) return true;
      return (await agent.servicesList(own)).services.some((s) => s.running);
    },
    cpuMs: () => processCpuMs(vm.pid),
  }, settings, onError);
  vm.idle = idle;
  agent.gate = idle;
  if (vm.network) vm.network.ports.gate = idle;
  return true;
}

/** The sandbox's VM (engine-internal: not exported from the engine's index). */
export function vmOf(sb: Sandbox): Vm {
  const vm = vms.get(sb);
  if (!vm) throw new Error(`sandbox ${sb.id} has no VM`);
  return vm;
}

/** The sandbox's agent connection (engine-internal). */
export function agentOf(sb: Sandbox): AgentClient {
  const agent = vmOf(sb).agent;
  if (!agent) throw new Error('sandbox has no agent connection');
  return agent;
}

/** What a capture needs of a sandbox (snapshot/ knows no Sandbox class, only this view of it). */
export function branchSourceOf(sb: Sandbox): BranchSource {
  const vm = vmOf(sb);
  return { id: sb.id, tag: sb.tag, get alive() { return sb.alive; }, vm };
}
