/**
 * Bearer tokens from a token file, each naming an identity and a scope. One entry per line
 * (# comments allowed):
 *
 *   <token>                        an admin, its identity named by the token id (the old format)
 *   <token> <identity> <scope>     scope: admin | user | read-only
 *
 * Tokens are at least 16 bytes with at least 8 distinct characters and not a placeholder; the file
 * must be owned by the daemon's user and closed to group and others. Compared in constant time
 * (hashes of equal length, every token checked). Callers are known by identity, never by token.
 */
import { promises as fs } from 'node:fs';
import crypto from 'node:crypto';
import { AUTH_LIMITS, ForkdError, IDENTITY_PATTERN, LOCAL_IDENTITY, SCOPES, type Scope } from '@forkd/protocol';

export const MIN_TOKEN_BYTES = AUTH_LIMITS.minTokenBytes;
const PLACEHOLDER = /^(REPLACE_ME|CHANGE_ME|CHANGEME|TODO|XXX)/i;

/** Who is calling: the identity that owns what it makes, and what its token may do. */
export interface Caller {
  identity: string;
  scope: Scope;
}

/** The caller on the Unix socket without a token file (the socket's 0600 mode is the credential). */
export const LOCAL_ADMIN: Caller = { identity: LOCAL_IDENTITY, scope: 'admin' };

interface Entry extends Caller {
  digest: Buffer;
}

const digest = (s: string): Buffer => crypto.createHash('sha256').update(s, 'utf8').digest();
const tokenId = (t: string): string => `tok-${digest(t).toString('hex').slice(0, 8)}`;
const bad = (msg: string): ForkdError => new ForkdError('FORKD_E_INVALID_ARGUMENT', `${msg}: refusing to start`);

function checkToken(t: string, where: string): void {
  if (Buffer.byteLength(t) < MIN_TOKEN_BYTES) throw bad(`${where}: a token is shorter than ${MIN_TOKEN_BYTES} bytes`);
  if (PLACEHOLDER.test(t)) throw bad(`${where}: a token is still a placeholder (REPLACE_ME/CHANGE_ME...)`);
  if (new Set(t).size < AUTH_LIMITS.minTokenDistinctChars) throw bad(`${where}: a token has fewer than ${AUTH_LIMITS.minTokenDistinctChars} distinct characters (too weak; use e.g. \`openssl rand -hex 24\`)`);
}

/** One token file line (already trimmed, not a comment) as an entry. */
export function parseTokenLine(line: string, where: string): Entry {
  const fields = line.split(/\s+/);
  if (fields.length !== 1 && fields.length !== 3) throw bad(`${where}: expected "<token>" or "<token> <identity> <scope>", got ${fields.length} fields`);
  const [token, identity, scope] = fields as [string, string?, string?];
  checkToken(token, where);
  if (identity === undefined) return { identity: tokenId(token), scope: 'admin', digest: digest(token) };
  if (!IDENTITY_PATTERN.test(identity)) throw bad(`${where}: identity ${JSON.stringify(identity.slice(0, 60))} must match ${IDENTITY_PATTERN.source}`);
  if (!(SCOPES as readonly string[]).includes(scope!)) throw bad(`${where}: scope ${JSON.stringify(scope!.slice(0, 30))} must be one of ${SCOPES.join(', ')}`);
  return { identity, scope: scope as Scope, digest: digest(token) };
}

/** Refuses a token file others could read or change (A5). */
export async function checkTokenFileMode(file: string, uid = process.getuid?.() ?? -1): Promise<void> {
  const st = await fs.stat(file);
  const loose = st.mode & 0o077;
  if (loose !== 0) {
    throw new ForkdError('FORKD_E_TOKEN_FILE_INSECURE', `token file ${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: group or others may read or write it; run \`chmod 600 ${file}\`: refusing to start`, { file });
  }
  if (uid >= 0 && st.uid !== uid) {
    throw new ForkdError('FORKD_E_TOKEN_FILE_INSECURE', `token file ${file} is owned by uid ${st.uid}, not by the daemon's user (uid ${uid}): refusing to start`, { file });
  }
}

export class TokenSet {
  private constructor(private readonly entries: Entry[]) {}

  static none(): TokenSet {
    return new TokenSet([]);
  }

  /** Entries from token file lines (see the module comment). */
  static fromLines(lines: string[], source = 'token'): TokenSet {
    const entries = lines.map((l, i) => parseTokenLine(l, `${source} entry ${i + 1}`));
    const seen = new Set<string>();
    for (const e of entries) {
      const key = e.digest.toString('hex');
      if (seen.has(key)) throw bad(`${source}: the same token appears twice`);
      seen.add(key);
    }
    return new TokenSet(entries);
  }

  static async load(file: string): Promise<TokenSet> {
    let text: string;
    try {
      await checkTokenFileMode(file);
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      if (e instanceof ForkdError) throw e;
      throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `cannot read token file ${file}: ${(e as Error).message}`);
    }
    const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    if (lines.length === 0) throw bad(`token file ${file} holds no token`);
    return TokenSet.fromLines(lines, `token file ${file}`);
  }

  get required(): boolean {
    return this.entries.length > 0;
  }

  /** The caller, or a ForkdError (401). */
  check(authorization: string | undefined): Caller {
    if (!this.required) return LOCAL_ADMIN;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) throw new ForkdError('FORKD_E_UNAUTHORIZED', 'missing bearer token');
    const d = digest(m[1]!);
    let found: Entry | null = null;
    for (const e of this.entries) if (crypto.timingSafeEqual(e.digest, d) && found === null) found = e;
    if (found === null) throw new ForkdError('FORKD_E_UNAUTHORIZED', 'invalid bearer token');
    return { identity: found.identity, scope: found.scope };
  }
}

/**
 * Failed authentications per peer address, in fixed windows. A peer past the limit is refused
 * (429) before its token is looked at, so guessing stops paying until the window ends.
 */
export class AuthFailures {
  private readonly peers = new Map<string, { start: number; count: number }>();

  constructor(private readonly limit: { perWindow: number; windowMs: number } = AUTH_LIMITS.failures) {}

  /** Throws FORKD_E_RATE_LIMITED while this peer is locked out. */
  assertAllowed(peer: string, now = Date.now()): void {
    const p = this.peers.get(peer);
    if (!p || now - p.start >= this.limit.windowMs || p.count < this.limit.perWindow) return;
    const retry = Math.ceil((p.start + this.limit.windowMs - now) / 1000);
    throw new ForkdError('FORKD_E_RATE_LIMITED', `too many failed authentications from this address: retry in ${retry} s`, { retry_after_secs: retry });
  }

  failed(peer: string, now = Date.now()): void {
    const p = this.peers.get(peer);
    if (!p || now - p.start >= this.limit.windowMs) this.peers.set(peer, { start: now, count: 1 });
    else p.count++;
    // Bounded memory under a spray from many addresses: old windows are dropped.
    if (this.peers.size > 10_000) for (const [k, v] of this.peers) if (now - v.start >= this.limit.windowMs) this.peers.delete(k);
  }
}
