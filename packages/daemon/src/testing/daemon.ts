/**
 * Starts a real forkd daemon process for integration tests (the CLI's `serve`, from source), with
 * its own socket, state and audit log in a temporary directory, and the shared fixture snapshot
 * (a warm python snapshot, see @forkd/engine/testing) in the default snapshot store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, rmSync } from 'node:fs';
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureFixtureSnapshot, testEngine } from '@forkd/engine/testing';

export interface TestDaemonOptions {
  /** Also listen on 127.0.0.1 (random port). */
  tcp?: boolean;
  /** Require a bearer token (generated; the old one-token-per-line format: an admin). */
  token?: boolean;
  /** Tokens for these identities and scopes (generated), in the token file's named format. */
  identities?: Array<{ identity: string; scope: 'admin' | 'user' | 'read-only' }>;
  /** How long VMs survive the daemon's death. */
  keeperGraceSecs?: number;
  extraArgs?: string[];
  /** Extra environment for the daemon process (e.g. FORKD_RECIPES_DIR). */
  env?: Record<string, string>;
  /** Ensure the fixture snapshot first (default true; HTTP-only tests skip it and need no VM). */
  fixture?: boolean;
}

export interface TestDaemon {
  dir: string;
  socketPath: string;
  url: string | null;
  token: string | null;
  /** The token of each identity given in `identities`. */
  tokens: Record<string, string>;
  /** The fixture snapshot's tag (python, numpy imported, `forkd_parent_marker` set); '' without the fixture. */
  tag: string;
  statePath: string;
  auditPath: string;
  proc: ChildProcess;
  /** Environment for clients (FORKD_URL, FORKD_TOKEN). */
  env: Record<string, string>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** SIGKILL (a crash) and wait for the process to be gone. */
  kill9(): Promise<void>;
  /** Starts a new daemon process on the same socket and state. */
  restart(): Promise<void>;
  /** Everything the daemon processes wrote to stderr (their logs), last 5000 lines. */
  log(): string;
}

/** Temp dirs of test daemons (tokens, state, audit log): removed when the test process exits. */
const made = new Set<string>();
process.once('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'cli', 'src', 'index.ts');

export async function startTestDaemon(o: TestDaemonOptions = {}): Promise<TestDaemon> {
  const tag = o.fixture === false ? '' : await ensureFixtureSnapshot(testEngine());
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fdd-'));
  made.add(dir);
  const token = o.token ? crypto.randomBytes(24).toString('hex') : null;
  const tokens = Object.fromEntries((o.identities ?? []).map((i) => [i.identity, crypto.randomBytes(24).toString('hex')]));
  const lines = [...(token ? [token] : []), ...(o.identities ?? []).map((i) => `${tokens[i.identity]} ${i.identity} ${i.scope}`)];
  // Tokens travel by file, never on argv; the daemon refuses a token file others may read.
  if (lines.length > 0) await fs.writeFile(path.join(dir, 'tokens'), `# test tokens\n${lines.join('\n')}\n`, { mode: 0o600 });
  const socketPath = path.join(dir, 'forkd.sock');
  const statePath = path.join(dir, 'state.jsonl');
  const auditPath = path.join(dir, 'audit.log');
  const args = ['serve', '--socket', socketPath, '--state', statePath, '--audit-log', auditPath, '--keeper-grace-secs', String(o.keeperGraceSecs ?? 60),
    ...(o.tcp ? ['--bind', '127.0.0.1:0'] : []), ...(lines.length > 0 ? ['--token-file', path.join(dir, 'tokens')] : []),
    // Tests end their daemon with SIGTERM and want no VM left behind, unless a test says otherwise.
    ...(o.extraArgs?.includes('--on-stop') ? [] : ['--on-stop', 'end']), ...(o.extraArgs ?? [])];
  const logLines: string[] = [];
  const d: TestDaemon = {
    dir, socketPath, url: null, token, tokens, tag, statePath, auditPath, proc: null as unknown as ChildProcess, env: {},
    async stop() {
      if (d.proc.exitCode !== null || d.proc.signalCode !== null) return;
      const gone = new Promise((r) => d.proc.once('exit', r));
      d.proc.kill('SIGTERM');
      await gone;
    },
    async kill9() {
      if (d.proc.exitCode !== null || d.proc.signalCode !== null) return;
      const gone = new Promise((r) => d.proc.once('exit', r));
      d.proc.kill('SIGKILL');
      await gone;
    },
    async restart() {
      await launch();
    },
    log: () => logLines.join('\n'),
  };
  const launch = async (): Promise<void> => {
    const proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FORKD_LOG_LEVEL: 'info', ...(o.env ?? {}) } });
    d.proc = proc;
    const url = await new Promise<string | null>((resolve, reject) => {
      let buf = '';
      const tail: string[] = [];
      proc.stderr!.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          tail.push(line);
          if (tail.length > 30) tail.shift();
          logLines.push(line);
          if (logLines.length > 5000) logLines.shift();
          if (process.env.FORKD_TEST_DAEMON_LOG) process.stderr.write(`# daemon: ${line}\n`);
          try {
            const v = JSON.parse(line) as { msg?: string; url?: string | null };
            if (v.msg === 'forkd daemon listening') resolve(v.url ?? null);
          } catch {
            /* not a log line */
          }
        }
      });
      proc.once('exit', (code) => reject(new Error(`daemon exited with ${code} before listening:\n${tail.join('\n')}`)));
    });
    d.url = url;
    d.env = { FORKD_URL: url ?? `unix:${socketPath}`, ...(token ? { FORKD_TOKEN: token } : {}) };
  };
  await launch();
  return d;
}
