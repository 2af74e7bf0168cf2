/**
 * `--vary NAME=V1,V2,...` (repeatable): one value per child, as REST's vary {NAME: [V1, V2, ...]}.
 * A value that reads as a JSON number or boolean is sent as one (0.5, true); anything else as a
 * string. The daemon (protocol/src/vary.ts) judges names, counts and sizes.
 */
import { ForkdError, type VaryValueT } from '@forkd/protocol';

export function parseVaryFlags(flags: string[] | undefined): Record<string, VaryValueT[]> | undefined {
  if (!flags || flags.length === 0) return undefined;
  const out: Record<string, VaryValueT[]> = {};
  for (const f of flags) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--vary takes NAME=V1,V2,... (one value per child); got ${JSON.stringify(f)}`);
    const name = f.slice(0, eq);
    if (Object.prototype.hasOwnProperty.call(out, name)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--vary ${name} given twice`);
    out[name] = f.slice(eq + 1).split(',').map(scalar);
  }
  return out;
}

/** `--seeds 1,2,3`: each child's RNG seed. */
export function parseSeeds(flag: string | undefined): number[] | undefined {
  if (flag === undefined) return undefined;
  return flag.split(',').map((s) => {
    if (!/^\d+$/.test(s.trim())) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--seeds takes integers separated by commas; got ${JSON.stringify(s)}`);
    return Number(s);
  });
}

function scalar(v: string): VaryValueT {
  if (v === 'true' || v === 'false') return v === 'true';
  if (/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v.trim()) && Number.isFinite(Number(v))) return Number(v);
  return v;
}
