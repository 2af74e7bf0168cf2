import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ForkdError, LIMITS, RecipeSchema, type RecipeT } from '@forkd/protocol';

/** A recipe (= a template): declared once in protocol/src/recipe.ts. */
export { RecipeSchema };
export type Recipe = RecipeT;

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
export async function loadRecipeByName(name: string, o: { templatesDir?: string } = {}): Promise<Recipe> {
  return resolveRecipe(await readRawByName(name, o.templatesDir), name, o);
}

/** A recipe by name, or by path to a JSON file: for local users (the CLI), whose paths are theirs. */
export async function loadRecipe(nameOrPath: string, o: { templatesDir?: string } = {}): Promise<Recipe> {
  const looksLikePath = nameOrPath.includes('/') || nameOrPath.endsWith('.json');
  if (!looksLikePath) return loadRecipeByName(nameOrPath, o);
  const text = await readText(path.resolve(nameOrPath), nameOrPath);
  return resolveRecipe(parseJson(text, nameOrPath), nameOrPath, o);
}

async function readText(file: string, asked: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    const known = await listRecipeNames();
    throw new ForkdError('FORKD_E_RECIPE_NOT_FOUND', `recipe ${JSON.stringify(asked)} not found (known: ${known.join(', ') || 'none'})`, { recipe: asked });
  }
}

/**
 * The raw JSON of a recipe by name: the recipes folder first, then the templates built on this
 * host (templatesDir, where a successful template build records its description). A name never
 * becomes a path beyond `<dir>/<name>.json`.
 */
async function readRawByName(name: string, templatesDir?: string): Promise<unknown> {
  if (!RECIPE_NAME.test(name)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid recipe name ${JSON.stringify(name)}`);
  for (const dir of [recipesDir(), ...(templatesDir ? [templatesDir] : [])]) {
    const text = await fs.readFile(path.join(dir, `${name}.json`), 'utf8').catch(() => null);
    if (text !== null) return parseJson(text, name);
  }
  const known = await listRecipeNames();
  throw new ForkdError('FORKD_E_RECIPE_NOT_FOUND', `recipe ${JSON.stringify(name)} not found (known: ${known.join(', ') || 'none'}${templatesDir ? ', or a template built here' : ''})`, { recipe: name });
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ForkdError('FORKD_E_RECIPE_INVALID', `${source}: not valid JSON: ${(e as Error).message}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * A recipe that extends another (`from`) merged with it, before validation: the parent's packages,
 * steps and services first, then the child's; the child's warm-up fields replace the parent's; the
 * larger disk and memory figures; every other field the child sets wins. Exported for the tests.
 */
export function mergeFrom(parent: Record<string, unknown>, child: Record<string, unknown>): Record<string, unknown> {
  const num = (k: string) => Math.max(Number(parent[k] ?? 0), Number(child[k] ?? 0)) || undefined;
  const merged: Record<string, unknown> = { ...parent, ...child };
  delete merged.from;
  merged.packages = [...new Set([...list(parent.packages), ...list(child.packages)])];
  merged.steps = [...list(parent.steps), ...list(child.steps)];
  merged.services = [...list(parent.services), ...list(child.services)];
  merged.warmup = { ...(isObject(parent.warmup) ? parent.warmup : {}), ...(isObject(child.warmup) ? child.warmup : {}) };
  for (const k of ['disk_mib', 'default_mem_mib', 'min_mem_mib']) if (num(k) !== undefined) merged[k] = num(k);
  merged.description = child.description ?? '';
  return merged;
}

/** Validates a recipe, first merging the chain of recipes it extends (`from`, at most maxFromDepth deep). */
export async function resolveRecipe(raw: unknown, source: string, o: { templatesDir?: string } = {}): Promise<Recipe> {
  let merged = raw;
  const seen: string[] = [];
  while (isObject(merged) && typeof merged.from === 'string') {
    const from = merged.from;
    if (seen.includes(from) || seen.length >= LIMITS.templates.maxFromDepth) {
      throw new ForkdError('FORKD_E_RECIPE_INVALID', `${source}: "from" chain ${[...seen, from].join(' -> ')} loops or is deeper than ${LIMITS.templates.maxFromDepth}`);
    }
    seen.push(from);
    const parent = await readRawByName(from, o.templatesDir);
    if (!isObject(parent)) throw new ForkdError('FORKD_E_RECIPE_INVALID', `recipe ${from}: not a JSON object`);
    merged = mergeFrom(parent, merged);
  }
  return validateRecipe(merged, source);
}

export function parseRecipe(text: string, source = 'recipe'): Recipe {
  const recipe = validateRecipe(parseJson(text, source), source);
  if (recipe.from !== undefined) throw new ForkdError('FORKD_E_RECIPE_INVALID', `${source}: "from" needs the recipe it extends: load it with loadRecipe or resolveRecipe`);
  return recipe;
}

/** Validates an already-merged recipe (no `from` left to resolve). */
export function validateRecipe(raw: unknown, source = 'recipe'): Recipe {
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
