/** Daemon-backed commands of branching, chains, the tree, workspaces and jobs. */
import type { BodyOf } from '@forkd/api';
import type { Controller, Job, SnapshotInfo, SnapshotTree, WorkspaceInfo } from '@forkd/sdk';
import { ms, printJson, progressPrinter, table } from '../output.js';

type TreeNode = SnapshotTree['roots'][number];

function isJob(v: unknown): v is Job {
  const id = (v as { id?: unknown } | null)?.id;
  return typeof id === 'string' && id.startsWith('job-');
}

/** Prints a snapshot result, or follows a job with a progress line until it ends. */
async function snapshotResult(c: Controller, r: SnapshotInfo | Job, o: { json?: boolean }, verb: string): Promise<void> {
  let info = r as SnapshotInfo;
  if (isJob(r)) {
    const progress = progressPrinter(!o.json);
    try {
      info = (await c.waitJob(r.id, { onProgress: (j) => progress.onProgress({ phase: j.progress.phase, message: j.progress.message, ...(j.progress.fraction !== null ? { fraction: j.progress.fraction } : {}) }) })) as SnapshotInfo;
    } finally {
      progress.done();
    }
  }
  if (o.json) return printJson(info);
  process.stdout.write(`${verb}: snapshot ${info.tag}${info.parent_tag ? ` (a layer on ${info.parent_tag})` : ''}${info.pause_ms !== null ? `, source paused ${ms(info.pause_ms)}` : ''}\n`);
}

export async function branchCmd(c: Controller, id: string, o: { tag?: string; mode?: 'full' | 'live' | 'diff'; wait: boolean; json?: boolean }): Promise<void> {
  const progress = progressPrinter(!o.json && o.wait);
  progress.onProgress({ phase: 'branch', message: `capturing ${id} (${o.mode ?? 'live'})` });
  try {
    const r = await c.branchSandbox(id, { ...(o.tag ? { tag: o.tag } : {}), ...(o.mode ? { mode: o.mode } : {}), wait: o.wait });
    progress.done();
    if ('job_id' in r) {
      // --no-wait: the snapshot is listed as "writing" until the job ends.
      if (o.json) return printJson(r);
      process.stdout.write(`branched: snapshot ${r.tag} is being written: job ${r.job_id} started (forkd job ${r.job_id})\n`);
      return;
    }
    await snapshotResult(c, r, o, 'branched');
  } finally {
    progress.done();
  }
}

export async function diffCmd(c: Controller, o: { from: string; tag: string; exec: string; timeoutSecs: number; json?: boolean }): Promise<void> {
  const r = await c.diffSnapshot(o.from, { to: o.tag, cmd: o.exec, timeout_secs: o.timeoutSecs, wait: false });
  await snapshotResult(c, r, o, 'diff');
}

export async function compactCmd(c: Controller, o: { from: string; to: string; json?: boolean }): Promise<void> {
  const r = await c.compactSnapshot(o.from, { to: o.to, wait: false });
  await snapshotResult(c, r, o, 'compacted');
}

export async function rmiCmd(c: Controller, tags: string[], o: { cascade?: boolean; force?: boolean; json?: boolean }): Promise<number> {
  const results: Array<{ tag: string; removed: boolean; error?: unknown }> = [];
  for (const tag of tags) {
    try {
      await c.deleteSnapshot(tag, { ...(o.cascade ? { cascade: true } : {}), ...(o.force ? { force: true } : {}) });
      results.push({ tag, removed: true });
    } catch (e) {
      if (tags.length === 1) throw e;
      results.push({ tag, removed: false, error: (e as { toJSON?: () => unknown }).toJSON?.() ?? String(e) });
    }
  }
  if (o.json) printJson(results);
  else for (const r of results) process.stdout.write(r.removed ? `removed ${r.tag}\n` : `${r.tag}: ${JSON.stringify(r.error)}\n`);
  return results.every((r) => r.removed) ? 0 : 1;
}

export async function treeCmd(c: Controller, o: { json?: boolean }): Promise<void> {
  const tree = await c.snapshotTree();
  if (o.json) return printJson(tree);
  const lines: string[] = [];
  const walk = (n: TreeNode, prefix: string, last: boolean, root: boolean) => {
    const sbs = n.sandboxes.length ? `  [${n.sandboxes.length} running: ${n.sandboxes.slice(0, 3).join(', ')}${n.sandboxes.length > 3 ? ', …' : ''}]` : '';
    lines.push(`${root ? '' : `${prefix}${last ? '└── ' : '├── '}`}${n.tag} (${n.kind})${sbs}`);
    n.children.forEach((ch, i) => walk(ch, root ? '' : `${prefix}${last ? '    ' : '│   '}`, i === n.children.length - 1, false));
  };
  for (const r of tree.roots) walk(r, '', true, true);
  process.stdout.write(lines.length ? `${lines.join('\n')}\n` : 'no snapshots\n');
}

function wsRows(list: WorkspaceInfo[]): string {
  return table(['NAME', 'STATUS', 'SANDBOX', 'FROM', 'STATE', 'SUSPENDED'], list.map((w) => [
    w.name, w.status, w.sandbox_id, w.snapshot_tag, w.state_tag ?? '-', w.suspended_at_unix ? new Date(w.suspended_at_unix * 1000).toISOString().slice(0, 19).replace('T', ' ') : '-',
  ]));
}

export async function workspaceCmd(c: Controller, action: 'create' | 'suspend' | 'resume' | 'get' | 'delete' | 'list', name: string | undefined, o: { body?: Record<string, unknown>; json?: boolean }): Promise<void> {
  let out: WorkspaceInfo | WorkspaceInfo[] | null;
  const progress = progressPrinter(!o.json && (action === 'suspend' || action === 'resume' || action === 'create'));
  progress.onProgress({ phase: 'workspace', message: `${action} ${name ?? ''}` });
  try {
    switch (action) {
      case 'list': out = await c.listWorkspaces(); break;
      case 'create': out = await c.createWorkspace({ ...o.body, name: name! } as BodyOf<'createWorkspace'>); break;
      case 'suspend': out = await c.suspendWorkspace(name!, o.body ?? {}); break;
      case 'resume': out = await c.resumeWorkspace(name!); break;
      case 'get': out = await c.getWorkspace(name!); break;
      case 'delete': await c.deleteWorkspace(name!); out = null; break;
    }
  } finally {
    progress.done();
  }
  if (o.json) return printJson(out ?? { deleted: name });
  if (out === null) process.stdout.write(`deleted workspace ${name}\n`);
  else process.stdout.write(`${wsRows(Array.isArray(out) ? out : [out])}\n`);
}

export async function jobCmd(c: Controller, id: string, o: { wait?: boolean; json?: boolean }): Promise<void> {
  if (o.wait) {
    const r = await c.waitJob(id);
    if (o.json) return printJson(await c.getJob(id));
    process.stdout.write(`job ${id} succeeded: ${JSON.stringify(r).slice(0, 300)}\n`);
    return;
  }
  const j = await c.getJob(id);
  if (o.json) return printJson(j);
  process.stdout.write(`${table(['JOB', 'KIND', 'STATUS', 'PHASE', 'MESSAGE'], [[j.id, j.kind, j.status, j.progress.phase, (j.error?.message ?? j.progress.message).slice(0, 80)]])}\n`);
}

/** POST /v1/sandboxes/:id/fork: count children of a running sandbox, each with its vary values and seed. */
export async function forkSandboxCmd(c: Controller, id: string, body: BodyOf<'fork'>, o: { json?: boolean }): Promise<void> {
  const progress = progressPrinter(!o.json);
  progress.onProgress({ phase: 'fork', message: `capturing ${id} and starting ${body.count ?? 1} children` });
  try {
    const r = await c.forkSandbox(id, body);
    progress.done();
    if (o.json) return printJson(r);
    const rows = r.children.map((k) => [k.id, String(k.index), Object.entries(k.values).map(([n, v]) => `${n}=${String(v)}`).join(' ') || '-', String(k.seed)]);
    process.stdout.write(`${table(['CHILD', 'INDEX', 'VALUES', 'SEED'], rows)}\n\nforked ${id}: ${r.children.length} children of snapshot ${r.snapshot_tag}, source paused ${ms(r.pause_ms)}, all ready in ${ms(r.fork_ms)}\n`);
  } finally {
    progress.done();
  }
}
