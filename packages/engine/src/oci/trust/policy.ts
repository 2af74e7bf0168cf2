/**
 * The trust policy: which keys must have signed what is pulled, per registry or repository.
 *
 *   { "version": 1,
 *     "scopes": {
 *       "*":                          { "require": "none" },
 *       "registry.example:5000":       { "keys": ["team.pub"] },
 *       "registry.example:5000/forkd/python": { "keys": ["team.pub", "ci.pub"], "require": "all" } } }
 *
 * The longest scope that equals `registry/repository`, or is a prefix of it at a `/`, wins; `*`
 * matches everything. `require`: "all" (default: every key listed signed), "any" (one of them), or
 * "none" (no signature needed). Key paths are relative to the policy file. Where it lives: the
 * caller's file (CLI --trust-policy), else FORKD_TRUST_POLICY, else FORKD_HOME/trust-policy.json;
 * no file means nothing is required. A daemon reads its own (operator's) file, never a client's.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type crypto from 'node:crypto';
import { z } from 'zod';
import { ForkdError, OCI_LIMITS } from '@forkd/protocol';
import { keyIdOf, loadPublicKey } from './keys.js';

const RuleSchema = z.object({
  keys: z.array(z.string().min(1).max(16 * 1024)).max(32).default([]),
  require: z.enum(['all', 'any', 'none']).default('all'),
}).strict();

const PolicySchema = z.object({
  version: z.literal(1),
  scopes: z.record(z.string().min(1).max(512), RuleSchema),
}).strict();

export interface TrustRule {
  scope: string;
  require: 'all' | 'any' | 'none';
  keys: Array<{ id: string; key: crypto.KeyObject }>;
}

export interface TrustPolicy {
  file: string;
  rules: TrustRule[];
}

export const POLICY_FILE = 'trust-policy.json';

/** Where the policy is read from when the caller names none (null: no file, nothing required). */
export async function defaultPolicyFile(home: string, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  if (env.FORKD_TRUST_POLICY) return env.FORKD_TRUST_POLICY;
  const f = path.join(home, POLICY_FILE);
  return (await fs.stat(f).then(() => true, () => false)) ? f : null;
}

export async function loadTrustPolicy(file: string): Promise<TrustPolicy> {
  let text: string;
  try {
    const st = await fs.stat(file);
    if (!st.isFile() || st.size > OCI_LIMITS.maxTrustPolicyBytes) throw new Error(`not a file of at most ${OCI_LIMITS.maxTrustPolicyBytes} bytes`);
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new ForkdError('FORKD_E_TRUST_POLICY_INVALID', `trust policy ${file}: ${(e as Error).message}`, { file });
  }
  let parsed: z.output<typeof PolicySchema>;
  try {
    parsed = PolicySchema.parse(JSON.parse(text));
  } catch (e) {
    const msg = e instanceof z.ZodError ? e.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') : (e as Error).message;
    throw new ForkdError('FORKD_E_TRUST_POLICY_INVALID', `trust policy ${file}: ${msg.slice(0, 500)}`, { file });
  }
  const rules: TrustRule[] = [];
  for (const [scope, r] of Object.entries(parsed.scopes)) {
    if (r.require !== 'none' && r.keys.length === 0) throw new ForkdError('FORKD_E_TRUST_POLICY_INVALID', `trust policy ${file}: scope ${scope} requires signatures but lists no keys`, { file });
    const keys = [];
    for (const k of r.keys) {
      const key = await loadPublicKey(k.includes('-----BEGIN') ? k : path.resolve(path.dirname(file), k), `trust policy ${file} scope ${scope}`).catch((e: unknown) => {
        throw e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT' ? new ForkdError('FORKD_E_TRUST_POLICY_INVALID', e.message, { file }) : e;
      });
      keys.push({ id: keyIdOf(key), key });
    }
    rules.push({ scope, require: r.require, keys });
  }
  return { file, rules };
}

/** The rule for registry/repository: the longest matching scope, or null (nothing required). */
export function ruleFor(policy: TrustPolicy, registry: string, repository: string): TrustRule | null {
  const name = `${registry}/${repository}`;
  let best: TrustRule | null = null;
  for (const r of policy.rules) {
    const matches = r.scope === '*' || r.scope === name || name.startsWith(`${r.scope.replace(/\/$/, '')}/`);
    if (!matches) continue;
    const len = r.scope === '*' ? 0 : r.scope.length;
    if (!best || len > (best.scope === '*' ? 0 : best.scope.length)) best = r;
  }
  return best;
}
