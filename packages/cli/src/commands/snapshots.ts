import { type Engine, listRecipeNames } from '@forkd/engine';
import { ForkdError } from '@forkd/protocol';
import type { BodyOf } from '@forkd/api';
import type { Controller, Job } from '@forkd/sdk';
import { bytes, printJson, progressPrinter, table } from '../output.js';

/** What `snapshot create` prints, from the engine's manifest or the daemon's snapshot detail. */
interface Created {
  tag: string; accel: string; memMib: number; recipe: string | null; timings: Record<string, number | undefined>;
  memoryPhysical: number; memoryLogical: number; vmstate: number; diskPhysical: number;
}

function printCreated(c: Created): void {
  process.stdout.write(
    `snapshot ${c.tag} created (${c.accel}, ${c.memMib} MiB, recipe ${c.recipe})\n` +
      `  boot to agent ${((c.timings.boot_to_agent_ms ?? 0) / 1000).toFixed(1)} s, warm-up ${((c.timings.warmup_ms ?? 0) / 1000).toFixed(1)} s, save ${(c.timings.save_ms ?? 0).toFixed(0)} ms\n` +
      `  memory ${bytes(c.memoryPhysical)} on disk of ${bytes(c.memoryLogical)}, vmstate ${bytes(c.vmstate)}, disk layer ${bytes(c.diskPhysical)}\n`,
  );
}

export type CreateSnapshotFields = Omit<BodyOf<'createSnapshot'>, 'wait'>;

/** --local: the engine in this process (no reservation against a daemon's jobs). */
export async function snapshotCreateLocal(engine: Engine, o: CreateSnapshotFields & { json?: boolean }): Promise<void> {
  const progress = progressPrinter(!o.json);
  try {
    const { manifest: m } = await engine.createSnapshot({ tag: o.tag, recipe: o.recipe, ...(o.mem_mib !== undefined ? { memMib: o.mem_mib } : {}), ...(o.vcpus !== undefined ? { vcpus: o.vcpus } : {}), onProgress: progress.onProgress });
    progress.done();
    if (o.json) return printJson(m);
    printCreated({
      tag: m.tag, accel: m.accel, memMib: m.machine.mem_mib, recipe: m.origin.recipe ?? null, timings: m.timings,
      memoryPhysical: m.files.memory.physical_bytes, memoryLogical: m.files.memory.logical_bytes, vmstate: m.files.vmstate.bytes, diskPhysical: m.files.disk.physical_bytes,
    });
  } finally {
    progress.done();
  }
}

/** Through the daemon: a job followed with a progress line, then the snapshot's detail. */
export async function snapshotCreate(c: Controller, o: CreateSnapshotFields & { json?: boolean }): Promise<void> {
  const { json, ...body } = o;
  if (/[/\\]|\.json$/.test(body.recipe)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `the daemon takes recipe names (recipes/*.json), not files; for ${body.recipe} use --local`);
  const job = (await c.createSnapshot({ ...body, wait: false })) as Job;
  const progress = progressPrinter(!json);
  try {
    await c.waitJob(job.id, { onProgress: (j) => progress.onProgress({ phase: j.progress.phase, message: j.progress.message, ...(j.progress.fraction !== null ? { fraction: j.progress.fraction } : {}) }) });
  } finally {
    progress.done();
  }
  const d = await c.snapshotInfo(body.tag);
  if (json) return printJson(d);
  printCreated({
    tag: d.tag, accel: d.accel, memMib: d.mem_mib, recipe: d.recipe, timings: d.timings,
    memoryPhysical: d.memory_physical_bytes, memoryLogical: d.memory_logical_bytes, vmstate: d.vmstate_bytes, diskPhysical: d.disk_physical_bytes,
  });
}

/** One row of `forkd images` / `forkd snapshot ls` (the --json shape). */
interface SnapshotRow {
  tag: string; created_at: string; recipe: string | null; accel: string; mem_mib: number; vcpus: number;
  memory_physical_bytes: number; disk_physical_bytes: number; qemu: string | null; language: string;
  /** Where a pulled or unpacked snapshot came from (ref, digest, signers); null: made here. */
  pulled_from: { ref: string; digest: string; verification: string; signers: string[] } | null;
}

function pulledFrom(p: SnapshotRow['pulled_from'] | undefined): SnapshotRow['pulled_from'] {
  return p ? { ref: p.ref, digest: p.digest, verification: p.verification, signers: p.signers } : null;
}

/** The SOURCE column: the reference, a short digest and who signed (or why nobody had to). */
function sourceText(p: SnapshotRow['pulled_from']): string {
  if (!p) return '-';
  const who = p.verification === 'verified' ? `signed ${p.signers.map((k) => k.slice(7, 19)).join(',')}` : p.verification === 'skipped' ? 'UNVERIFIED' : 'unsigned';
  return `${p.ref}@${p.digest.slice(7, 19)} (${who})`;
}

export async function snapshotRowsLocal(engine: Engine): Promise<SnapshotRow[]> {
  return (await engine.listSnapshots()).map((s) => ({
    tag: s.tag,
    created_at: s.manifest.created_at,
    recipe: s.manifest.origin.recipe ?? null,
    accel: s.manifest.accel,
    mem_mib: s.manifest.machine.mem_mib,
    vcpus: s.manifest.machine.vcpus,
    memory_physical_bytes: s.manifest.files.memory.physical_bytes,
    disk_physical_bytes: s.manifest.files.disk.physical_bytes,
    qemu: s.manifest.qemu.version,
    language: s.manifest.language,
    pulled_from: pulledFrom(s.manifest.pulled_from),
  }));
}

export async function snapshotRows(c: Controller): Promise<SnapshotRow[]> {
  const list = await c.listSnapshots();
  // The list route has no QEMU version; the detail does (null for one still being written).
  const qemu = await Promise.all(list.map((s) => c.snapshotInfo(s.tag).then((d) => d.qemu_version, () => null)));
  return list.map((s, i) => ({
    tag: s.tag,
    created_at: new Date(s.created_at_unix * 1000).toISOString(),
    recipe: s.recipe,
    accel: s.accel,
    mem_mib: s.mem_mib,
    vcpus: s.vcpus,
    memory_physical_bytes: s.memory_physical_bytes,
    disk_physical_bytes: s.disk_physical_bytes,
    qemu: qemu[i] ?? null,
    language: s.language,
    pulled_from: pulledFrom(s.pulled_from),
  }));
}

/** `forkd images` and `forkd snapshot ls`: one command under both names. */
export function printSnapshots(list: SnapshotRow[], o: { json?: boolean }): void {
  if (o.json) return printJson(list);
  if (list.length === 0) {
    process.stdout.write('no snapshots (create one: forkd snapshot create --tag py --recipe python)\n');
    return;
  }
  const rows = list.map((s) => [s.tag, s.recipe ?? '-', s.accel, `${s.mem_mib} MiB`, bytes(s.memory_physical_bytes), bytes(s.disk_physical_bytes), s.created_at.replace('T', ' ').slice(0, 19), sourceText(s.pulled_from)]);
  process.stdout.write(`${table(['TAG', 'RECIPE', 'ACCEL', 'MEMORY', 'MEM ON DISK', 'DISK LAYER', 'CREATED', 'SOURCE'], rows)}\n`);
}

export async function imageBuild(engine: Engine, recipe: string, o: { json?: boolean; rebuild?: boolean }): Promise<void> {
  const progress = progressPrinter(!o.json);
  try {
    const info = await engine.buildImage(recipe, { onProgress: progress.onProgress, ...(o.rebuild ? { rebuild: true } : {}) });
    progress.done();
    if (o.json) return printJson(info);
    process.stdout.write(`image ${info.key.slice(0, 12)} for recipe ${info.recipe}${info.cached ? ' (cached)' : ` built in ${(info.build_ms / 1000).toFixed(1)} s`}\n  ${info.path}\n`);
  } finally {
    progress.done();
  }
}

export async function imageList(engine: Engine, o: { json?: boolean }): Promise<void> {
  const images = await engine.listImages();
  if (o.json) return printJson({ images, recipes: await listRecipeNames() });
  const rows = images.map((i) => [i.key.slice(0, 12), i.recipe, `${i.disk_mib} MiB`, i.packages.join(' ').slice(0, 50), i.created_at.replace('T', ' ').slice(0, 19)]);
  process.stdout.write(images.length ? `${table(['IMAGE', 'RECIPE', 'DISK', 'PACKAGES', 'CREATED'], rows)}\n` : 'no images built yet\n');
  process.stdout.write(`recipes: ${(await listRecipeNames()).join(', ')}\n`);
}
