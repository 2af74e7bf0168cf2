/** Digests checked while bytes stream: a blob is never trusted by its name. */
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import { DIGEST } from './reference.js';

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

export function assertDigest(d: unknown, what: string): string {
  if (typeof d !== 'string' || !DIGEST.test(d)) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `${what}: not a sha256 digest: ${JSON.stringify(String(d).slice(0, 100))}`);
  return d;
}

/** Counts and hashes what passes; check() throws FORKD_E_DIGEST_MISMATCH / FORKD_E_ARTIFACT_TRUNCATED. */
export class DigestCounter {
  private readonly h = crypto.createHash('sha256');
  bytes = 0;
  constructor(
    readonly expected: string,
    readonly expectedSize: number,
    readonly what: string,
  ) {}

  update(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expectedSize) {
      throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `${this.what} is longer than the ${this.expectedSize} bytes its descriptor declares`, { what: this.what, declared: this.expectedSize });
    }
    this.h.update(chunk);
  }

  digest(): string {
    return `sha256:${this.h.digest('hex')}`;
  }

  check(): void {
    if (this.bytes < this.expectedSize) {
      throw new ForkdError('FORKD_E_ARTIFACT_TRUNCATED', `${this.what} ended after ${this.bytes} of ${this.expectedSize} bytes`, { what: this.what, got: this.bytes, declared: this.expectedSize });
    }
    const got = this.digest();
    if (got !== this.expected) {
      throw new ForkdError('FORKD_E_DIGEST_MISMATCH', `${this.what} does not match its digest: expected ${this.expected}, got ${got}`, { what: this.what, expected: this.expected, got });
    }
  }
}
