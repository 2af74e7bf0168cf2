/**
 * `owner/name[@version]` through a hub index: the original forkd's registry.json shape,
 * `{schema_version:1, packages:{"owner/name":{description, versions:{"latest"|"v1":{...}}}}}`,
 * from a file or an http(s) URL (--hub / FORKD_HUB). forkd's entries name an OCI reference
 * (`ref`, optionally pinned by `digest`); the original's pack-URL entries (`url` + `sha256`) are
 * recognised and refused with a clear error (download the pack and `forkd unpack` it).
 */
import { promises as fs } from 'node:fs';
import { z } from 'zod';
import { ForkdError, OCI_LIMITS } from '@forkd/protocol';
import { DIGEST, parseReference } from './reference.js';

const NAME = /^[a-z0-9][a-z0-9._-]{0,127}\/[a-z0-9][a-z0-9._-]{0,127}$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const VersionEntry = z.object({
  ref: z.string().min(1).max(1024).optional(),
  digest: z.string().regex(DIGEST).optional(),
  url: z.string().max(4096).optional(),
  sha256: z.string().optional(),
}).passthrough();

const HubIndex = z.object({
  schema_version: z.literal(1),
  packages: z.record(z.string().max(300), z.object({ description: z.string().max(4096).optional(), versions: z.record(z.string().max(128), VersionEntry) }).passthrough()),
}).passthrough();

/** `owner/name` or `owner/name@version`: a hub name (not a registry reference: no host part). */
export function isHubName(target: string): boolean {
  const [name, version, extra] = target.split('@');
  return extra === undefined && NAME.test(name!) && (version === undefined || VERSION.test(version));
}

async function readIndex(hub: string): Promise<Buffer> {
  if (/^https?:\/\//.test(hub)) {
    let r: Response;
    try {
      r = await fetch(hub, { signal: AbortSignal.timeout(60_000), redirect: 'follow' });
    } catch (e) {
      throw new ForkdError('FORKD_E_REGISTRY_ERROR', `hub index ${hub} unreachable: ${(e as Error).message}`);
    }
    if (r.status !== 200) {
      await r.body?.cancel();
      throw new ForkdError(r.status === 404 ? 'FORKD_E_REF_NOT_FOUND' : 'FORKD_E_REGISTRY_ERROR', `hub index ${hub} answered ${r.status}`);
    }
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of r.body as unknown as AsyncIterable<Uint8Array>) {
      n += c.length;
      if (n > OCI_LIMITS.maxHubIndexBytes) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `hub index ${hub} is larger than ${OCI_LIMITS.maxHubIndexBytes} bytes`);
      parts.push(Buffer.from(c));
    }
    return Buffer.concat(parts);
  }
  const st = await fs.stat(hub).catch(() => null);
  if (!st?.isFile()) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `hub index ${hub}: no such file (a path, or an http(s) URL)`);
  if (st.size > OCI_LIMITS.maxHubIndexBytes) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `hub index ${hub} is larger than ${OCI_LIMITS.maxHubIndexBytes} bytes`);
  return fs.readFile(hub);
}

/** Resolves owner/name[@version] (default version "latest") to an OCI reference, pinned when the index gives a digest. */
export async function resolveHubName(target: string, hub: string): Promise<{ ref: string; name: string; version: string }> {
  if (!isHubName(target)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${JSON.stringify(target.slice(0, 200))} is not owner/name[@version]`);
  const [name, version = 'latest'] = target.split('@') as [string, string?];
  let index: z.output<typeof HubIndex>;
  try {
    index = HubIndex.parse(JSON.parse((await readIndex(hub)).toString('utf8')));
  } catch (e) {
    if (e instanceof ForkdError) throw e;
    throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `hub index ${hub} is not a registry.json (schema_version 1): ${(e as Error).message.slice(0, 300)}`);
  }
  const pkg = Object.hasOwn(index.packages, name) ? index.packages[name] : undefined;
  if (!pkg) throw new ForkdError('FORKD_E_REF_NOT_FOUND', `hub index ${hub} has no package ${name}`, { name });
  const entry = Object.hasOwn(pkg.versions, version) ? pkg.versions[version] : undefined;
  if (!entry) throw new ForkdError('FORKD_E_REF_NOT_FOUND', `hub index ${hub}: ${name} has no version ${version} (has ${Object.keys(pkg.versions).slice(0, 20).join(', ')})`, { name, version });
  if (!entry.ref) {
    if (entry.url) throw new ForkdError('FORKD_E_NOT_IMPLEMENTED', `${name}@${version} is a pack URL entry (the original forkd's); download ${entry.url.slice(0, 300)} and run forkd unpack on it`, { name, version });
    throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `hub index ${hub}: ${name}@${version} names no ref`, { name, version });
  }
  const ref = parseReference(entry.ref);
  if (entry.digest && ref.reference.startsWith('sha256:') && ref.reference !== entry.digest) throw new ForkdError('FORKD_E_ARTIFACT_INVALID', `hub index ${hub}: ${name}@${version}'s ref and digest disagree`);
  return { ref: entry.digest ? `${ref.registry}/${ref.repository}@${entry.digest}` : entry.ref, name, version };
}
