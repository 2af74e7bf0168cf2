/**
 * run_code's images on the agent wire: the agent packs every result's PNG and JPEG bytes into the
 * frame payload (packRichImages), the host takes them back out (unpackRichImages), both checking
 * that the byte counts and the payload agree, so a hostile guest cannot make the host read past
 * a result's own bytes or mix up results.
 */
import { ForkdError } from './errors.js';
import { LIMITS } from './limits.js';
import type { RichResultWireT } from './agent-api.js';

export interface RichImages {
  png?: Buffer;
  jpeg?: Buffer;
}

/** The PNG signature; a result claiming image/png must start with it. */
export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** JPEG files start with SOI (FF D8) and a marker. */
export const JPEG_SIGNATURE = Buffer.from([0xff, 0xd8, 0xff]);

/** Agent side: the results with byte counts set, and the payload holding the images in order. */
export function packRichImages(items: Array<{ result: Omit<RichResultWireT, 'png_bytes' | 'jpeg_bytes'>; images: RichImages }>): { results: RichResultWireT[]; payload: Buffer } {
  const parts: Buffer[] = [];
  const results = items.map(({ result, images }) => {
    const r: RichResultWireT = { ...result };
    if (images.png) {
      r.png_bytes = images.png.length;
      parts.push(images.png);
    }
    if (images.jpeg) {
      r.jpeg_bytes = images.jpeg.length;
      parts.push(images.jpeg);
    }
    return r;
  });
  return { results, payload: Buffer.concat(parts) };
}

/** Host side: each result's images, cut from the payload; any disagreement is a protocol error. */
export function unpackRichImages(results: RichResultWireT[], payload: Buffer): RichImages[] {
  let offset = 0;
  let total = 0;
  const take = (n: number | undefined, what: string, signature: Buffer): Buffer | undefined => {
    if (n === undefined) return undefined;
    if (offset + n > payload.length) throw new ForkdError('FORKD_E_AGENT_PROTOCOL', `run_code: ${what} claims ${n} bytes but the payload has ${payload.length - offset} left`);
    const bytes = payload.subarray(offset, offset + n);
    offset += n;
    total += n;
    if (!bytes.subarray(0, signature.length).equals(signature)) throw new ForkdError('FORKD_E_AGENT_PROTOCOL', `run_code: ${what} does not start with its file signature`);
    return bytes;
  };
  const out = results.map((r, i) => {
    const png = take(r.png_bytes, `result ${i} png`, PNG_SIGNATURE);
    const jpeg = take(r.jpeg_bytes, `result ${i} jpeg`, JPEG_SIGNATURE);
    return { ...(png ? { png } : {}), ...(jpeg ? { jpeg } : {}) };
  });
  if (offset !== payload.length) throw new ForkdError('FORKD_E_AGENT_PROTOCOL', `run_code: ${payload.length - offset} payload bytes belong to no result`);
  if (total > LIMITS.richResults.maxTotalBytes) throw new ForkdError('FORKD_E_AGENT_PROTOCOL', `run_code: ${total} image bytes exceed the cap of ${LIMITS.richResults.maxTotalBytes}`);
  return out;
}
