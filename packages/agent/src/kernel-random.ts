/**
 * OpenSSL's DRBG state lives in guest memory, so every child restored from one snapshot starts
 * with the same generator: crypto.randomBytes() and randomUUID() returned identical values in all
 * children (measured). Node cannot reseed OpenSSL, so the crypto module's random functions are
 * routed to the kernel CRNG, which the host reseeds on every restore. Child processes are fresh
 * and seed OpenSSL themselves; only this process (and its eval context) needs the patch.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';

let fd = -1;

export function kernelRandomFill(buf: Uint8Array, offset = 0, size = buf.byteLength - offset): Uint8Array {
  if (fd < 0) fd = fs.openSync('/dev/urandom', 'r');
  let done = 0;
  while (done < size) done += fs.readSync(fd, buf, offset + done, size - done, null);
  return buf;
}

function randomBytes(size: number, cb?: (err: Error | null, buf: Buffer) => void): Buffer | undefined {
  if (!Number.isInteger(size) || size < 0 || size > 2 ** 31 - 1) throw new RangeError(`The value of "size" is out of range: ${size}`);
  const buf = Buffer.allocUnsafe(size);
  kernelRandomFill(buf);
  if (cb) {
    queueMicrotask(() => cb(null, buf));
    return undefined;
  }
  return buf;
}

function viewOf(buf: NodeJS.ArrayBufferView | ArrayBuffer): Uint8Array {
  return buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function randomFillSync<T extends NodeJS.ArrayBufferView | ArrayBuffer>(buf: T, offset = 0, size?: number): T {
  const v = viewOf(buf);
  kernelRandomFill(v, offset, size ?? v.byteLength - offset);
  return buf;
}

function randomFill(buf: NodeJS.ArrayBufferView, ...rest: unknown[]): void {
  const cb = rest.pop() as (err: Error | null, b: NodeJS.ArrayBufferView) => void;
  const [offset, size] = rest as [number | undefined, number | undefined];
  randomFillSync(buf, offset ?? 0, size);
  queueMicrotask(() => cb(null, buf));
}

function randomInt(a: number, b?: number | ((e: Error | null, n: number) => void), c?: (e: Error | null, n: number) => void): number | undefined {
  let min = 0;
  let max = a;
  let cb = c;
  if (typeof b === 'number') {
    min = a;
    max = b;
  } else if (typeof b === 'function') cb = b;
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max <= min || max - min > 2 ** 48) throw new RangeError('randomInt: invalid range');
  const range = max - min;
  const limit = 2 ** 48 - (2 ** 48 % range);
  const six = new Uint8Array(6);
  let x: number;
  do {
    kernelRandomFill(six);
    x = six.reduce((acc, byte) => acc * 256 + byte, 0);
  } while (x >= limit);
  const n = min + (x % range);
  if (cb) {
    queueMicrotask(() => cb!(null, n));
    return undefined;
  }
  return n;
}

function randomUUID(): string {
  const b = kernelRandomFill(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function getRandomValues<T extends ArrayBufferView | null>(arr: T): T {
  if (arr === null || !(ArrayBuffer.isView(arr)) || arr instanceof Float32Array || arr instanceof Float64Array) throw new TypeError('getRandomValues: an integer TypedArray is required');
  if (arr.byteLength > 65536) throw new RangeError('getRandomValues: at most 65536 bytes');
  kernelRandomFill(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
  return arr;
}

/** Patches the crypto module object in place, so require('crypto') anywhere sees kernel randomness. */
export function routeCryptoRandomToKernel(): void {
  const target = crypto as unknown as Record<string, unknown>;
  const patch: Record<string, unknown> = { randomBytes, pseudoRandomBytes: randomBytes, randomFillSync, randomFill, randomInt, randomUUID, getRandomValues };
  for (const [k, fn] of Object.entries(patch)) {
    try {
      Object.defineProperty(target, k, { value: fn, writable: true, configurable: true, enumerable: true });
    } catch {
      /* a frozen property: leave it */
    }
  }
  const web = crypto.webcrypto as unknown as Record<string, unknown> | undefined;
  if (web) {
    try {
      Object.defineProperty(web, 'getRandomValues', { value: getRandomValues, writable: true, configurable: true });
      Object.defineProperty(web, 'randomUUID', { value: randomUUID, writable: true, configurable: true });
    } catch {
      /* ignore */
    }
  }
}
