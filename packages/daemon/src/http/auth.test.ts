import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { AuthFailures, checkTokenFileMode, TokenSet } from './auth.js';

const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof ForkdError && e.code === c && (!re || re.test(e.message));
const TOK = 'k3J9xQ2mP7vL4nR8';

test('token lines: a bare token is an admin named by its token id; named lines carry identity and scope', () => {
  const set = TokenSet.fromLines([TOK, `${TOK}Z alice user`, `${TOK}Y audit-1 read-only`]);
  const bare = set.check(`Bearer ${TOK}`);
  assert.equal(bare.scope, 'admin');
  assert.match(bare.identity, /^tok-[0-9a-f]{8}$/);
  assert.deepEqual(set.check(`Bearer ${TOK}Z`), { identity: 'alice', scope: 'user' });
  assert.deepEqual(set.check(`Bearer ${TOK}Y`), { identity: 'audit-1', scope: 'read-only' });
  assert.throws(() => set.check(`Bearer ${TOK}X`), code('FORKD_E_UNAUTHORIZED'));
  assert.deepEqual(TokenSet.none().check(undefined), { identity: 'local', scope: 'admin' });
});

test('token lines: weak tokens, bad identities and scopes, duplicates are refused at start', () => {
  for (const [lines, why] of [
    [['short'], /shorter than 16 bytes/],
    [['abababababababababab'], /fewer than 8 distinct characters/],
    [[`${TOK} Alice user`], /identity "Alice" must match/],
    [[`${TOK} alice root`], /scope "root" must be one of admin, user, read-only/],
    [[`${TOK} alice`], /expected "<token>" or "<token> <identity> <scope>"/],
    [[TOK, `${TOK} bob user`], /the same token appears twice/],
  ] as const) {
    assert.throws(() => TokenSet.fromLines([...lines]), code('FORKD_E_INVALID_ARGUMENT', why), String(lines));
  }
});

test('a token file others may read or write, or owned by another user, is refused', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-auth-'));
  try {
    const f = path.join(dir, 'tokens');
    await fs.writeFile(f, `${TOK}\n`, { mode: 0o600 });
    await checkTokenFileMode(f);
    for (const mode of [0o640, 0o604, 0o620, 0o666]) {
      await fs.chmod(f, mode);
      await assert.rejects(checkTokenFileMode(f), code('FORKD_E_TOKEN_FILE_INSECURE', /chmod 600/), mode.toString(8));
    }
    await fs.chmod(f, 0o600);
    await assert.rejects(checkTokenFileMode(f, (process.getuid?.() ?? 0) + 1), code('FORKD_E_TOKEN_FILE_INSECURE', /owned by uid/));
    await assert.rejects(TokenSet.load(path.join(dir, 'missing')), code('FORKD_E_INVALID_ARGUMENT', /cannot read token file/));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('failed authentications: a peer past the limit is refused until its window ends; other peers are not', () => {
  const f = new AuthFailures({ perWindow: 3, windowMs: 1000 });
  for (let i = 0; i < 3; i++) {
    f.assertAllowed('10.0.0.1', 100);
    f.failed('10.0.0.1', 100 + i);
  }
  assert.throws(() => f.assertAllowed('10.0.0.1', 500), code('FORKD_E_RATE_LIMITED', /retry in 1 s/));
  f.assertAllowed('10.0.0.2', 500);
  f.assertAllowed('10.0.0.1', 1100);
});
