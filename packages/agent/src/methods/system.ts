/** `ping`, `restore` (clock + kernel RNG + user-space PRNGs after a snapshot restore) and `clock` (after an idle pause). */
import fs from 'node:fs';
import { PROTOCOL_VERSION, LIMITS, ForkdError, type ResultOf } from '@forkd/protocol';
import type { CallContext, ParamsOut, Reply } from '../handler.js';
import type { Runtime } from '../runtime.js';
import { AGENT_VERSION } from '../state.js';
import { deriveSeed, seededRandom } from '../prng.js';

const PY_RESEED_DEADLINE_MS = 2000;

export function makeSystemMethods(rt: Runtime, onRestored: () => void = () => undefined) {
  async function ping(_p: ParamsOut<'ping'>): Promise<Reply<ResultOf<'ping'>>> {
    return {
      result: {
        pong: true,
        protocol: PROTOCOL_VERSION,
        agent_version: AGENT_VERSION,
        warmup: rt.state.warmup,
        warmup_error: rt.state.warmupError,
        languages: [...(rt.python.available ? ['python' as const] : []), 'js' as const, ...(rt.browser.connected ? ['browser' as const] : [])],
        pid: process.pid,
        uptime_ms: Math.round(performance.now() - rt.state.startedMono),
        restores: rt.state.restores,
      },
    };
  }

  async function restore(p: ParamsOut<'restore'>, ctx: CallContext): Promise<Reply<ResultOf<'restore'>>> {
    const entropy = Buffer.from(p.entropy_b64, 'base64');
    if (entropy.length > LIMITS.maxEntropyBytes) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `entropy exceeds ${LIMITS.maxEntropyBytes} bytes`);
    const t0 = performance.now();
    const skew = Date.now() - p.now_ms;
    let clockSet = false;
    let rngReseeded = false;
    if (!rt.noSystem) {
      // now_ms was taken by the host when it sent the request; add the time we held it.
      const target = p.now_ms + (performance.now() - ctx.receivedAt);
      if (entropy.length > 0) {
        const err = await rt.sys.restoreSystem(target, entropy);
        // The helper names each outcome (clock=ok rng=...); any other error (timeout, helper gone) means neither.
        clockSet = err === null || err.includes('clock=ok');
        rngReseeded = err === null || err.includes('rng=ok');
        if (err) process.stderr.write(`forkd-agent: restore: ${err}\n`);
      } else {
        clockSet = (await rt.sys.setClock(target)) === null;
      }
    }
    const t1 = performance.now();
    const userspace = await reseedUserspace(rt, entropy.length > 0 ? entropy : freshEntropy());
    const t2 = performance.now();
    if (!ctx.warming) {
      rt.state.restores++;
      onRestored();
    }
    const phases = { validate: round1((ctx.validatedAt ?? ctx.receivedAt) - ctx.receivedAt), system: round1(t1 - t0), userspace: round1(t2 - t1), total: round1(t2 - ctx.receivedAt) };
    return { result: { skew_ms: skew, clock_set: clockSet, rng_reseeded: rngReseeded, userspace_reseeded: userspace, phases_ms: phases } };
  }

  /** The guest was stopped, not copied: its clock lags by the pause; its generators are its own. */
  async function clock(p: ParamsOut<'clock'>, ctx: CallContext): Promise<Reply<ResultOf<'clock'>>> {
    const skew = Date.now() - p.now_ms;
    const clockSet = rt.noSystem ? false : (await rt.sys.setClock(p.now_ms + (performance.now() - ctx.receivedAt))) === null;
    return { result: { skew_ms: skew, clock_set: clockSet } };
  }

  return { ping, restore, clock };
}

/** Reseeds the generators whose state was cloned with the snapshot. Also used to warm this path. */
export async function reseedUserspace(rt: Runtime, entropy: Buffer, awaitPython = false): Promise<string[]> {
  const done: string[] = [];
  Math.random = seededRandom(deriveSeed(entropy, 'agent.Math.random'));
  rt.js.reseed(deriveSeed(entropy, 'js.Math.random'));
  done.push('js.Math.random');
  // OpenSSL (crypto.generateKeyPair, createECDH, WebCrypto, TLS) and libc in the agent process.
  done.push(...rt.native.reseed(deriveSeed(entropy, 'agent.openssl'), deriveSeed(entropy, 'agent.libc')));
  if (rt.python.running) {
    // Not awaited: the reseed is written to the interpreter's pipe now, so it runs before any later
    // python call, and waking python (cold code under TCG) stays off the readiness path.
    const pending = rt.python.reseed(deriveSeed(entropy, 'python'), deriveSeed(entropy, 'python.native'), PY_RESEED_DEADLINE_MS);
    if (awaitPython) done.push(...(await pending));
    else {
      pending.catch(() => undefined);
      done.push('python (queued ahead of the next python call)');
    }
  }
  return done;
}

/** Kernel randomness (not OpenSSL's, whose state is cloned too). */
function freshEntropy(): Buffer {
  const b = Buffer.alloc(32);
  try {
    const fd = fs.openSync('/dev/urandom', 'r');
    try {
      fs.readSync(fd, b, 0, b.length, null);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    b.writeDoubleLE(performance.now(), 0);
  }
  return b;
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
