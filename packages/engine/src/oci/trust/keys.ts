/**
 * Signing keys: ed25519 (node:crypto). A private key file is PKCS#8 PEM, written 0600 and refused
 * when others can read it; a public key is SPKI PEM. A key's id is the sha256 of its SPKI bytes, so
 * it names the key itself, not a file.
 */
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';

export interface KeyFiles {
  privateKeyFile: string;
  publicKeyFile: string;
  keyId: string;
}

export function keyIdOf(key: crypto.KeyObject): string {
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  return `sha256:${crypto.createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/** Writes a new key pair: FILE (private, 0600, never overwritten) and FILE.pub. */
export async function generateKeyFiles(privateKeyFile: string): Promise<KeyFiles> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const publicKeyFile = `${privateKeyFile}.pub`;
  const priv = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const pub = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  try {
    // wx: an existing key is never replaced (losing a signing key is not undoable).
    await fs.writeFile(privateKeyFile, priv, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ForkdError('FORKD_E_CONFLICT', `${privateKeyFile} exists: not overwriting a key`, { file: privateKeyFile });
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `cannot write ${privateKeyFile}: ${(e as Error).message}`, { file: privateKeyFile });
  }
  await fs.chmod(privateKeyFile, 0o600);
  await fs.writeFile(publicKeyFile, pub, { mode: 0o644 });
  return { privateKeyFile, publicKeyFile, keyId: keyIdOf(publicKey) };
}

function parseKey(text: string, kind: 'private' | 'public', where: string): crypto.KeyObject {
  // createPublicKey would derive a public key from a private one: a private key where a public one
  // belongs (a policy file) is a leak to point out, not to accept.
  if (kind === 'public' && text.includes('PRIVATE KEY')) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${where} is a private key; name the public key (.pub) instead`);
  let key: crypto.KeyObject;
  try {
    key = kind === 'private' ? crypto.createPrivateKey(text) : crypto.createPublicKey(text);
  } catch (e) {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${where} is not a ${kind} key in PEM: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${where} is a ${key.asymmetricKeyType ?? 'unknown'} key; forkd signs with ed25519`);
  return key;
}

/** A private key file; refused when group or others may read it (a key others read is no key). */
export async function loadPrivateKey(file: string): Promise<crypto.KeyObject> {
  let st;
  try {
    st = await fs.stat(file);
  } catch {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `no key file ${file}`, { file });
  }
  if (!st.isFile() || st.size > 64 * 1024) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${file} is not a key file`, { file });
  if (st.mode & 0o077) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`, { file });
  return parseKey(await fs.readFile(file, 'utf8'), 'private', file);
}

/** A public key: PEM text inline, or the path of a PEM file. */
export async function loadPublicKey(spec: string, where: string): Promise<crypto.KeyObject> {
  if (spec.includes('-----BEGIN')) return parseKey(spec, 'public', where);
  let text: string;
  try {
    text = await fs.readFile(spec, 'utf8');
  } catch {
    throw new ForkdError('FORKD_E_TRUST_POLICY_INVALID', `${where}: cannot read public key ${spec}`, { file: spec });
  }
  return parseKey(text, 'public', spec);
}
