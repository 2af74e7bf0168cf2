/**
 * A template's build plan, pure: which steps fold into the base image, the cache key of every
 * step, and the envs and working directory a step (or the finished template) runs with.
 *
 * Cache keys chain: key(i) = sha256(runner version, key(i-1), step i), key(-1) = the base image's
 * key (itself a hash of the package set, the agent bundle and the image layout). A copy step names
 * its files by content digest, so a file's bytes are in the key, its host path is not. Changing
 * step i changes key(i) and every key after it, and nothing before it.
 */
import { sha256 } from '../util/fsx.js';
import type { Recipe } from '../recipe/recipe.js';
import type { TemplateStepT } from '@forkd/protocol';

/** Bump when how a step is run in the build VM changes, so layers made the old way are not reused. */
export const STEP_RUNNER_VERSION = 1;

export interface PlannedStep {
  /** Index in the recipe's steps (what errors and reports name). */
  index: number;
  step: TemplateStepT;
  key: string;
}

export interface TemplatePlan {
  /** The recipe whose image the steps run on: leading apt steps joined to its packages, no steps. */
  base: Recipe;
  /** Leading apt steps that became base packages (their indices). */
  folded: number[];
  steps: PlannedStep[];
}

/**
 * apt steps before any other step join the base image's package set: debootstrap installs them on
 * the host (the image builder's way, cached by package set), so the build VM needs no network and
 * no apt lists for them. A later apt step runs apt-get in the build VM, with network.
 */
export function splitBase(recipe: Recipe): { base: Recipe; folded: number[]; rest: Array<{ index: number; step: TemplateStepT }> } {
  let n = 0;
  while (n < recipe.steps.length && recipe.steps[n]!.type === 'apt') n++;
  const extra = recipe.steps.slice(0, n).flatMap((s) => (s.type === 'apt' ? s.packages : []));
  const base: Recipe = { ...recipe, packages: [...new Set([...recipe.packages, ...extra])], steps: [] };
  return { base, folded: [...Array(n).keys()], rest: recipe.steps.slice(n).map((step, i) => ({ index: n + i, step })) };
}

export function stepKey(prevKey: string, step: TemplateStepT): string {
  return sha256(JSON.stringify({ v: STEP_RUNNER_VERSION, prev: prevKey, step }));
}

export function planTemplate(recipe: Recipe, baseKey: string): TemplatePlan {
  const { base, folded, rest } = splitBase(recipe);
  let prev = baseKey;
  const steps = rest.map(({ index, step }) => {
    prev = stepKey(prev, step);
    return { index, step, key: prev };
  });
  return { base, folded, steps };
}

/** The envs and working directory in effect after the first `count` steps (env and workdir steps). */
export function stepContext(steps: readonly TemplateStepT[], count = steps.length): { envs: Record<string, string>; workdir: string | undefined } {
  let envs: Record<string, string> = {};
  let workdir: string | undefined;
  for (const s of steps.slice(0, count)) {
    if (s.type === 'env') envs = { ...envs, ...s.envs };
    else if (s.type === 'workdir') workdir = s.path;
  }
  return { envs, workdir };
}

/** Whether a step needs the build VM to reach the network. */
export function stepNeedsNetwork(step: TemplateStepT): boolean {
  return step.type === 'apt' || ((step.type === 'pip' || step.type === 'npm' || step.type === 'run') && step.network);
}

/** One line naming a step, for progress and errors. */
export function describeStep(step: TemplateStepT): string {
  switch (step.type) {
    case 'apt': case 'pip': case 'npm': return `${step.type} install ${step.packages.join(' ')}`;
    case 'copy': return `copy ${step.files.map((f) => f.dest).join(', ')}`;
    case 'run': return `run ${typeof step.cmd === 'string' ? step.cmd : step.cmd.join(' ')}`;
    case 'env': return `env ${Object.keys(step.envs).join(', ')}`;
    case 'workdir': return `workdir ${step.path}`;
  }
}

/**
 * What a template's env and workdir steps mean once it runs: services start with its envs (under
 * their own) in its working directory (unless they name one), the warm interpreter has the envs,
 * and every child's commands get them (the snapshot records them).
 */
export function templateRuntime(recipe: Recipe): { envs: Record<string, string>; services: Recipe['services']; warmup: Recipe['warmup'] } {
  const { envs, workdir } = stepContext(recipe.steps);
  if (Object.keys(envs).length === 0 && workdir === undefined) return { envs, services: recipe.services, warmup: recipe.warmup };
  const services = recipe.services.map((s) => ({ ...s, env: { ...envs, ...(s.env ?? {}) }, ...(s.cwd ?? workdir ? { cwd: s.cwd ?? workdir } : {}) }));
  if (Object.keys(envs).length === 0) return { envs, services, warmup: recipe.warmup };
  const json = JSON.stringify(envs);
  const w = recipe.warmup;
  const usesPython = recipe.language === 'python' || w.python !== undefined || w.python_cell !== undefined || (w.python_modules ?? []).length > 0;
  const warmup: Recipe['warmup'] = {
    ...w,
    js: `Object.assign(process.env, ${json});\n${w.js ?? ''}`,
    ...(usesPython ? { python: `import os as _forkd_os, json as _forkd_json\n_forkd_os.environ.update(_forkd_json.loads(${JSON.stringify(json)}))\ndel _forkd_os, _forkd_json\n${w.python ?? ''}` } : {}),
  };
  return { envs, services, warmup };
}

/** What makes a template's snapshot: its image, and what the parent runs and with how much memory. */
export function templateSnapshotKey(recipe: Recipe, imageKey: string, memMib: number): string {
  return sha256(JSON.stringify({ v: STEP_RUNNER_VERSION, imageKey, memMib, language: recipe.language, services: recipe.services, warmup: recipe.warmup, runtime: stepContext(recipe.steps) }));
}
