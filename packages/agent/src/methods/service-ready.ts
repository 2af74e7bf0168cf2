/**
 * One attempt of a service's ready check: a TCP port on the guest's loopback accepts a
 * connection, a URL answers 2xx/3xx, a file exists, or a command exits 0. The caller polls.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { z } from 'zod';
import type { ServiceReady } from '@forkd/protocol';
import { HeadBuffer } from '../output-buffer.js';
import { RunningProcess, defaultShell } from '../process-runner.js';
import type { SpawnHelper } from '../spawn-helper.js';
import { asUser, type Account } from './service-user.js';

export interface ReadyCheck {
  ready: z.output<typeof ServiceReady>;
  account: Account | null;
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
  launcher: SpawnHelper | null;
}

export type CheckResult = { ok: true } | { ok: false; error: string };

const fail = (error: string): CheckResult => ({ ok: false, error });

export async function checkOnce(c: ReadyCheck, timeoutMs: number): Promise<CheckResult> {
  const r = c.ready;
  if ('port' in r) return portAccepts(r.port, timeoutMs);
  if ('url' in r) return urlAnswers(r.url, timeoutMs);
  if ('file' in r) return fs.existsSync(r.file) ? { ok: true } : fail(`${r.file} does not exist`);
  return commandSucceeds(c, r.cmd, timeoutMs);
}

function portAccepts(port: number, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (res: CheckResult) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(res);
    };
    const timer = setTimeout(() => done(fail(`connect to 127.0.0.1:${port} timed out`)), timeoutMs);
    sock.once('connect', () => done({ ok: true }));
    sock.once('error', (e) => done(fail(`connect to 127.0.0.1:${port}: ${e.message}`)));
  });
}

function urlAnswers(url: string, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    // A self-signed certificate on a guest-local service is still a service that answers.
    const req = get(url, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400 ? { ok: true } : fail(`${url} answered ${code}`));
    });
    req.once('timeout', () => req.destroy(new Error('timed out')));
    req.once('error', (e) => resolve(fail(`${url}: ${e.message}`)));
  });
}

async function commandSucceeds(c: ReadyCheck, cmd: string, timeoutMs: number): Promise<CheckResult> {
  const out = new HeadBuffer(4096);
  const proc = new RunningProcess({
    argv: asUser(c.account, [defaultShell(), '-c', cmd]),
    env: { ...(c.account ? c.account.env : {}), ...(c.env ?? {}) },
    ...(c.cwd !== undefined ? { cwd: c.cwd } : {}),
    timeoutMs,
    stdout: out,
    stderr: out,
    launcher: c.launcher,
    runToCompletionCap: 4096,
  });
  const r = await proc.done;
  if (r.exit_code === 0) return { ok: true };
  const why = r.error ?? (r.timed_out ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.exit_code}`);
  const said = `${r.stdout}${r.stderr}`.trim().slice(-500);
  return fail(`\`${cmd}\` ${why}${said ? `: ${said}` : ''}`);
}
