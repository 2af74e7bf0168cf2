/**
 * The daemon's side of egress: starts the proxy process in the uplink namespace, gives the proxy
 * address to the uplink's loopback, and applies a child's policy (its nft table plus the proxy's
 * entry for its host-side address). The spawn path calls prepareEgress and loads the ruleset with
 * the child's namespace, before QEMU runs guest code; updateNetwork calls it again (atomic replacement);
 * removeEgress forgets the child when it ends (its nft table goes with its namespace).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ForkdError, resolveEgressPolicy, type EgressPolicy, type EgressRequest } from '@forkd/protocol';
import { runTool } from '../../qemu/tools.js';
import { which } from '../../qemu/which.js';
import { LineFramer } from '../../util/line-framer.js';
import type { ChildNetwork } from '../types.js';
import type { EgressConfig } from './config.js';
import { renderEgressRuleset } from './nft-rules.js';
import { loadRuleset } from './apply-rules.js';
import { MAX_CONTROL_LINE_BYTES, type ControlReply, type ControlRequest } from './proxy/control.js';

export interface EgressServiceOptions {
  /** The uplink namespace's name (null: the host's own, in production). */
  uplinkNetns: string | null;
  /** Where the proxy's control socket lives (the daemon's run directory). */
  controlSocket: string;
  /** The proxy's stderr goes here (null: inherited). */
  logFd?: number | null;
}

const netnsPath = (name: string) => `/run/netns/${name}`;
const inUplink = (uplink: string | null, argv: string[]) => (uplink ? ['nsenter', `--net=${netnsPath(uplink)}`, ...argv] : argv);

/** Every address configured in a namespace (the host's own addresses, when it is the uplink). */
export async function namespaceAddresses(uplink: string | null): Promise<string[]> {
  const [cmd, ...args] = inUplink(uplink, ['ip', '-j', 'addr', 'show']);
  const { stdout } = await runTool(cmd!, args, { timeoutMs: 10_000 });
  const links = JSON.parse(stdout) as Array<{ addr_info?: Array<{ local?: string }> }>;
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local).filter((a): a is string => !!a && !a.includes('%')));
}

export class EgressService {
  private readonly framer = new LineFramer(MAX_CONTROL_LINE_BYTES);
  private readonly waiting: Array<(r: ControlReply) => void> = [];
  private constructor(
    readonly config: EgressConfig,
    private readonly opts: EgressServiceOptions,
    private readonly proc: ChildProcess,
    private readonly control: net.Socket,
  ) {
    control.on('data', (chunk: Buffer) => {
      for (const line of this.framer.push(chunk)) this.waiting.shift()?.(JSON.parse(line) as ControlReply);
    });
    control.on('close', () => { for (const w of this.waiting.splice(0)) w({ ok: false, error: 'egress proxy gone' }); });
  }

  /** Starts the proxy (listening on config.proxy in the uplink namespace); the host's addresses join the always-denied set. */
  static async start(config: EgressConfig, opts: EgressServiceOptions): Promise<EgressService> {
    const hostAddresses = [...new Set([...config.hostAddresses, ...(await namespaceAddresses(opts.uplinkNetns))])];
    const full: EgressConfig = { ...config, hostAddresses };
    const addr = `${config.proxy.addr}/${net.isIP(config.proxy.addr) === 6 ? 128 : 32}`;
    const [ip, ...ipArgs] = inUplink(opts.uplinkNetns, ['ip', 'addr', 'replace', addr, 'dev', 'lo']);
    await runTool(ip!, ipArgs, { timeoutMs: 10_000 });
    const [lo, ...loArgs] = inUplink(opts.uplinkNetns, ['ip', 'link', 'set', 'lo', 'up']);
    await runTool(lo!, loArgs, { timeoutMs: 10_000 });

    const here = fileURLToPath(import.meta.url);
    const fromSource = here.endsWith('.ts');
    const main = path.join(path.dirname(here), 'proxy', fromSource ? 'main.ts' : 'main.js');
    const node = [process.execPath, ...(fromSource ? ['--conditions=source', '--import', 'tsx'] : []), main, '--control', opts.controlSocket, '--config', JSON.stringify(full)];
    // The proxy dies with the daemon (pdeathsig survives nsenter's exec).
    const setpriv = await which('setpriv');
    const argv = [...(setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : []), ...inUplink(opts.uplinkNetns, node)];
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', opts.logFd ?? 'inherit'], cwd: path.dirname(here) });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new ForkdError('FORKD_E_TIMEOUT', 'the egress proxy did not start within 30 s')); }, 30_000);
      proc.stdout!.once('data', (d: Buffer) => { clearTimeout(timer); d.toString().startsWith('ready') ? resolve() : reject(new ForkdError('FORKD_E_INTERNAL', `egress proxy: ${d}`)); });
      proc.once('exit', (code, sig) => { clearTimeout(timer); reject(new ForkdError('FORKD_E_TOOL_FAILED', `the egress proxy exited at start (${code ?? sig})`)); });
    });
    const control = net.connect(opts.controlSocket);
    await new Promise<void>((resolve, reject) => { control.once('connect', resolve); control.once('error', reject); });
    return new EgressService(full, opts, proc, control);
  }

  private call(req: ControlRequest): Promise<ControlReply & { ok: true }> {
    return new Promise((resolve, reject) => {
      this.waiting.push((r) => (r.ok ? resolve(r) : reject(new ForkdError('FORKD_E_INTERNAL', `egress proxy: ${r.error}`))));
      this.control.write(`${JSON.stringify(req)}\n`);
    });
  }

  /** The policy a request resolves to under this daemon's default (throws FORKD_E_INVALID_ARGUMENT). */
  resolve(request: EgressRequest): EgressPolicy {
    return resolveEgressPolicy(request, this.config.defaultEgress);
  }

  /**
   * Applies (or replaces) a child's policy: the proxy learns it first, so traffic the new rules
   * redirect finds it; then the nft table is swapped in one transaction.
   */
  async applyEgress(net: ChildNetwork, request: EgressRequest): Promise<EgressPolicy> {
    const { policy, ruleset } = await this.prepareEgress(net, request);
    await loadRuleset(net, ruleset);
    return policy;
  }

  /**
   * A new child's policy: the proxy learns it, and the nft ruleset comes back for the caller to load
   * with the rest of the namespace in one transaction (netns/netns.ts: one process, not two).
   */
  async prepareEgress(net: ChildNetwork, request: EgressRequest): Promise<{ policy: EgressPolicy; ruleset: string }> {
    const policy = this.resolve(request);
    await this.call({ op: 'set', hostAddr: net.hostAddr, policy });
    return { policy, ruleset: renderEgressRuleset(net, policy, this.config) };
  }

  /** Forgets a child (its namespace, and with it its nft table, is removed by the network code). */
  async removeEgress(net: Pick<ChildNetwork, 'hostAddr'>): Promise<boolean> {
    return (await this.call({ op: 'remove', hostAddr: net.hostAddr })).removed ?? false;
  }

  async state(): Promise<{ children: string[]; stats: Record<string, number> }> {
    const r = await this.call({ op: 'state' });
    return { children: r.children ?? [], stats: r.stats ?? {} };
  }

  async stop(): Promise<void> {
    this.control.destroy();
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    const addr = `${this.config.proxy.addr}/${net.isIP(this.config.proxy.addr) === 6 ? 128 : 32}`;
    const [ip, ...args] = inUplink(this.opts.uplinkNetns, ['ip', 'addr', 'del', addr, 'dev', 'lo']);
    await runTool(ip!, args, { timeoutMs: 10_000 }).catch(() => undefined);
  }
}
