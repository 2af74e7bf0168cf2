/** Daemon-backed sandbox commands: spawn, ls, kill, ping, exec, eval, files. */
import { promises as fs, createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { ForkdError } from '@forkd/protocol';
import type { BodyOf } from '@forkd/api';
import type { Controller, SandboxInfo } from '@forkd/sdk';
import { bytes, escapeControls, ms, printJson, progressPrinter, table } from '../output.js';

function age(unix: number): string {
  const s = Math.max(0, Math.floor(Date.now() / 1000) - unix);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`;
}

function expires(v: number | null): string {
  if (v === null) return 'never';
  const s = Math.round((v - Date.now()) / 1000);
  return s <= 0 ? 'now' : `in ${s}s`;
}

function sandboxRows(list: SandboxInfo[]): string {
  return table(['ID', 'SNAPSHOT', 'PID', 'AGE', 'EXPIRES', 'READY', 'GUEST', 'BRANCHES', 'METADATA'], list.map((s) => [
    s.id, s.snapshot_tag, s.pid ?? '-', age(s.created_at_unix), expires(s.expires_at_unix_ms), ms(s.ready.spawn_to_ready_ms), s.idle?.paused ? 'stopped (idle)' : 'running', s.branch_count,
    Object.entries(s.metadata).map(([k, v]) => `${k}=${v}`).join(',') || '-',
  ]));
}

export async function spawnCmd(c: Controller, o: { body: BodyOf<'spawn'>; json?: boolean }): Promise<void> {
  const progress = progressPrinter(!o.json);
  progress.onProgress({ phase: 'spawn', message: `restoring ${o.body.n ?? 1} from ${o.body.snapshot_tag} and waiting for their agents` });
  const t0 = Date.now();
  try {
    const list = await c.spawnSandboxes(o.body);
    progress.done();
    if (o.json) return printJson(list);
    process.stdout.write(`${sandboxRows(list)}\n${list.length} ready in ${ms(Date.now() - t0)}\n`);
  } finally {
    progress.done();
  }
}

export async function lsCmd(c: Controller, o: { tag?: string; json?: boolean }): Promise<void> {
  const list = await c.listSandboxes(o.tag ? { tag: o.tag } : {});
  if (o.json) return printJson(list);
  process.stdout.write(list.length ? `${sandboxRows(list)}\n` : 'no sandboxes (forkd spawn --tag TAG)\n');
}

export async function networkCmd(c: Controller, id: string, body: BodyOf<'updateNetwork'>, o: { json?: boolean }): Promise<void> {
  const info = await c.updateSandboxNetwork(id, body);
  if (o.json) printJson(info);
  else {
    const e = info.egress!;
    process.stdout.write(`${id}: internet ${e.allow_internet_access ? 'allowed' : 'denied'}; allow_out ${e.allow_out.join(', ') || '-'}; deny_out ${e.deny_out.join(', ') || '-'}\n`);
  }
}

export async function killCmd(c: Controller, ids: string[], o: { all?: boolean; tag?: string; json?: boolean }): Promise<number> {
  if ((ids.length > 0 ? 1 : 0) + (o.all ? 1 : 0) + (o.tag ? 1 : 0) !== 1) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'give sandbox ids, or --all, or --tag TAG');
  const targets = ids.length ? ids : (await c.listSandboxes(o.tag ? { tag: o.tag } : {})).map((s) => s.id);
  const results = await Promise.all(targets.map(async (id) => {
    try {
      await c.killSandbox(id);
      return { id, killed: true, error: null };
    } catch (e) {
      return { id, killed: false, error: e instanceof ForkdError ? e.toJSON() : { code: 'FORKD_E_INTERNAL', message: String(e) } };
    }
  }));
  if (o.json) printJson(results);
  else for (const r of results) process.stdout.write(r.killed ? `killed ${r.id}\n` : `${r.id}: ${r.error?.code}: ${escapeControls(r.error?.message ?? '')}\n`);
  return results.every((r) => r.killed) ? 0 : 1;
}

export async function pingCmd(c: Controller, id: string, o: { json?: boolean }): Promise<void> {
  const t0 = Date.now();
  const r = await c.pingSandbox(id);
  if (o.json) return printJson({ ...r, round_trip_ms: Date.now() - t0 });
  process.stdout.write(`pong from ${id} in ${ms(Date.now() - t0)} (agent ${escapeControls(r.agent_version)}, warm-up ${r.warmup_ready ? 'done' : 'not done'}, ${r.languages.join('+')})\n`);
}

/** Exposes a guest TCP port on the daemon's host; prints host:port (E2B's getHost). */
export async function portCmd(c: Controller, id: string, port: string, o: { json?: boolean }): Promise<void> {
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new ForkdError('FORKD_E_OUT_OF_RANGE', `port must be 1..65535; got ${JSON.stringify(port)}`, { min: 1, max: 65535 });
  const r = await c.exposePort(id, Number(port));
  if (o.json) return printJson(r);
  process.stdout.write(`${r.host.includes(':') ? `[${r.host}]` : r.host}:${r.port}\n`);
}

/** Streams the command's output and returns the guest's exit code (as forkd's exec does). */
export async function execCmd(c: Controller, id: string, argv: string[], o: { body: Partial<BodyOf<'exec'>>; json?: boolean }): Promise<number> {
  if ((argv.length > 0) === (o.body.cmd !== undefined)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'give a command after -- (argv), or a shell line with --sh');
  const body = { ...o.body, ...(o.body.cmd === undefined ? { args: argv } : {}) } as BodyOf<'exec'>;
  if (o.json) {
    const r = await c.exec(id, body);
    printJson(r);
    return r.exit_code ?? 1;
  }
  const r = await c.execStream(id, body, { onStdout: (d) => process.stdout.write(d), onStderr: (d) => process.stderr.write(d) });
  if (r.error) process.stderr.write(`forkd: ${escapeControls(r.error, { keepLineBreaks: true })}\n`);
  return r.exit_code ?? (r.timed_out ? 124 : 1);
}

export async function evalCmd(c: Controller, id: string, body: BodyOf<'eval'>, o: { json?: boolean }): Promise<number> {
  const r = await c.eval(id, body);
  if (o.json) {
    printJson(r);
    return r.exit_code;
  }
  if (r.stdout) process.stdout.write(r.stdout);
  if (r.stderr) process.stderr.write(r.stderr);
  if (r.error !== null) {
    process.stderr.write(r.traceback ?? `${r.error_type}: ${r.error}\n`);
    return 1;
  }
  if (r.result !== null) process.stdout.write(`${r.result}\n`);
  return 0;
}

export async function filesLs(c: Controller, id: string, path: string, o: { depth?: number; json?: boolean }): Promise<void> {
  const r = await c.listFiles(id, path, o.depth);
  if (o.json) return printJson(r);
  process.stdout.write(`${table(['PERMISSIONS', 'SIZE', 'MODIFIED', 'PATH'], r.entries.map((e) => [e.permissions, e.type === 'dir' ? '-' : bytes(e.size), new Date(e.modified_ms).toISOString().replace('T', ' ').slice(0, 19), e.type === 'dir' ? `${e.path}/` : e.symlink_target ? `${e.path} -> ${e.symlink_target}` : e.path]))}\n${r.truncated ? '(truncated)\n' : ''}`);
}

export async function filesGet(c: Controller, id: string, remote: string, local: string | undefined, o: { json?: boolean }): Promise<void> {
  const res = await c.readFileStream(id, remote);
  if (!local || local === '-') {
    await pipeline(res.stream, process.stdout, { end: false });
    return;
  }
  await pipeline(res.stream, createWriteStream(local));
  const size = (await fs.stat(local)).size;
  if (o.json) printJson({ path: remote, local, size });
  else process.stdout.write(`${escapeControls(remote)} -> ${escapeControls(local)} (${bytes(size)})\n`);
}

export async function filesPut(c: Controller, id: string, local: string, remote: string, o: { json?: boolean }): Promise<void> {
  const st = await fs.stat(local).catch(() => null);
  if (!st?.isFile()) throw new ForkdError('FORKD_E_FILE_NOT_FOUND', `no such local file: ${local}`);
  const r = await c.writeFile(id, remote, createReadStream(local), { mode: st.mode & 0o777 });
  if (o.json) return printJson(r);
  process.stdout.write(`${escapeControls(local)} -> ${escapeControls(r.path)} (${bytes(r.size)})\n`);
}
