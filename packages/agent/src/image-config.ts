/**
 * The image's own defaults for commands (an OCI image's Env, WorkingDir and User), from the file
 * the runtime init names in FORKD_IMAGE_CONFIG. Debian images have none. Read once: the file is
 * part of the image and never changes while the agent runs.
 */
import fs from 'node:fs';

export interface ImageDefaults {
  env: Record<string, string>;
  workdir: string | undefined;
  /** Commands run as this uid/gid (through the runtime's forkd-setuid), with its HOME and USER. */
  user: { uid: number; gid: number; env: Record<string, string> } | undefined;
}

const NONE: ImageDefaults = { env: {}, workdir: undefined, user: undefined };
let cached: ImageDefaults | null = null;

function lookup(file: string, key: string): string[] | null {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === key || f[2] === key) return f;
  }
  return null;
}

/** Docker's User: name, uid, name:group or uid:gid, resolved in the image's /etc/passwd and /etc/group. */
export function resolveUser(spec: string, etc = '/etc'): ImageDefaults['user'] {
  const [u = '', g] = spec.split(':');
  const pw = lookup(`${etc}/passwd`, u);
  const uid = pw ? Number(pw[2]) : /^\d+$/.test(u) ? Number(u) : NaN;
  let gid = pw ? Number(pw[3]) : uid;
  if (g !== undefined) {
    const gr = lookup(`${etc}/group`, g);
    gid = gr ? Number(gr[2]) : /^\d+$/.test(g) ? Number(g) : NaN;
  }
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`the image's User ${JSON.stringify(spec)} is not in its /etc/passwd or /etc/group`);
  if (uid === 0) return undefined;
  const name = pw?.[0] ?? String(uid);
  return { uid, gid, env: { HOME: pw?.[5] || '/', USER: name, LOGNAME: name } };
}

export function parseImageDefaults(text: string, etc = '/etc'): ImageDefaults {
  const raw = JSON.parse(text) as { env?: unknown; workdir?: unknown; user?: unknown };
  const env: Record<string, string> = {};
  if (raw.env && typeof raw.env === 'object') {
    for (const [k, v] of Object.entries(raw.env as Record<string, unknown>)) if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && typeof v === 'string') env[k] = v;
  }
  const workdir = typeof raw.workdir === 'string' && raw.workdir.startsWith('/') ? raw.workdir : undefined;
  const user = typeof raw.user === 'string' && raw.user !== '' ? resolveUser(raw.user, etc) : undefined;
  return { env, workdir, user };
}

export function imageDefaults(): ImageDefaults {
  if (cached) return cached;
  const file = process.env.FORKD_IMAGE_CONFIG;
  try {
    cached = file ? parseImageDefaults(fs.readFileSync(file, 'utf8')) : NONE;
  } catch (e) {
    process.stderr.write(`forkd-agent: image config ignored: ${(e as Error).message}\n`);
    cached = NONE;
  }
  return cached;
}

/** argv as the image's User when it has one (and the runtime's setuid helper), else unchanged. */
export function asImageUser(file: string, args: string[]): [string, string[], Record<string, string>] {
  const d = imageDefaults();
  const helper = process.env.FORKD_SETUID;
  if (!d.user || !helper) return [file, args, {}];
  return [helper, [String(d.user.uid), String(d.user.gid), file, ...args], d.user.env];
}
