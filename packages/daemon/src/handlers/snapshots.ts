/** Snapshots: list, get, detail, create (as a job), delete (dependents, live users), tree; jobs. */
import type { z } from 'zod';
import { ForkdError } from '@forkd/protocol';
import { checkMachineSize, type SnapshotEntry } from '@forkd/engine';
import type { SnapshotInfo, SnapshotInfoDetail, TreeNodeT } from '@forkd/api';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';

type SnapshotRoutes = 'listSnapshots' | 'getSnapshot' | 'snapshotInfo' | 'createSnapshot' | 'deleteSnapshot' | 'snapshotTree' | 'getJob';

export function snapshotView(e: SnapshotEntry, liveSandboxes: number): z.output<typeof SnapshotInfo> {
  const m = e.manifest;
  const origin = m.origin;
  return {
    tag: m.tag,
    created_at_unix: Math.floor(Date.parse(m.created_at) / 1000),
    status: 'ready',
    bootable: true,
    recipe: origin.recipe ?? m.image.recipe ?? null,
    language: m.language,
    accel: m.accel,
    mem_mib: m.machine.mem_mib,
    vcpus: m.machine.vcpus,
    parent_tag: m.parent_tag,
    branched_from: origin.kind === 'recipe' ? `recipe:${origin.recipe ?? m.image.recipe}` : `${origin.kind === 'branch' ? 'sandbox' : origin.kind}:${origin.source ?? ''}`,
    pause_ms: origin.kind === 'branch' ? (m.timings.pause_ms ?? null) : null,
    memory_physical_bytes: m.files.memory.physical_bytes,
    disk_physical_bytes: m.files.disk.physical_bytes,
    live_sandboxes: liveSandboxes,
    warning: null,
  };
}

/** Parent links of every snapshot: tag -> parent tag (or null). */
function parents(all: SnapshotEntry[]): Map<string, string | null> {
  return new Map(all.map((e) => [e.tag, e.manifest.parent_tag]));
}

export function ancestorsOf(tag: string, links: Map<string, string | null>): string[] {
  const out: string[] = [];
  const seen = new Set([tag]);
  for (let p = links.get(tag) ?? null; p !== null; p = links.get(p) ?? null) {
    if (seen.has(p)) throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot chain of ${tag} has a cycle at ${p}`);
    if (!links.has(p)) throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot ${tag} depends on ${p}, which is missing`, { missing: p });
    seen.add(p);
    out.unshift(p);
  }
  return out;
}

/** Every snapshot layered (directly or not) on tag, leaves first. */
export function dependentsOf(tag: string, links: Map<string, string | null>): string[] {
  const out: string[] = [];
  const visit = (t: string): void => {
    for (const [child, parent] of links) if (parent === t) {
      visit(child);
      out.push(child);
    }
  };
  visit(tag);
  return out;
}

export function snapshotHandlers(s: DaemonServices): Pick<Handlers, SnapshotRoutes> {
  const usage = (tag: string) => s.sandboxes.usage(tag).length;
  return {
    async listSnapshots() {
      const all = await s.engine.listSnapshots();
      const byTag = new Map(all.map((e) => [e.tag, e]));
      // forkd lists captures in flight as "writing" (not bootable), shaped like their source.
      const writing = s.writes.list().flatMap((w) => {
        const src = w.source ? byTag.get(w.source) : undefined;
        if (!src || byTag.has(w.tag)) return [];
        return [{ ...snapshotView(src, 0), tag: w.tag, created_at_unix: Math.floor(w.since / 1000), status: 'writing' as const, bootable: false, parent_tag: w.kind === 'compact' ? null : src.tag, branched_from: `${w.kind === 'branch' ? 'sandbox' : w.kind}:${w.source}`, pause_ms: null, memory_physical_bytes: 0, disk_physical_bytes: 0, warning: w.job ? `being written by ${w.job}` : 'being written' }];
      });
      return { status: 200, body: [...all.map((e) => snapshotView(e, usage(e.tag))), ...writing] };
    },
    async getSnapshot({ params }) {
      return { status: 200, body: snapshotView(await s.engine.getSnapshot(params.tag), usage(params.tag)) };
    },
    async snapshotInfo({ params }) {
      const e = await s.engine.getSnapshot(params.tag);
      const all = await s.engine.listSnapshots();
      const links = parents(all);
      const m = e.manifest;
      const layer = m.files.memory.physical_bytes + m.files.disk.physical_bytes;
      const detail: z.output<typeof SnapshotInfoDetail> = {
        ...snapshotView(e, usage(e.tag)),
        memory_logical_bytes: m.files.memory.logical_bytes,
        vmstate_bytes: m.files.vmstate.bytes,
        qemu_version: m.qemu.version,
        kernel_version: m.kernel.version,
        image_key: m.image.key,
        chain_depth: ancestorsOf(e.tag, links).length,
        ancestors: ancestorsOf(e.tag, links),
        dependents: dependentsOf(e.tag, links).filter((t) => links.get(t) === e.tag),
        layer_physical_bytes: layer,
        logical_bytes: m.files.memory.logical_bytes + m.files.disk.physical_bytes,
        timings: m.timings as Record<string, number>,
      };
      return { status: 200, body: detail };
    },
    async createSnapshot({ body }) {
      const recipe = await s.engine.recipe(body.recipe);
      const mem = body.mem_mib ?? recipe.default_mem_mib;
      // The engine's own check, made before the job is queued so a refusal is a 400, not a failed job.
      checkMachineSize(recipe, mem, body.vcpus ?? 1);
      await s.writes.reserve({ tag: body.tag, kind: 'create', source: null });
      let started;
      try {
        started = await s.jobs.start('snapshot.create', async (progress) => {
          try {
            await s.engine.createSnapshot({ tag: body.tag, recipe, memMib: mem, ...(body.vcpus ? { vcpus: body.vcpus } : {}), onProgress: progress });
            return snapshotView(await s.engine.getSnapshot(body.tag), 0);
          } finally {
            s.writes.release(body.tag);
          }
        }, { describe: (v) => v });
      } catch (e) {
        s.writes.release(body.tag);
        throw e;
      }
      s.writes.setJob(body.tag, started.job.id);
      if (!body.wait) return { status: 202, body: started.job };
      return { status: 201, body: await started.done };
    },
    async deleteSnapshot({ params, query }) {
      await s.engine.getSnapshot(params.tag);
      // Without cascade, a snapshot with layers on it is refused by engine.removeSnapshot (FORKD_E_HAS_DEPENDENTS).
      const doomed = query.cascade ? [...await s.engine.dependents(params.tag), params.tag] : [params.tag];
      const users = doomed.flatMap((t) => s.sandboxes.usage(t));
      if (users.length > 0 && !query.force) {
        throw new ForkdError('FORKD_E_IN_USE', `sandboxes run from ${doomed.join(', ')}: ${users.join(', ')} (kill them first, or force=true)`, { sandboxes: users });
      }
      const busy = s.writes.list().filter((w) => w.source !== null && doomed.includes(w.source));
      if (busy.length > 0) throw new ForkdError('FORKD_E_IN_USE', `snapshots are being written from ${params.tag}: ${busy.map((w) => w.tag).join(', ')}`);
      await s.engine.removeSnapshot(params.tag, { cascade: query.cascade ?? false });
      return { status: 204 };
    },
    async snapshotTree() {
      const all = await s.engine.listSnapshots();
      const byParent = new Map<string | null, SnapshotEntry[]>();
      const tags = new Set(all.map((e) => e.tag));
      for (const e of all) {
        const p = e.manifest.parent_tag !== null && tags.has(e.manifest.parent_tag) ? e.manifest.parent_tag : null;
        byParent.set(p, [...(byParent.get(p) ?? []), e]);
      }
      const node = (e: SnapshotEntry, depth: number): TreeNodeT => ({
        tag: e.tag,
        kind: e.manifest.origin.kind,
        created_at_unix: Math.floor(Date.parse(e.manifest.created_at) / 1000),
        sandboxes: s.sandboxes.usage(e.tag),
        children: depth > 64 ? [] : (byParent.get(e.tag) ?? []).map((c) => node(c, depth + 1)),
      });
      return { status: 200, body: { roots: (byParent.get(null) ?? []).map((e) => node(e, 0)) } };
    },
    async getJob({ params }) {
      return { status: 200, body: s.jobs.get(params.id) };
    },
  };
}
