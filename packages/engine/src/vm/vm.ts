import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import type { VmSpec } from '../qemu/args.js';
import { directStarter, type QemuStarter, type QemuProcess, type LaunchConfinement } from '../qemu/start.js';
import { ChildCgroup } from '../quota/cgroup.js';
import { startQemu } from '../qemu/start.js';
import { claimJailUid, jailMode } from '../qemu/jail.js';
import { QmpClient } from '../qmp/client.js';
import { waitForQmpStatus } from './migration.js';
import { AgentClient } from '../agent-client/index.js';
import type { IdlePause } from './idle-pause.js';
import type { ChildNetwork, NetworkLease } from '../network/index.js';
import { createVmDir, openVmDir, type VmDir } from '../runtime/index.js';

export type VmSpecInput = Omit<VmSpec, 'name' | 'agentSocket' | 'qmpSocket' | 'fdQmpSocket' | 'console' | 'tap'> & { consoleLog?: boolean };

/** A VM's network, recorded in its run dir so a daemon that adopts the VM takes it over. */
export const NET_FILE = 'net.json';

/**
 * One QEMU process with its run directory, QMP channel and agent channel. Owns everything in
 * its run directory and removes it on kill. QEMU dies with its starter (pdeathsig): with the
 * direct starter that is this process; under the daemon it is the keeper, which outlives a
 * crashed daemon on purpose so a restarted one can adopt the VM.
 */
/** Run states a capture leaves a source in until it resumes it (full mode stops it; the switchover holds it). */
const INTERRUPTED_CAPTURE = new Set(['paused', 'finish-migrate', 'postmigrate']);

/** Why a VM ended: killed by forkd, killed by the kernel for its memory limit, or exited on its own. */
export type VmEndCause = 'killed' | 'oom' | 'exited';

export class Vm {
  private killed = false;
  agent: AgentClient | null = null;
  /** Stops the guest while nobody uses it (vm/idle-pause.ts); null when off. */
  idle: IdlePause | null = null;
  /** Settles once QEMU has exited and its cgroup was read (before anything removes it). */
  readonly endCause: Promise<VmEndCause>;

  private constructor(
    readonly vmDir: VmDir,
    readonly proc: QemuProcess,
    readonly qmp: QmpClient,
    /** The child's cgroups (null when no limit needed one). */
    readonly cgroup: ChildCgroup | null,
    /** The VM's writable disk (its overlay), if it has one. */
    readonly diskPath: string | null,
    /** The VM's network namespace (null: its device has no backend). */
    readonly network: NetworkLease | null = null,
  ) {
    this.endCause = proc.exited.then(async () => {
      // Checked even when forkd killed it: a SIGKILL from us never counts as an OOM kill.
      if (cgroup && (await cgroup.oomKills().catch(() => 0)) > 0) return 'oom';
      return this.killed ? 'killed' : 'exited';
    });
    this.endCause.catch(() => undefined);
    void proc.exited.then(() => this.idle?.close(), () => undefined);
  }

  get net(): ChildNetwork | null {
    return this.network?.net ?? null;
  }

  get id(): string {
    return this.vmDir.id;
  }
  get dir(): string {
    return this.vmDir.dir;
  }
  get pid(): number {
    return this.proc.pid;
  }
  get agentSocket(): string {
    return path.join(this.vmDir.dir, 'agent.sock');
  }
  /** The monitor migration descriptors are handed over (vm/migration.ts). */
  get fdQmpSocket(): string {
    return path.join(this.vmDir.dir, 'qmp-fd.sock');
  }
  get consolePath(): string {
    return path.join(this.vmDir.dir, 'console.log');
  }

  /** Creates the run dir (prepare may add files such as the disk overlay), starts QEMU, connects QMP. */
  /**
   * confine (after prepare) may record and create resources outside the run dir (vmDir.addExtras
   * first, so every remover finds them) and returns how QEMU is confined at launch.
   */
  static async start(kind: string, spec: VmSpecInput, opts: { prepare?: (dir: string, vmDir: VmDir) => Promise<Partial<VmSpecInput>>; confine?: (vmDir: VmDir) => Promise<{ launch?: LaunchConfinement; cgroup?: ChildCgroup | null }>; qmpTimeoutMs?: number; starter?: QemuStarter; id?: string; network?: (vmId: string, tapOwner?: number) => Promise<NetworkLease> } = {}): Promise<Vm> {
    const starter = opts.starter ?? directStarter;
    const vmDir = await createVmDir(kind, await starter.owner(), opts.id);
    let proc: QemuProcess | null = null;
    let network = null as NetworkLease | null; // set inside networkP (a cast: TS would narrow it to null)
    try {
      // The namespace after the run dir (a namespace whose dir is gone is stale: network/netns/sweep.ts).
      // It is made while prepare/confine make the disk and cgroups: neither needs the other, and the
      // namespace's tools are most of a networked spawn's extra time (bench/README.md#isolation).
      const networkP = opts.network
        ? (async () => {
            // A jailed QEMU opens its tap as the VM's uid: the tap is made owned by it.
            const lease = await opts.network!(vmDir.id, jailMode() === 'full' ? await claimJailUid(vmDir.dir) : undefined);
            network = lease;
            await fs.writeFile(path.join(vmDir.dir, NET_FILE), JSON.stringify(lease.net));
          })()
        : Promise.resolve();
      const localP = (async () => {
        const extra = opts.prepare ? await opts.prepare(vmDir.dir, vmDir) : {};
        const confined = opts.confine ? await opts.confine(vmDir) : {};
        return { extra, confined };
      })();
      // Both settle before anything is judged, so a failure of one never leaves the other running on.
      const [netR, localR] = await Promise.allSettled([networkP, localP]);
      if (netR.status === 'rejected') throw netR.reason;
      if (localR.status === 'rejected') throw localR.reason;
      const { extra, confined } = localR.value;
      const full: VmSpec = {
        ...spec,
        ...extra,
        name: `forkd-${vmDir.id}`,
        agentSocket: path.join(vmDir.dir, 'agent.sock'),
        qmpSocket: path.join(vmDir.dir, 'qmp.sock'),
        fdQmpSocket: path.join(vmDir.dir, 'qmp-fd.sock'),
        console: (extra.consoleLog ?? spec.consoleLog) ? { kind: 'file', path: path.join(vmDir.dir, 'console.log') } : { kind: 'null' },
        ...(network ? { tap: network.net.tap } : {}),
      } as VmSpec;
      delete (full as { consoleLog?: boolean }).consoleLog;
      // startQemu waits for QMP's greeting, so any start failure carries QEMU's own stderr.
      const started = await startQemu(full, { runDir: vmDir.dir, startTimeoutMs: opts.qmpTimeoutMs ?? 15_000, starter, ...(confined.launch ? { confine: confined.launch } : {}), ...(network ? { netns: network.net.netns } : {}) });
      proc = started.proc;
      await vmDir.setQemuPid(proc.pid);
      return new Vm(vmDir, proc, started.qmp, confined.cgroup ?? null, full.disk && !full.disk.readOnly ? full.disk.path : null, network);
    } catch (e) {
      if (proc) {
        proc.kill('SIGKILL');
        await proc.exited.catch(() => undefined);
      }
      await network?.release().catch(() => undefined);
      await vmDir.remove();
      throw e;
    }
  }

  /** The network an earlier owner recorded in the VM's run dir, if any. */
  static async recordedNetwork(dir: string): Promise<ChildNetwork | null> {
    try {
      return JSON.parse(await fs.readFile(path.join(dir, NET_FILE), 'utf8')) as ChildNetwork;
    } catch {
      return null;
    }
  }

  /**
   * Takes over a running QEMU that an earlier owner started (a daemon restarted while its keeper
   * held the VM): checks the dir names this pid, reconnects QMP and checks the guest is running.
   * The caller reconnects the agent. On failure nothing is killed: the caller decides.
   */
  static async adopt(dir: string, proc: QemuProcess, opts: { qmpTimeoutMs?: number; network?: NetworkLease | null } = {}): Promise<Vm> {
    const vmDir = await openVmDir(dir);
    if (vmDir.owner.qemu_pid !== proc.pid) {
      throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', `VM directory ${dir} records QEMU pid ${vmDir.owner.qemu_pid}, not ${proc.pid}`);
    }
    if (proc.hasExited) throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', `QEMU ${proc.pid} has exited`);
    const qmp = await Promise.race([
      QmpClient.connect(path.join(dir, 'qmp.sock'), { timeoutMs: opts.qmpTimeoutMs ?? 5_000 }),
      proc.exited.then(() => Promise.reject(new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', `QEMU ${proc.pid} exited during adoption`))),
    ]);
    let st = (await qmp.execute('query-status').catch(() => ({}))) as { status?: string };
    if (st.status && INTERRUPTED_CAPTURE.has(st.status)) {
      // Its owner died in the middle of a branch (the source is stopped, or held at switchover):
      // end that migration and run the guest again, as the capture's own finally would have.
      await qmp.execute('migrate_cancel').catch(() => undefined);
      const settled = (s: string) => s !== 'active' && s !== 'pre-switchover' && s !== 'device' && s !== 'cancelling';
      await waitForQmpStatus(qmp, { query: 'query-migrate', until: settled, timeoutMs: 10_000, what: 'an interrupted capture settling' }).catch(() => undefined);
      await qmp.execute('cont').catch(() => undefined);
      st = (await qmp.execute('query-status').catch(() => ({}))) as { status?: string };
    }
    if (st.status !== 'running') {
      qmp.close();
      throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', `adopted VM ${vmDir.id} is ${st.status ?? 'not answering QMP'}, not running`);
    }
    const cgroups = vmDir.owner.extras?.cgroups ?? [];
    const overlay = vmDir.owner.extras?.files.find((f) => f.endsWith('.qcow2')) ?? path.join(dir, 'disk.qcow2');
    return new Vm(vmDir, proc, qmp, cgroups.length > 0 ? new ChildCgroup(cgroups) : null, overlay, opts.network ?? null);
  }

  async connectAgent(timeoutMs = 10_000): Promise<AgentClient> {
    if (!this.agent) this.agent = await AgentClient.connect(this.agentSocket, { connectTimeoutMs: timeoutMs });
    return this.agent;
  }

  /** Rejects with the console tail if QEMU exits before the promise settles. */
  async guard<T>(p: Promise<T>, what: string): Promise<T> {
    const died = async (): Promise<never> => {
      const ex = await this.proc.exited;
      const tail = await this.consoleTail();
      throw new ForkdError('FORKD_E_VM_START_FAILED', `QEMU exited (${ex.signal ?? `code ${ex.code}`}) while ${what}. ${this.proc.stderrTail()} ${tail}`.trim(), { exit_code: ex.code, signal: ex.signal });
    };
    try {
      return await Promise.race([p, this.proc.exited.then(died)]);
    } catch (e) {
      // A dying QEMU closes the agent channel first: give its exit a moment to be the reported cause.
      if (e instanceof ForkdError && e.code === 'FORKD_E_AGENT_UNAVAILABLE') {
        const exited = await Promise.race([this.proc.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 500))]);
        if (exited) await died();
      }
      throw e;
    }
  }

  async consoleTail(bytes = 2000): Promise<string> {
    try {
      const buf = await fs.readFile(this.consolePath);
      return buf.subarray(Math.max(0, buf.length - bytes)).toString('utf8');
    } catch {
      return '';
    }
  }

  get alive(): boolean {
    return !this.killed;
  }

  /** Kills QEMU and removes the run directory (sockets, overlay). Idempotent. */
  async kill(): Promise<void> {
    if (this.killed) return;
    this.killed = true;
    this.idle?.close();
    this.agent?.close();
    this.qmp.close();
    this.proc.kill('SIGKILL');
    await this.proc.exited.catch(() => undefined);
    await this.endCause.catch(() => undefined); // reads the cgroup's OOM count before it is removed
    await this.network?.release().catch(() => undefined);
    await this.vmDir.remove();
  }
}
