/**
 * A call's result on the wire. Every header, whatever the method, is capped at
 * LIMITS.maxFrameHeaderBytes: the host parses a header as soon as it arrives, so bulk data
 * (collected output, listings, eval values) must never sit in it. A result whose header would
 * pass the cap travels as JSON at the head of the frame's payload, its length in the header's
 * `result_bytes`, followed by the method's own payload bytes.
 */
import { encodeFrame } from './frame.js';
import { LIMITS } from './limits.js';

/** Encodes a successful reply, moving the result into the payload when the header would be too large. */
export function encodeResultFrame(id: number, result: unknown, payload?: Uint8Array, maxHeaderBytes: number = LIMITS.maxFrameHeaderBytes): Buffer {
  const resultJson = Buffer.from(JSON.stringify(result ?? null), 'utf8');
  // The inline header is `{"kind":"res","id":N,"ok":true,"result":` + result + `}`: under 64 bytes besides the result.
  if (resultJson.length + 64 <= maxHeaderBytes) return encodeFrame({ kind: 'res', id, ok: true, result: result ?? null }, payload);
  const own = payload ? Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) : Buffer.alloc(0);
  return encodeFrame({ kind: 'res', id, ok: true, result_bytes: resultJson.length }, Buffer.concat([resultJson, own]));
}

export type ReadResult = { ok: true; result: unknown; payload: Buffer } | { ok: false; reason: string };

/** The result of a successful reply and the method's own payload, wherever the result travelled. */
export function readResult(header: { result?: unknown; result_bytes?: number | undefined }, payload: Buffer): ReadResult {
  if (header.result_bytes === undefined) return { ok: true, result: header.result, payload };
  if (header.result !== undefined) return { ok: false, reason: 'reply carries a result both in its header and in its payload' };
  if (header.result_bytes > payload.length) return { ok: false, reason: `result_bytes ${header.result_bytes} exceeds the payload of ${payload.length} bytes` };
  try {
    return { ok: true, result: JSON.parse(payload.toString('utf8', 0, header.result_bytes)), payload: payload.subarray(header.result_bytes) };
  } catch (e) {
    return { ok: false, reason: `result in the payload is not JSON: ${(e as Error).message}` };
  }
}
