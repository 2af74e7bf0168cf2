/**
 * `vary` (a fork child's values and seed, before it answers anything else) and the host's side of
 * a guest's own fork (`guest_fork.wait`, `guest_fork.resolve`): see guest-fork.ts.
 */
import { createHash } from 'node:crypto';
import { varyEnvValue, type ResultOf } from '@forkd/protocol';
import type { CallContext, ParamsOut, Reply } from '../handler.js';
import type { Runtime } from '../runtime.js';
import type { GuestForkBroker } from '../guest-fork.js';
import { guestEnv } from '../guest-env.js';
import { seededRandom } from '../prng.js';

/** A generator's 32-byte seed from the child's seed: the same seed gives the same draws (reproducible branches). */
export function seedBytes(seed: number, label: string): Buffer {
  return createHash('sha256').update(`forkd-seed:${seed}:${label}`).digest();
}

export function makeVaryMethods(rt: Runtime, broker: GuestForkBroker) {
  async function vary(p: ParamsOut<'vary'>): Promise<Reply<ResultOf<'vary'>>> {
    const env: Record<string, string> = { FORKD_SEED: String(p.seed) };
    for (const [k, v] of Object.entries(p.values)) env[k] = varyEnvValue(v);
    // New processes (commands, services, a Python interpreter started later) and this process.
    Object.assign(guestEnv, env);
    Object.assign(process.env, env);
    const applied: string[] = [];
    Math.random = seededRandom(seedBytes(p.seed, 'agent'));
    rt.js.reseed(seedBytes(p.seed, 'js'));
    rt.js.setGlobals(p.values);
    applied.push('js.Math.random', 'js.globals');
    if (rt.python.available) applied.push(rt.python.vary(p.values, env, p.seed));
    // The guest caller blocked in the forkd.fork() that made this child gets its answer last,
    // once everything it may read (env, interpreters) holds this child's values.
    if (p.watch_guest_forks) broker.watched();
    const delivered = p.guest_fork ? broker.deliverChild(p.guest_fork.request_id, p.index, p.values, p.seed) : false;
    broker.dropInherited();
    return { result: { env: Object.keys(env), applied, guest_fork_delivered: delivered } };
  }

  async function wait(_p: ParamsOut<'guest_fork.wait'>, ctx: CallContext): Promise<Reply<ResultOf<'guest_fork.wait'>>> {
    return { result: await broker.wait((cb) => ctx.onCancel(cb)) };
  }

  async function resolve(p: ParamsOut<'guest_fork.resolve'>): Promise<Reply<ResultOf<'guest_fork.resolve'>>> {
    return { result: { delivered: broker.resolve(p) } };
  }

  return { vary, 'guest_fork.wait': wait, 'guest_fork.resolve': resolve };
}
