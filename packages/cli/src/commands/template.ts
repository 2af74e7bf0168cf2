/**
 * `forkd template build FILE|NAME`: a template JSON (recipes/*.json shape with `steps`; copy entries
 * may name host files with "src", relative to the file) or a recipe/template name, built into its
 * image (a cached layer per step) and warm snapshot. Through the daemon unless --local.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ForkdError } from '@forkd/protocol';
import { buildRecipe, resolveCopySources, type TemplateBuildResult } from '@forkd/sdk';
import { putTemplateFile, type Engine } from '@forkd/engine';
import { localFlag, type CliContext } from '../client.js';
import { printJson, progressPrinter } from '../output.js';

interface BuildFlags { tag?: string; memMib?: string; json?: boolean; local?: boolean }

export function registerTemplateCommands(program: Command, { run, client, engine }: CliContext): void {
  const template = program.command('template').description('templates: recipes with build steps (E2B Template), built into an image and a warm snapshot');
  localFlag(template.command('build').argument('<template>', 'a template/recipe JSON file, or a recipe or built template name')
    .description('build a template: its steps (each cached by content), then its warm snapshot')
    .option('--tag <tag>', 'snapshot tag (default: the template name)')
    .option('--mem-mib <n>', 'parent memory (MiB)')
    .option('--json', 'JSON output'))
    .action(run(async (what: string, o: BuildFlags) => {
      const { raw, files } = await readTemplate(what);
      const name = String((raw as { name?: unknown }).name ?? what);
      const tag = o.tag ?? name;
      const memMib = o.memMib !== undefined ? Number(o.memMib) : undefined;
      const progress = progressPrinter(!o.json);
      let r: TemplateBuildResult;
      try {
        r = o.local
          ? await buildLocal(engine(), raw, files, { tag, ...(memMib !== undefined ? { memMib } : {}), onProgress: progress.onProgress })
          : await buildRecipe(await client(), raw as never, files, { tag, ...(memMib !== undefined ? { memMib } : {}), onBuildLogs: (ev) => progress.onProgress({ phase: ev.phase, message: ev.message, ...(ev.fraction !== null ? { fraction: ev.fraction } : {}) }) });
      } finally {
        progress.done();
      }
      if (o.json) return printJson(r);
      const ran = r.steps.filter((s) => !s.cached).length;
      process.stdout.write(`template ${r.template} -> snapshot ${r.snapshot.tag} in ${(r.build_ms / 1000).toFixed(1)} s (${r.steps.length - ran}/${r.steps.length} steps cached${r.snapshot_cached ? ', snapshot reused' : ''})\n`);
      for (const s of r.steps) process.stdout.write(`  ${String(s.index + 1).padStart(2)}. ${s.cached ? 'cached' : `${(s.duration_ms / 1000).toFixed(1)} s`.padEnd(6)} ${s.in_base ? '(base) ' : ''}${s.description.slice(0, 100)}\n`);
    }));
}

/** A file (JSON, copy sources resolved) or a name (built as itself: {name, from: name}). */
async function readTemplate(what: string): Promise<{ raw: unknown; files: Map<string, Uint8Array> }> {
  const looksLikePath = what.includes('/') || what.endsWith('.json');
  if (!looksLikePath) return { raw: { name: what, from: what }, files: new Map() };
  let text: string;
  try {
    text = await fs.readFile(path.resolve(what), 'utf8');
  } catch {
    throw new ForkdError('FORKD_E_RECIPE_NOT_FOUND', `template file ${what} not found`, { recipe: what });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ForkdError('FORKD_E_RECIPE_INVALID', `${what}: not valid JSON: ${(e as Error).message}`);
  }
  const r = await resolveCopySources(raw, path.dirname(path.resolve(what)));
  return { raw: r.recipe, files: r.files };
}

async function buildLocal(engine: Engine, raw: unknown, files: Map<string, Uint8Array>, o: { tag: string; memMib?: number; onProgress: Parameters<Engine['buildTemplate']>[0]['onProgress'] }): Promise<TemplateBuildResult> {
  const t0 = Date.now();
  const recipe = await engine.resolveTemplate(raw);
  for (const [digest, data] of files) await putTemplateFile(engine.layout, digest, data);
  const b = await engine.buildTemplate({ tag: o.tag, recipe, ...(o.memMib !== undefined ? { memMib: o.memMib } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  const m = b.snapshot.manifest;
  return {
    snapshot: { tag: m.tag, created_at_unix: Math.floor(Date.parse(m.created_at) / 1000), status: 'ready', bootable: true, recipe: recipe.name, language: m.language, accel: m.accel, mem_mib: m.machine.mem_mib, vcpus: m.machine.vcpus, parent_tag: null, branched_from: `recipe:${recipe.name}`, pulled_from: null, pause_ms: null, memory_physical_bytes: m.files.memory.physical_bytes, disk_physical_bytes: m.files.disk.physical_bytes, live_sandboxes: 0, warning: null, owner: 'local', shared: false },
    template: recipe.name,
    image_key: b.image.key,
    image_cached: b.image.cached,
    snapshot_cached: b.snapshot_cached,
    steps: b.image.steps,
    build_ms: Date.now() - t0,
  };
}
