/**
 * A test's own network world: an uplink namespace (never the host's real one), behind it a test
 * host namespace (reached through a veth, as a real destination is: not an address of the uplink,
 * which the egress policy always denies) with an HTTP server, and a run dir of its own so the namespaces its children get
 * are named apart from every other run's. Everything is prefixed with the run's tag and removed by
 * close(), also after a failure, together with any child namespace named after the lab's run dir.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { netnsPrefix } from '../network/netns/names.js';

export interface NetLab {
  tag: string;
  uplinkNetns: string;
  pool: string;
  testHost: string;
  /** The test host's range (what --egress-allow-private opens for it). */
  testRange: string;
  /** The namespace the test host lives in. */
  testHostNetns: string;
  httpPort: number;
  runDir: string;
  /** Runs a command inside a namespace and returns its stdout (throws on failure). */
  exec(netns: string, cmd: string[], timeoutMs?: number): string;
  close(): Promise<void>;
}

export function sh(cmd: string, args: string[], timeoutMs = 20_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function openNetLab(): Promise<NetLab> {
  const tag = `fkt${crypto.randomBytes(3).toString('hex')}`;
  const uplinkNetns = `${tag}-up`;
  const testHostNetns = `${tag}-th`;
  const testHost = '10.250.0.1';
  const testRange = '10.250.0.0/24';
  const httpPort = 8080;
  const runDir = path.join('/run', tag);
  await fs.mkdir(runDir, { mode: 0o700 });
  let server: ChildProcess | null = null;
  const exec = (netns: string, cmd: string[], timeoutMs = 20_000) => sh('ip', ['netns', 'exec', netns, ...cmd], timeoutMs);
  const close = async () => {
    server?.kill('SIGKILL');
    // Whatever a failure left of the children's namespaces (named after this lab's run dir), then the lab's own.
    const prefix = netnsPrefix(runDir);
    const children = sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
    for (const ns of [...children, testHostNetns, uplinkNetns]) try { sh('ip', ['netns', 'del', ns]); } catch { /* gone */ }
    await fs.rm(runDir, { recursive: true, force: true });
    await fs.rm(path.join(os.tmpdir(), `${tag}-www`), { recursive: true, force: true });
  };
  try {
    sh('ip', ['netns', 'add', uplinkNetns]);
    sh('ip', ['netns', 'add', testHostNetns]);
    sh('ip', ['-n', uplinkNetns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', uplinkNetns, 'link', 'add', `${tag}u`, 'type', 'veth', 'peer', 'name', `${tag}t`, 'netns', testHostNetns]);
    for (const line of [`addr add 10.250.0.254/24 dev ${tag}u`, `link set ${tag}u up`]) sh('ip', ['-n', uplinkNetns, ...line.split(' ')]);
    for (const line of ['link set lo up', `addr add ${testHost}/24 dev ${tag}t`, `link set ${tag}t up`]) sh('ip', ['-n', testHostNetns, ...line.split(' ')]);
    const root = path.join(os.tmpdir(), `${tag}-www`);
    await fs.mkdir(root, { recursive: true });
    await fs.writeFile(path.join(root, 'hello.txt'), `hello from ${tag}\n`);
    server = spawn('ip', ['netns', 'exec', testHostNetns, '/usr/bin/python3', '-m', 'http.server', '--bind', testHost, '--directory', root, String(httpPort)], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      try {
        if (exec(uplinkNetns, ['curl', '-sf', '--max-time', '1', `http://${testHost}:${httpPort}/hello.txt`]).includes(tag)) break;
      } catch {
        if (i > 50) throw new Error('the test HTTP server did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { tag, uplinkNetns, pool: '10.201.0.0/16', testHost, testRange, testHostNetns, httpPort, runDir, exec, close };
}
