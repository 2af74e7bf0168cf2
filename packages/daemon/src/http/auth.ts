/**
 * Bearer tokens from a token file: one token per line (# comments allowed), each at least 16
 * bytes and not a placeholder. Compared in constant time (hashes of equal length, every token
 * checked). Callers are identified by a token id (a hash prefix), never by the token.
 */
import { promises as fs } from 'node:fs';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';

export const MIN_TOKEN_BYTES = 16;
const PLACEHOLDER = /^(REPLACE_ME|CHANGE_ME|CHANGEME|TODO|XXX)/i;

interface Entry {
  id: string;
  digest: Buffer;
}

const digest = (s: string): Buffer => crypto.createHash('sha256').update(s, 'utf8').digest();

export class TokenSet {
  private constructor(private readonly entries: Entry[]) {}

  static none(): TokenSet {
    return new TokenSet([]);
  }

  static fromTokens(tokens: string[]): TokenSet {
    return new TokenSet(tokens.map((t) => {
      if (Buffer.byteLength(t) < MIN_TOKEN_BYTES) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `a token is shorter than ${MIN_TOKEN_BYTES} bytes: refusing to start`);
      if (PLACEHOLDER.test(t)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'a token is still a placeholder (REPLACE_ME/CHANGE_ME...): refusing to start');
      if (/\s/.test(t)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'a token contains whitespace: refusing to start');
      return { id: `tok-${digest(t).toString('hex').slice(0, 8)}`, digest: digest(t) };
    }));
  }

  static async load(file: string): Promise<TokenSet> {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `cannot read token file ${file}: ${(e as Error).message}`);
    }
    const tokens = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    if (tokens.length === 0) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `token file ${file} holds no token: refusing to start`);
    return TokenSet.fromTokens(tokens);
  }

  get required(): boolean {
    return this.entries.length > 0;
  }

  /** The caller's token id, or a ForkdError (401). */
  check(authorization: string | undefined): string {
    if (!this.required) return 'local';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) throw new ForkdError('FORKD_E_UNAUTHORIZED', 'missing bearer token');
    const d = digest(m[1]!);
    let found: string | null = null;
    for (const e of this.entries) if (crypto.timingSafeEqual(e.digest, d) && found === null) found = e.id;
    if (found === null) throw new ForkdError('FORKD_E_UNAUTHORIZED', 'invalid bearer token');
    return found;
  }
}
