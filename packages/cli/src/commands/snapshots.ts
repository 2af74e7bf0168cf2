import { type Engine, listRecipeNames } from '@forkd/engine';
import { bytes, printJson, progressPrinter, table } from '../output.js';

export async function snapshotCreate(engine: Engine, o: { tag: string; recipe: string; memMib?: number; vcpus?: number; json?: boolean }): Promise<void> {
  const progress = progressPrinter(!o.json);
  try {
    const { manifest: m } = await engine.createSnapshot({ tag: o.tag, recipe: o.recipe, ...(o.memMib !== undefined ? { memMib: o.memMib } : {}), ...(o.vcpus !== undefined ? { vcpus: o.vcpus } : {}), onProgress: progress.onProgress });
    progress.done();
    if (o.json) return printJson(m);
    process.stdout.write(
      `snapshot ${m.tag} created (${m.accel}, ${m.machine.mem_mib} MiB, recipe ${m.origin.recipe})\n` +
        `  boot to agent ${((m.timings.boot_to_agent_ms ?? 0) / 1000).toFixed(1)} s, warm-up ${((m.timings.warmup_ms ?? 0) / 1000).toFixed(1)} s, save ${(m.timings.save_ms ?? 0).toFixed(0)} ms\n` +
        `  memory ${bytes(m.files.memory.physical_bytes)} on disk of ${bytes(m.files.memory.logical_bytes)}, vmstate ${bytes(m.files.vmstate.bytes)}, disk layer ${bytes(m.files.disk.physical_bytes)}\n`,
    );
  } finally {
    progress.done();
  }
}

export async function listSnapshotsCmd(engine: Engine, o: { json?: boolean }): Promise<void> {
  const list = await engine.listSnapshots();
  if (o.json) {
    return printJson(list.map((s) => ({
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
    })));
  }
  if (list.length === 0) {
    process.stdout.write('no snapshots (create one: forkd snapshot create --tag py --recipe python)\n');
    return;
  }
  const rows = list.map((s) => [s.tag, s.manifest.origin.recipe ?? '-', s.manifest.accel, `${s.manifest.machine.mem_mib} MiB`, bytes(s.manifest.files.memory.physical_bytes), bytes(s.manifest.files.disk.physical_bytes), s.manifest.created_at.replace('T', ' ').slice(0, 19)]);
  process.stdout.write(`${table(['TAG', 'RECIPE', 'ACCEL', 'MEMORY', 'MEM ON DISK', 'DISK LAYER', 'CREATED'], rows)}\n`);
}

export async function rmi(engine: Engine, tags: string[], o: { json?: boolean }): Promise<void> {
  const removed: string[] = [];
  for (const t of tags) {
    await engine.removeSnapshot(t);
    removed.push(t);
  }
  if (o.json) return printJson({ removed });
  for (const t of removed) process.stdout.write(`removed ${t}\n`);
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
