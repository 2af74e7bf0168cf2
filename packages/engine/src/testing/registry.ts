/**
 * A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on loopback, with its
 * own config file, a temp storage dir and a free port; plain or with htpasswd (bcrypt) basic auth.
 * Never a registry elsewhere: tests send traffic to 127.0.0.1 only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runTool } from '../qemu/tools.js';

export interface TestRegistry {
  host: string;
  dir: string;
  /** Bytes of blob data the registry stores (what has been pushed, deduplicated). */
  storedBlobBytes(): Promise<number>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startRegistry(opts: { users?: Record<string, string>; token?: { realm: string; service: string; issuer: string; certFile: string } } = {}): Promise<TestRegistry> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let auth = '';
  if (opts.users) {
    const lines: string[] = [];
    for (const [u, p] of Object.entries(opts.users)) lines.push((await runTool('htpasswd', ['-Bbn', u, p])).stdout.trim());
    await fs.writeFile(path.join(dir, 'htpasswd'), `${lines.join('\n')}\n`);
    auth = `auth:\n  htpasswd:\n    realm: forkd-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  } else if (opts.token) {
    const t = opts.token;
    auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certFile}\n`;
  }
  const config = `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n  secret: ${Math.random().toString(36).slice(2)}\n${auth}`;
  await fs.writeFile(path.join(dir, 'config.yml'), config);
  const child: ChildProcess = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'docker-registry', 'serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 16384) stderr += d.toString();
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${stderr}`);
    const r = await fetch(`http://${host}/v2/`).catch(() => null);
    if (r && (r.status === 200 || r.status === 401)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not answer on ${host}: ${stderr}`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  return {
    host,
    dir,
    async storedBlobBytes() {
      let total = 0;
      const walk = async (d: string): Promise<void> => {
        for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) await walk(p);
          else if (e.name === 'data') total += (await fs.stat(p)).size;
        }
      };
      await walk(path.join(dir, 'data', 'docker', 'registry', 'v2', 'blobs'));
      return total;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((res) => child.once('close', res));
      }
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
