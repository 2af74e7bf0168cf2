/** Snapshots: list (with writes in flight), get, detail, create, delete (dependents, live users), tree; jobs. */
import type { z } from 'zod';
import { ForkdError } from '@forkd/protocol';
import { checkMachineSize, type SnapshotEntry, type SnapshotTreeNode } from '@forkd/engine';
import type { SnapshotInfo, SnapshotInfoDetail, TreeNodeT } from '@forkd/api';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import type { Caller } from '../http/auth.js';
import type { Writing } from '../snapshots/writes.js';
import { assertDeletable } from '../snapshots/deletion.js';
import type { SnapshotOwnership } from '../tenancy/snapshot-owners.js';
import { canChange, isAdmin } from '../tenancy/access.js';
import { assertCallerTag } from './tags.js';

type SnapshotRoutes = 'listSnapshots' | 'getSnapshot' | 'snapshotInfo' | 'createSnapshot' | 'deleteSnapshot' | 'shareSnapshot' | 'unshareSnapshot' | 'snapshotTree' | 'getJob';

export function snapshotView(e: SnapshotEntry, liveSandboxes: number, own: SnapshotOwnership): z.output<typeof SnapshotInfo> {
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
    pulled_from: m.pulled_from ? { ref: m.pulled_from.ref, digest: m.pulled_from.digest, verification: m.pulled_from.verification, signers: m.pulled_from.signers } : null,
    pause_ms: origin.kind === 'branch' ? (m.timings.pause_ms ?? null) : null,
    memory_physical_bytes: m.files.memory.physical_bytes,
    disk_physical_bytes: m.files.disk.physical_bytes,
    live_sandboxes: liveSandboxes,
    warning: null,
    owner: own.owner,
    shared: own.shared,
  };
}

/**
 * A snapshot still being written, or whose background write failed, as listed: shaped like its
 * source (machine, language), not bootable, no files yet.
 */
export function writingView(w: Writing, source: SnapshotEntry): z.output<typeof SnapshotInfo> {
  return {
    ...snapshotView(source, 0, { owner: w.owner, shared: false }),
    tag: w.tag,
    created_at_unix: Math.floor(w.since / 1000),
    status: w.status,
    bootable: false,
    parent_tag: w.kind === 'compact' ? null : source.tag,
    branched_from: w.sandbox !== null ? `sandbox:${w.sandbox}` : `${w.kind}:${w.source}`,
    pulled_from: null,
    pause_ms: null,
    memory_physical_bytes: 0,
    disk_physical_bytes: 0,
    warning: w.status === 'failed' ? `the write failed: ${w.error}` : w.job ? `being written by ${w.job}` : 'being written',
  };
}

export function snapshotHandlers(s: DaemonServices): Pick<Handlers, SnapshotRoutes> {
  /** A snapshot as the caller sees it (live sandboxes: a non-admin counts its own). */
  const view = (e: SnapshotEntry, c: Caller) => snapshotView(e, s.sandboxes.list({ tag: e.tag, visibleTo: c }).length, s.owners.of(e));
  const visibleEntry = async (tag: string, c: Caller) => s.owners.assertVisible(c, await s.engine.getSnapshot(tag));
  async function setShared(tag: string, shared: boolean, c: Caller) {
    const e = await s.engine.getSnapshot(tag);
    await s.owners.setShared(e, shared);
    return { status: 200, body: view(e, c) } as const;
  }
  return {
    async listSnapshots({ caller }) {
      const all = (await s.engine.listSnapshots()).filter((e) => s.owners.visible(caller, e));
      const byTag = new Map(all.map((e) => [e.tag, e]));
      // Captures in flight ("writing") and failed background writes, shaped like their source;
      // creations from a recipe have no source to shape them and are followed by their job.
      const writing = s.writes.list(caller).flatMap((w) => {
        const src = w.source ? byTag.get(w.source) : undefined;
        return src && !byTag.has(w.tag) ? [writingView(w, src)] : [];
      });
      return { status: 200, body: [...all.map((e) => view(e, caller)), ...writing] };
    },
    async getSnapshot({ params, caller }) {
      try {
        return { status: 200, body: view(await visibleEntry(params.tag, caller), caller) };
      } catch (e) {
        // Not on disk (yet): a write in flight, or a failed one, as listed.
        const w = s.writes.get(params.tag, caller);
        const src = w?.source ? await s.engine.getSnapshot(w.source).catch(() => null) : null;
        if (w && src) return { status: 200, body: writingView(w, src) };
        throw e;
      }
    },
    async snapshotInfo({ params, caller }) {
      await visibleEntry(params.tag, caller);
      const { entry: e, ancestors, children } = await s.engine.snapshotDetail(params.tag);
      const m = e.manifest;
      // Chain members the caller may not see are left out of the lists (depth still counts them).
      const seen = async (tags: string[]) => isAdmin(caller) ? tags : (await Promise.all(tags.map(async (t) => (await s.engine.getSnapshot(t).then((x) => s.owners.visible(caller, x), () => false)) ? [t] : []))).flat();
      const detail: z.output<typeof SnapshotInfoDetail> = {
        ...view(e, caller),
        memory_logical_bytes: m.files.memory.logical_bytes,
        vmstate_bytes: m.files.vmstate.bytes,
        qemu_version: m.qemu.version,
        kernel_version: m.kernel.version,
        image_key: m.image.key,
        chain_depth: ancestors.length,
        ancestors: await seen(ancestors),
        dependents: await seen(children),
        layer_physical_bytes: m.files.memory.physical_bytes + m.files.disk.physical_bytes,
        logical_bytes: m.files.memory.logical_bytes + m.files.disk.physical_bytes,
        timings: m.timings as Record<string, number>,
      };
      return { status: 200, body: detail };
    },
    async createSnapshot({ body, caller }) {
      assertCallerTag(body.tag);
      const recipe = await s.engine.recipe(body.recipe);
      const mem = body.mem_mib ?? recipe.default_mem_mib;
      // The engine's own check, made before the job is queued so a refusal is a 400, not a failed job.
      checkMachineSize(recipe, mem, body.vcpus ?? 1);
      const r = await s.writes.produce({ tag: body.tag, kind: 'create', source: null, owner: caller.identity, wait: body.wait === true }, async (progress) => {
        const made = await s.engine.createSnapshot({ tag: body.tag, recipe, memMib: mem, ...(body.vcpus ? { vcpus: body.vcpus } : {}), onProgress: progress });
        return snapshotView(made, 0, { owner: caller.identity, shared: false });
      });
      return r.waited ? { status: 201, body: r.result } : { status: 202, body: r.job };
    },
    async deleteSnapshot({ params, query, caller }) {
      if (s.writes.forgetFailed(params.tag, caller)) return { status: 204 };
      s.owners.assertChangeable(caller, await s.engine.getSnapshot(params.tag));
      // Without cascade, a snapshot with layers on it is refused by engine.removeSnapshot (FORKD_E_HAS_DEPENDENTS).
      const dependents = query.cascade ? await s.engine.dependents(params.tag) : [];
      if (!isAdmin(caller)) {
        const foreign = (await Promise.all(dependents.map((t) => s.engine.getSnapshot(t).then((x) => !canChange(caller, s.owners.of(x).owner), () => false)))).filter(Boolean).length;
        if (foreign > 0) throw new ForkdError('FORKD_E_HAS_DEPENDENTS', `${foreign} layer(s) of other identities are built on ${params.tag}: cascade cannot delete them`, { foreign_dependents: foreign });
      }
      const doomed = [...dependents, params.tag];
      assertDeletable(s.sandboxes, s.writes, { doomed, force: query.force ?? false, by: caller });
      const ownerOfTag = await Promise.all(doomed.map((t) => s.engine.getSnapshot(t).then((x) => s.owners.of(x).owner, () => caller.identity)));
      await s.engine.removeSnapshot(params.tag, { cascade: query.cascade ?? false });
      for (const [i, t] of doomed.entries()) {
        await s.owners.forget(t);
        s.events.emit({ owner: ownerOfTag[i]!, kind: 'snapshot_deleted', snapshot_tag: t, details: { cascade_of: t === params.tag ? null : params.tag } });
      }
      return { status: 204 };
    },
    async shareSnapshot({ params, caller }) {
      return setShared(params.tag, true, caller);
    },
    async unshareSnapshot({ params, caller }) {
      return setShared(params.tag, false, caller);
    },
    async snapshotTree({ caller }) {
      // A node the caller may not see is left out; its visible descendants take its place.
      const nodes = (n: SnapshotTreeNode): TreeNodeT[] => {
        const children = n.children.flatMap(nodes);
        if (!s.owners.visible(caller, n.entry)) return children;
        return [{
          tag: n.entry.tag,
          kind: n.entry.manifest.origin.kind,
          created_at_unix: Math.floor(Date.parse(n.entry.manifest.created_at) / 1000),
          sandboxes: s.sandboxes.list({ tag: n.entry.tag, visibleTo: caller }).map((x) => x.rec.id),
          children,
        }];
      };
      return { status: 200, body: { roots: (await s.engine.snapshotTree()).flatMap(nodes) } };
    },
    async getJob({ params, caller }) {
      return { status: 200, body: s.jobs.get(params.id, caller) };
    },
  };
}
