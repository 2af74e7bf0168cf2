import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { BrowserWarmup, ForkdError, EvalLanguage, MACHINE_LIMITS, ServiceList } from '@forkd/protocol';

/** A recipe: what goes into the image and what the parent warms before the snapshot. */
export const RecipeSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'recipe name: lowercase letters, digits, . _ -'),
  description: z.string().max(1000).default(''),
  suite: z.enum(['bookworm']).default('bookworm'),
  /** Start from an image made by `forkd image from-oci REF --name NAME` instead of Debian (then no packages). */
  from: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'image name: lowercase letters, digits, . _ -').optional(),
  /** Extra Debian packages; the agent's own (nodejs, tini, iproute2) are always added. */
  packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9.+-]+$/, 'invalid Debian package name')).max(200).default([]),
  disk_mib: z.number().int().min(512).max(65536).default(1024),
  default_mem_mib: z.number().int().min(MACHINE_LIMITS.memMib.min).max(MACHINE_LIMITS.memMib.max).default(512),
  min_mem_mib: z.number().int().min(MACHINE_LIMITS.memMib.min).max(MACHINE_LIMITS.memMib.max).default(192),
  language: EvalLanguage.default('js'),
  /**
   * Whether the parent may reach the network while it warms up (pip install, model downloads).
   * Children never inherit it: each gets its own network, or none, at spawn.
   */
  warmup_network: z.boolean().default(false),
  /**
   * Long-running processes the parent starts (in order, each until its ready check passes) before
   * its warm-up code runs and the snapshot is taken: every child restores with them running.
   */
  services: ServiceList.default([]),
  warmup: z.object({
    python_modules: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/)).max(64).optional(),
    python: z.string().max(1024 * 1024).optional(),
    /** Run through run_code (IPython when the image has it) after `python`: warms the rich-results path. */
    python_cell: z.string().max(1024 * 1024).optional(),
    js: z.string().max(1024 * 1024).optional(),
    /** Playwright connects to the Chromium a service started (its DevTools port) and opens a context and a page: the browser language. */
    browser: BrowserWarmup.optional(),
  }).strict().default({}),
}).strict();
export type Recipe = z.output<typeof RecipeSchema>;

/** Packages every image gets: the agent runs on Node, tini reaps zombies as PID 1. */
export const AGENT_PACKAGES = ['nodejs', 'tini', 'iproute2', 'ca-certificates', 'procps'];

export function recipesDir(): string {
  if (process.env.FORKD_RECIPES_DIR) return path.resolve(process.env.FORKD_RECIPES_DIR);
  // packages/engine/{src,dist}/recipe -> repo root /recipes
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'recipes');
}

const RECIPE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * A recipe by name, from the recipes folder only: a name never becomes a path, whatever it looks
 * like ("package.json" is the recipe package.json.json, not a file in the caller's directory).
 * What remote callers (REST) get.
 */
export async function loadRecipeByName(name: string): Promise<Recipe> {
  if (!RECIPE_NAME.test(name)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid recipe name ${JSON.stringify(name)}`);
  return readRecipeFile(path.join(recipesDir(), `${name}.json`), name);
}

/** A recipe by name, or by path to a JSON file: for local users (the CLI), whose paths are theirs. */
export async function loadRecipe(nameOrPath: string): Promise<Recipe> {
  const looksLikePath = nameOrPath.includes('/') || nameOrPath.endsWith('.json');
  return looksLikePath ? readRecipeFile(path.resolve(nameOrPath), nameOrPath) : loadRecipeByName(nameOrPath);
}

async function readRecipeFile(file: string, asked: string): Promise<Recipe> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    const known = await listRecipeNames();
    throw new ForkdError('FORKD_E_RECIPE_NOT_FOUND', `recipe ${JSON.stringify(asked)} not found (known: ${known.join(', ') || 'none'})`, { recipe: asked });
  }
  return parseRecipe(text, file);
}

export function parseRecipe(text: string, source = 'recipe'): Recipe {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ForkdError('FORKD_E_RECIPE_INVALID', `${source}: not valid JSON: ${(e as Error).message}`);
  }
  const parsed = RecipeSchema.safeParse(raw);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ForkdError('FORKD_E_RECIPE_INVALID', `${source}: ${msg}`);
  }
  if (parsed.data.language === 'browser' && !parsed.data.warmup.browser) {
    throw new ForkdError('FORKD_E_RECIPE_INVALID', `${source}: language browser needs warmup.browser (the DevTools port of the Chromium a service starts)`);
  }
  if (parsed.data.min_mem_mib > parsed.data.default_mem_mib) {
    throw new ForkdError('FORKD_E_RECIPE_INVALID', `${source}: min_mem_mib exceeds default_mem_mib`);
  }
  return parsed.data;
}

export async function listRecipeNames(): Promise<string[]> {
  try {
    return (await fs.readdir(recipesDir())).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
  } catch {
    return [];
  }
}
