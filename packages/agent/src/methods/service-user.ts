/**
 * Running a service as another guest account. The agent is root; a service such as postgres
 * refuses to run as root, so it is started through util-linux's setpriv (an Essential package in
 * Debian, so in every image) with the account's uid, gid and groups, HOME and USER.
 */
import fs from 'node:fs';
import { ForkdError } from '@forkd/protocol';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  env: Record<string, string>;
}

/** The account from /etc/passwd; a clear error when there is none (no NSS lookups: the guest has files only). */
export function accountOf(name: string, passwdFile = '/etc/passwd'): Account {
  let text = '';
  try {
    text = fs.readFileSync(passwdFile, 'utf8');
  } catch (e) {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `cannot read ${passwdFile}: ${(e as Error).message}`);
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] !== name || f.length < 7) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) break;
    const home = f[5] || '/';
    return { name, uid, gid, env: { HOME: home, USER: name, LOGNAME: name } };
  }
  throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `no user ${JSON.stringify(name)} in the guest (${passwdFile})`);
}

/** argv run as the account (unchanged for root/no account). */
export function asUser(account: Account | null, argv: string[]): string[] {
  if (!account || account.uid === 0) return argv;
  return ['setpriv', `--reuid=${account.uid}`, `--regid=${account.gid}`, '--init-groups', '--', ...argv];
}
