/** A seeded Math.random replacement (xoshiro128**) and seed derivation from host entropy. */
import { createHash } from 'node:crypto';
import { LIMITS } from '@forkd/protocol';

const SEED_SLOTS: Record<string, number> = {
  'agent.Math.random': 0,
  'js.Math.random': 1,
  python: 2,
  'agent.openssl': 3,
  'agent.libc': 4,
  'python.native': 5,
};
if (Object.keys(SEED_SLOTS).length * 32 > LIMITS.restoreEntropyBytes) throw new Error('LIMITS.restoreEntropyBytes is too small for the seed slots');

/**
 * An independent 32-byte seed per consumer. With enough host entropy each consumer gets its own
 * slice (no hashing: OpenSSL's code is cold in every restored child under TCG and costs tens of
 * ms); with less, a SHA-256 of label and entropy.
 */
export function deriveSeed(entropy: Buffer, label: string): Buffer {
  const slot = SEED_SLOTS[label];
  if (slot !== undefined && entropy.length >= (slot + 1) * 32) return Buffer.from(entropy.subarray(slot * 32, slot * 32 + 32));
  return createHash('sha256').update(label).update('\0').update(entropy).digest();
}

export function seededRandom(seed: Buffer): () => number {
  let a = seed.readUInt32LE(0) >>> 0;
  let b = seed.readUInt32LE(4) >>> 0;
  let c = seed.readUInt32LE(8) >>> 0;
  let d = seed.readUInt32LE(12) >>> 0;
  if ((a | b | c | d) === 0) a = 0x9e3779b9;
  const next32 = (): number => {
    const t = b << 9;
    let r = Math.imul(b, 5);
    r = Math.imul((r << 7) | (r >>> 25), 9);
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = (d << 11) | (d >>> 21);
    return r >>> 0;
  };
  // 53 random bits, like V8's Math.random precision.
  return function random(): number {
    const hi = next32() >>> 5;
    const lo = next32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  };
}
