/**
 * Starts the real guest agent on the host for tests: `--listen SOCK --no-system`, from its
 * TypeScript sources via tsx (or from a given bundle). Returns the socket path and a stopper.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const AGENT_MAIN = fileURLToPath(new URL('../../../agent/src/main.ts', import.meta.url));

export interface TestAgent {
  socketPath: string;
  proc: ChildProcess;
  /** Everything the agent wrote to stderr so far. */
  stderr(): string;
  stop(): Promise<void>;
}

export async function startTestAgent(o: { bundle?: string; extraArgs?: string[] } = {}): Promise<TestAgent> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-agent-test-'));
  const socketPath = path.join(dir, 'agent.sock');
  const args = o.bundle
    ? [o.bundle, '--listen', socketPath, '--no-system', ...(o.extraArgs ?? [])]
    : ['--conditions=source', '--import', 'tsx', AGENT_MAIN, '--listen', socketPath, '--no-system', ...(o.extraArgs ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 1_000_000) err = err.slice(-500_000);
  });
  const deadline = Date.now() + 20_000;
  while (!fs.existsSync(socketPath)) {
    if (proc.exitCode !== null) throw new Error(`agent exited early: ${err}`);
    if (Date.now() > deadline) throw new Error(`agent did not listen in time: ${err}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    socketPath,
    proc,
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
