/**
 * A test network made of namespaces and veths, standing in for N1's plumbing and for the outside world:
 *   guest ns (the VM's side of the tap; a veth here) -- child ns (NAT to hostAddr, the egress table)
 *   -- uplink ns (the egress proxy, a "daemon" port) -- test-host ns (HTTP/TLS/DNS test servers,
 *   10.77.0.2 and 10.77.0.3, and 169.254.169.254 as a metadata stand-in).
 * Nothing routes beyond the uplink namespace. Every name carries the run's prefix; destroy() removes all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTool } from '../../../qemu/tools.js';
import type { ChildNetwork } from '../../types.js';
import type { ServerSpec } from './servers.js';
import type { Probe, ProbeResult } from './probe.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const sh = (cmd: string, ...args: string[]) => runTool(cmd, args, { timeoutMs: 15_000 });
const inNs = (ns: string, ...argv: string[]) => sh('ip', 'netns', 'exec', ns, ...argv);

export const TEST_HOST = { real: '10.77.0.2', other: '10.77.0.3', uplinkSide: '10.77.0.1', range: '10.77.0.0/24', metadata: '169.254.169.254' };
export const POOL = '10.200.0.0/16';
export const DAEMON_PORT = 7777;
export const OTHER_CHILD_PORT = 9999;

/** A node process (tsx) inside a namespace that prints "ready" when listening. */
async function startIn(ns: string, script: string, arg: string): Promise<ChildProcess> {
  const p = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '--conditions=source', '--import', 'tsx', path.join(here, script), arg], { cwd: here, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    p.stdout!.once('data', (d: Buffer) => (d.toString().startsWith('ready') ? resolve() : reject(new Error(`${script}: ${d}`))));
    p.once('exit', (c) => reject(new Error(`${script} exited ${c}`)));
  });
  return p;
}

export class EgressTestNet {
  readonly uplink: string;
  readonly testHost: string;
  private readonly processes: ChildProcess[] = [];
  private readonly namespaces: string[] = [];
  readonly certDir: string;

  private constructor(readonly prefix: string) {
    this.uplink = `${prefix}-up`;
    this.testHost = `${prefix}-th`;
    this.certDir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-cert-`));
  }

  /** prefix: short (interface names are at most 15 characters: prefix + 5). */
  static async create(prefix: string): Promise<EgressTestNet> {
    const t = new EgressTestNet(prefix);
    try {
      await t.build();
      return t;
    } catch (e) {
      await t.destroy();
      throw e;
    }
  }

  private async addNs(name: string): Promise<void> {
    await sh('ip', 'netns', 'add', name);
    this.namespaces.push(name);
    await sh('ip', '-n', name, 'link', 'set', 'lo', 'up');
  }

  private async veth(a: string, nsA: string, b: string, nsB: string): Promise<void> {
    await sh('ip', 'link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB);
    await sh('ip', '-n', nsA, 'link', 'set', a, 'up');
    await sh('ip', '-n', nsB, 'link', 'set', b, 'up');
  }

  private async build(): Promise<void> {
    const p = this.prefix;
    await this.addNs(this.uplink);
    await this.addNs(this.testHost);
    await this.veth(`${p}-uth`, this.uplink, `${p}-thu`, this.testHost);
    await sh('ip', '-n', this.uplink, 'addr', 'add', `${TEST_HOST.uplinkSide}/24`, 'dev', `${p}-uth`);
    await sh('ip', '-n', this.testHost, 'addr', 'add', `${TEST_HOST.real}/24`, 'dev', `${p}-thu`);
    await sh('ip', '-n', this.testHost, 'addr', 'add', `${TEST_HOST.other}/24`, 'dev', `${p}-thu`);
    await sh('ip', '-n', this.testHost, 'addr', 'add', `${TEST_HOST.metadata}/32`, 'dev', 'lo');
    await sh('ip', '-n', this.testHost, 'route', 'add', 'default', 'via', TEST_HOST.uplinkSide);
    await sh('ip', '-n', this.uplink, 'route', 'add', `${TEST_HOST.metadata}/32`, 'via', TEST_HOST.real);
    await inNs(this.uplink, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');

    await sh('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=allowed.test', '-keyout', path.join(this.certDir, 'key.pem'), '-out', path.join(this.certDir, 'cert.pem'));
    const cert = readFileSync(path.join(this.certDir, 'cert.pem'), 'utf8');
    const key = readFileSync(path.join(this.certDir, 'key.pem'), 'utf8');
    const hosts: ServerSpec[] = [
      { kind: 'http', addr: TEST_HOST.real, port: 80, label: 'real' },
      { kind: 'http', addr: TEST_HOST.other, port: 80, label: 'other' },
      { kind: 'https', addr: TEST_HOST.real, port: 443, label: 'real-tls', cert, key },
      { kind: 'https', addr: TEST_HOST.other, port: 443, label: 'other-tls', cert, key },
      { kind: 'tcp', addr: TEST_HOST.real, port: 8080, label: 'real-8080' },
      { kind: 'http', addr: TEST_HOST.metadata, port: 80, label: 'metadata' },
      { kind: 'dns', addr: TEST_HOST.real, port: 53, records: { 'allowed.test': TEST_HOST.real, 'other.test': TEST_HOST.other, 'sub.wild.test': TEST_HOST.real, 'hostside.test': TEST_HOST.uplinkSide, 'meta.test': TEST_HOST.metadata } },
    ];
    this.processes.push(await startIn(this.testHost, 'servers.ts', JSON.stringify(hosts)));
    // The "daemon's port" on every address of the uplink (the host in production).
    this.processes.push(await startIn(this.uplink, 'servers.ts', JSON.stringify([{ kind: 'tcp', addr: '0.0.0.0', port: DAEMON_PORT, label: 'daemon' }])));
  }

  /**
   * A child as N1 would make it: its namespace, a veth to the uplink with hostAddr (a /30 of the
   * pool, index i), and the guest namespace behind the "tap" with NAT to hostAddr.
   */
  async addChild(i: number, opts: { guest: boolean; listen?: boolean }): Promise<ChildNetwork & { guestNs: string }> {
    const p = this.prefix;
    const netns = `${p}-c${i}`;
    const guestNs = `${p}-g${i}`;
    const base = 4 * i;
    const hostAddr = `10.200.0.${base + 2}`;
    const uplinkSide = `10.200.0.${base + 1}`;
    const net: ChildNetwork = { netns, netnsPath: `/run/netns/${netns}`, guestAddr: '172.16.0.2', gatewayAddr: '172.16.0.1', tap: `${p}-t${i}`, vethChild: `${p}-c${i}u`, vethUplink: `${p}-u${i}c`, hostAddr, uplinkNetns: this.uplink };
    await this.addNs(netns);
    await this.veth(net.vethChild, netns, net.vethUplink, this.uplink);
    await sh('ip', '-n', netns, 'addr', 'add', `${hostAddr}/30`, 'dev', net.vethChild);
    await sh('ip', '-n', this.uplink, 'addr', 'add', `${uplinkSide}/30`, 'dev', net.vethUplink);
    await sh('ip', '-n', netns, 'route', 'add', 'default', 'via', uplinkSide);
    await inNs(netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    if (opts.guest) {
      await this.addNs(guestNs);
      await this.veth(net.tap, netns, `${p}-g${i}e`, guestNs);
      await sh('ip', '-n', netns, 'addr', 'add', `${net.gatewayAddr}/30`, 'dev', net.tap);
      await sh('ip', '-n', guestNs, 'addr', 'add', `${net.guestAddr}/30`, 'dev', `${p}-g${i}e`);
      await sh('ip', '-n', guestNs, 'route', 'add', 'default', 'via', net.gatewayAddr);
      await runTool('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], { input: `table ip ${p.replace(/-/g, '_')}_nat {\n chain post { type nat hook postrouting priority srcnat; oifname "${net.vethChild}" snat to ${hostAddr}; }\n}\n` });
    }
    if (opts.listen) this.processes.push(await startIn(netns, 'servers.ts', JSON.stringify([{ kind: 'tcp', addr: hostAddr, port: OTHER_CHILD_PORT, label: 'other-child' }])));
    return { ...net, guestNs };
  }

  async removeNs(name: string): Promise<void> {
    await sh('ip', 'netns', 'del', name);
    this.namespaces.splice(this.namespaces.indexOf(name), 1);
  }

  /** Runs probes from inside a guest namespace (one process for all of them). */
  async probe(guestNs: string, probes: Probe[], timeoutMs = 2000): Promise<ProbeResult[]> {
    const { stdout } = await runTool('nsenter', [`--net=/run/netns/${guestNs}`, process.execPath, '--conditions=source', '--import', 'tsx', path.join(here, 'probe.ts'), JSON.stringify(probes)], { cwd: here, timeoutMs: timeoutMs + 20_000, env: { ...process.env, PROBE_TIMEOUT_MS: String(timeoutMs) } });
    return JSON.parse(stdout) as ProbeResult[];
  }

  async destroy(): Promise<void> {
    for (const p of this.processes) p.kill('SIGKILL');
    // Deleting a namespace removes its veth ends (and their peers) and its nft tables.
    for (const ns of this.namespaces.splice(0).reverse()) await sh('ip', 'netns', 'del', ns).catch(() => undefined);
    rmSync(this.certDir, { recursive: true, force: true });
  }

  /** Namespaces with this run's prefix still present (for leak checks). */
  async leftovers(): Promise<string[]> {
    const { stdout } = await sh('ip', 'netns', 'list');
    return stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${this.prefix}-`));
  }
}
