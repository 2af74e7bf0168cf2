/**
 * Registry references: `host[:port]/repo/path[:tag|@sha256:hex]`, the distribution spec's grammar
 * (lowercase path components, tags of up to 128 characters). Parsed strictly: a reference names a
 * URL, so nothing loose gets near one.
 */
import { ForkdError } from '@forkd/protocol';

export interface OciReference {
  /** host[:port] as typed (docker.io is normalised to its API host). */
  registry: string;
  repository: string;
  /** A tag or a digest (sha256:...); "latest" when the reference names neither. */
  reference: string;
  /** The form it was given in, for messages and provenance. */
  text: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
export const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](?::[0-9]{1,5})?$/;

export function parseReference(text: string): OciReference {
  const bad = (why: string): never => {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid registry reference ${JSON.stringify(text.slice(0, 300))}: ${why}`, { reference: text.slice(0, 300) });
  };
  if (typeof text !== 'string' || text.length === 0 || text.length > 1024) bad('empty or longer than 1024 characters');
  let rest = text.replace(/^(?:oci|docker):\/\//, '');
  let reference = 'latest';
  const at = rest.indexOf('@');
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(reference)) bad('a digest must be sha256:<64 hex>');
  } else {
    const slash = rest.lastIndexOf('/');
    const colon = rest.lastIndexOf(':');
    if (colon > slash) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
      if (!TAG.test(reference)) bad('a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}');
    }
  }
  const parts = rest.split('/');
  const first = parts[0] ?? '';
  let registry: string;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    registry = first;
    parts.shift();
  } else {
    registry = 'registry-1.docker.io';
    if (parts.length === 1) parts.unshift('library');
  }
  if (registry === 'docker.io' || registry === 'index.docker.io') registry = 'registry-1.docker.io';
  if (!HOST.test(registry)) bad(`bad registry host ${JSON.stringify(registry)}`);
  if (parts.length === 0 || parts.some((p) => !PATH_COMPONENT.test(p))) bad('repository path components are lowercase [a-z0-9] separated by . _ __ or -');
  const repository = parts.join('/');
  if (repository.length > 255) bad('repository longer than 255 characters');
  return { registry, repository, reference, text };
}

export function isDigest(ref: string): boolean {
  return DIGEST.test(ref);
}

/** Loopback registries speak plain HTTP by default (the distribution project's own convention). */
export function defaultScheme(registry: string): 'http' | 'https' {
  const host = registry.replace(/:[0-9]+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '127.0.0.1' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ? 'http' : 'https';
}
