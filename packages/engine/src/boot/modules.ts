import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';

/** "kernel/drivers/virtio/virtio_mmio.ko.xz" -> "virtio_mmio" (dashes and underscores are the same to the kernel). */
export function moduleName(file: string): string {
  return path.basename(file).replace(/\.ko(\.(xz|zst|gz))?$/, '').replaceAll('-', '_');
}

export interface ModuleIndex {
  /** module name -> its path relative to the modules dir, and direct dependencies (names). */
  deps: Map<string, { file: string; deps: string[] }>;
  builtin: Set<string>;
}

/** Parses modules.dep and modules.builtin text. */
export function parseModuleIndex(depText: string, builtinText: string): ModuleIndex {
  const deps = new Map<string, { file: string; deps: string[] }>();
  for (const line of depText.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const file = line.slice(0, i).trim();
    const d = line.slice(i + 1).trim().split(/\s+/).filter(Boolean).map(moduleName);
    deps.set(moduleName(file), { file, deps: d });
  }
  const builtin = new Set(builtinText.split('\n').map((l) => l.trim()).filter(Boolean).map(moduleName));
  return { deps, builtin };
}

/**
 * The loadable modules needed for `wanted`, dependencies first (topological order; ties keep
 * the order modules are first reached). Built-in modules are skipped. A wanted module that is
 * neither built in nor present is an error.
 */
export function resolveModules(index: ModuleIndex, wanted: string[]): Array<{ name: string; file: string }> {
  const out: Array<{ name: string; file: string }> = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (raw: string, chain: string[]) => {
    const name = raw.replaceAll('-', '_');
    if (done.has(name) || index.builtin.has(name)) return;
    const entry = index.deps.get(name);
    if (!entry) {
      throw new ForkdError('FORKD_E_KERNEL_NOT_FOUND', `kernel module ${name} is neither built in nor in modules.dep${chain.length ? ` (needed by ${chain.join(' <- ')})` : ''}`, { module: name });
    }
    if (visiting.has(name)) throw new ForkdError('FORKD_E_INTERNAL', `module dependency cycle through ${name}`);
    visiting.add(name);
    // modules.dep lists the deepest dependency last: visit in reverse for modprobe's order.
    for (const d of [...entry.deps].reverse()) visit(d, [name, ...chain]);
    visiting.delete(name);
    done.add(name);
    out.push({ name, file: entry.file });
  };
  for (const w of wanted) visit(w, []);
  return out;
}

export async function loadModuleIndex(modulesDir: string): Promise<ModuleIndex> {
  let depText: string;
  try {
    depText = await fs.readFile(path.join(modulesDir, 'modules.dep'), 'utf8');
  } catch {
    throw new ForkdError('FORKD_E_KERNEL_NOT_FOUND', `no modules.dep in ${modulesDir}: the guest kernel's modules are not installed (apt-get install linux-image-cloud-amd64)`, { modules_dir: modulesDir });
  }
  const builtinText = await fs.readFile(path.join(modulesDir, 'modules.builtin'), 'utf8').catch(() => '');
  return parseModuleIndex(depText, builtinText);
}
