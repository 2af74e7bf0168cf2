/**
 * Fork with variations (issue 10 §1), declared once: the names and values each child of a fork
 * gets (as environment variables, interpreter globals), its RNG seed, and a guest's permission to
 * fork itself. The REST body, the agent methods and the guest library's requests all use these.
 */
import { z } from 'zod';
import { ForkdError } from './errors.js';
import { LIMITS, MACHINE_LIMITS } from './limits.js';

const V = LIMITS.vary;

/** A variable name every shell and interpreter takes; FORKD_ is forkd's own (FORKD_SEED, ...). */
export const VaryName = z.string().max(V.maxNameChars).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'vary names are identifiers: letters, digits, _ (not starting with a digit)')
  .refine((n) => !n.toUpperCase().startsWith('FORKD_'), 'vary names starting with FORKD_ are reserved');
/** JSON scalars only: they become environment strings and interpreter values alike. */
export const VaryValue = z.union([z.string().max(V.maxStringChars), z.number().finite(), z.boolean()]);
const jsonBytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v));
/** One child's values. */
export const VaryValues = z.record(VaryName, VaryValue)
  .refine((m) => Object.keys(m).length <= V.maxNames, `at most ${V.maxNames} vary names`)
  .refine((m) => jsonBytes(m) <= V.maxChildJsonBytes, `one child's vary values exceed ${V.maxChildJsonBytes} bytes of JSON`);
/** name -> one value per child (each array as long as the fork's count). */
export const VaryByName = z.record(VaryName, z.array(VaryValue).max(MACHINE_LIMITS.forkMax))
  .refine((m) => Object.keys(m).length <= V.maxNames, `at most ${V.maxNames} vary names`);
/** One object per child. */
export const VaryList = z.array(VaryValues).max(MACHINE_LIMITS.forkMax);
/** Either form: {"temperature": [0.1, 0.5, 0.9]} or [{"temperature": 0.1}, ...]. */
export const Vary = z.union([VaryList, VaryByName]);
/** A child's RNG seed: Python's random and numpy, JS Math.random and FORKD_SEED take it. */
export const Seed = z.number().int().min(0).max(2 ** 32 - 1);

/** Permission for the guest to fork itself (spawn body): children per call and guest-fork generations below the original. */
export const AllowGuestFork = z.object({
  max_count: z.number().int().min(1).max(MACHINE_LIMITS.forkMax),
  max_depth: z.number().int().min(1).max(LIMITS.guestFork.maxDepth),
}).strict();

export type VaryValueT = z.output<typeof VaryValue>;
export type VaryValuesT = z.output<typeof VaryValues>;
export type VaryT = z.output<typeof Vary>;
export type AllowGuestForkT = z.output<typeof AllowGuestFork>;

/** The values of each of count children (index i: child i), checked against the count and the per-child caps. */
export function expandVary(vary: VaryT | undefined, count: number): VaryValuesT[] {
  if (vary === undefined) return Array.from({ length: count }, () => ({}));
  let out: VaryValuesT[];
  if (Array.isArray(vary)) {
    if (vary.length !== count) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `vary lists ${vary.length} children but count is ${count}`, { vary_children: vary.length, count });
    out = vary.map((v) => ({ ...v }));
  } else {
    out = Array.from({ length: count }, () => ({}));
    for (const [name, values] of Object.entries(vary)) {
      if (values.length !== count) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `vary.${name} has ${values.length} values but count is ${count} (one value per child)`, { name, values: values.length, count });
      values.forEach((v, i) => (out[i]![name] = v));
    }
  }
  for (const [i, values] of out.entries()) {
    const ok = VaryValues.safeParse(values);
    if (!ok.success) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `vary for child ${i}: ${ok.error.issues.map((x) => x.message).join('; ')}`, { index: i });
  }
  return out;
}

/** How a value reads as an environment variable: strings as they are, numbers and booleans as JSON. */
export function varyEnvValue(v: VaryValueT): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
