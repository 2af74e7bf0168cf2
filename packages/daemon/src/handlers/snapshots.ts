/** Snapshots: list (with writes in flight), get, detail, create, delete (dependents, live users), tree; jobs. */
import type { z } from 'zod';
import { ForkdError } from '@forkd/protocol';
import { checkMachineSize, type SnapshotEntry, type SnapshotTreeNode } from '@forkd/engine';
import type { SnapshotInfo, SnapshotInfoDetail, TreeNodeT } from '@forkd/api';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import type { Writing } from '../snapshots/writes.js';

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

/**
 * A snapshot still being written, or whose background write failed, as listed: shaped like its
 * source (machine, language), not bootable, no files yet.
 */
export function writingView(w: Writing, source: SnapshotEntry): z.output<typeof SnapshotInfo> {
  return {
    ...snapshotView(source, 0),
    tag: w.tag,
    created_at_unix: Math.floor(w.since / 1000),
    status: w.status,
    bootable: false,
    parent_tag: w.kind === 'compact' ? null : source.tag,
    branched_from: w.sandbox !== null ? `sandbox:${w.sandbox}` : `${w.kind}:${w.source}`,
    pause_ms: null,
    memory_physical_bytes: 0,
    disk_physical_bytes: 0,
    warning: w.status === 'failed' ? `the write failed: ${w.error}` : w.job ? `being written by ${w.job}` : 'being written',
  };
}

export function snapshotHandlers(s: DaemonServices): Pick<Handlers, SnapshotRoutes> {
  const usage = (tag: string) => s.sandboxes.usage(tag).length;
  return {
    async listSnapshots() {
      const all = await s.engine.listSnapshots();
      const byTag = new Map(all.map((e) => [e.tag, e]));
      // Captures in flight ("writing") and failed background writes, shaped like their source;
      // creations from a recipe have no source to shape them and are followed by their job.
      const writing = s.writes.list().flatMap((w) => {
        const src = w.source ? byTag.get(w.source) : undefined;
        return src && !byTag.has(w.tag) ? [writingView(w, src)] : [];
      });
      return { status: 200, body: [...all.map((e) => snapshotView(e, usage(e.tag))), ...writing] };
    },
    async getSnapshot({ params }) {
      try {
        return { status: 200, body: snapshotView(await s.engine.getSnapshot(params.tag), usage(params.tag)) };
      } catch (e) {
        // Not on disk (yet): a write in flight, or a failed one, as listed.
        const w = s.writes.get(params.tag);
        const src = w?.source ? await s.engine.getSnapshot(w.source).catch(() => null) : null;
        if (w && src) return { status: 200, body: writingView(w, src) };
        throw e;
      }
    },
    async snapshotInfo({ params }) {
      const { entry: e, ancestors, children } = await s.engine.snapshotDetail(params.tag);
      const m = e.manifest;
      const detail: z.output<typeof SnapshotInfoDetail> = {
        ...snapshotView(e, usage(e.tag)),
        memory_logical_bytes: m.files.memory.logical_bytes,
        vmstate_bytes: m.files.vmstate.bytes,
        qemu_version: m.qemu.version,
        kernel_version: m.kernel.version,
        image_key: m.image.key,
        chain_depth: ancestors.length,
        ancestors,
        dependents: children,
        layer_physical_bytes: m.files.memory.physical_bytes + m.files.disk.physical_bytes,
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
      const r = await s.writes.produce({ tag: body.tag, kind: 'create', source: null, wait: body.wait === true }, async (progress) => {
        const made = await s.engine.createSnapshot({ tag: body.tag, recipe, memMib: mem, ...(body.vcpus ? { vcpus: body.vcpus } : {}), onProgress: progress });
        return snapshotView(made, 0);
      });
      return r.waited ? { status: 201, body: r.result } : { status: 202, body: r.job };
    },
    async deleteSnapshot({ params, query }) {
      if (s.writes.forgetFailed(params.tag)) return { status: 204 };
      await s.engine.getSnapshot(params.tag);
      // Without cascade, a snapshot with layers on it is refused by engine.removeSnapshot (FORKD_E_HAS_DEPENDENTS).
      const doomed = query.cascade ? [...await s.engine.dependents(params.tag), params.tag] : [params.tag];
      const users = doomed.flatMap((t) => s.sandboxes.usage(t));
      if (users.length > 0 && !query.force) {
        throw new ForkdError('FORKD_E_IN_USE', `sandboxes run from ${doomed.join(', ')}: ${users.join(', ')} (kill them first, or force=true)`, { sandboxes: users });
      }
      const busy = s.writes.list().filter((w) => w.status === 'writing' && w.source !== null && doomed.includes(w.source));
      if (busy.length > 0) throw new ForkdError('FORKD_E_IN_USE', `snapshots are being written from ${params.tag}: ${busy.map((w) => w.tag).join(', ')}`);
      await s.engine.removeSnapshot(params.tag, { cascade: query.cascade ?? false });
      return { status: 204 };
    },
    async snapshotTree() {
      const node = (n: SnapshotTreeNode): TreeNodeT => ({
        tag: n.entry.tag,
        kind: n.entry.manifest.origin.kind,
        created_at_unix: Math.floor(Date.parse(n.entry.manifest.created_at) / 1000),
        sandboxes: s.sandboxes.usage(n.entry.tag),
        children: n.children.map(node),
      });
      return { status: 200, body: { roots: (await s.engine.snapshotTree()).map(node) } };
    },
    async getJob({ params }) {
      return { status: 200, body: s.jobs.get(params.id) };
    },
  };
}
