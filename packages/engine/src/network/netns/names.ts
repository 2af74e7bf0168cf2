/** Names of what a child's network is made of: findable (cleanup), unique per run dir, within Linux's limits. */
import crypto from 'node:crypto';
import { runtimeDir } from '../../runtime/dir.js';

/** Inside every child's namespace the same names: children are identical inside. */
export const CHILD_TAP = 'tap0';
export const CHILD_VETH = 'veth0';
/** Every uplink-side veth starts so (nft matches "fkd*"): 3 + 12 hex = 15, Linux's IFNAMSIZ - 1. */
export const UPLINK_VETH_PREFIX = 'fkd';

/** Namespace prefix of the VMs of one run dir: two run dirs (tests, daemons) never judge each other's. */
export function netnsPrefix(runDir = runtimeDir()): string {
  return `fk${crypto.createHash('sha256').update(runDir).digest('hex').slice(0, 6)}-`;
}

export function childNetnsName(vmId: string, runDir?: string): string {
  return `${netnsPrefix(runDir)}${vmId}`;
}

/** The VM id a namespace of this run dir belongs to, or null when it is not one of ours. */
export function vmIdOfNetns(name: string, runDir?: string): string | null {
  const p = netnsPrefix(runDir);
  if (!name.startsWith(p)) return null;
  const id = name.slice(p.length);
  return /^[0-9a-f]{16}$/.test(id) ? id : null;
}

export function uplinkVethName(vmId: string): string {
  return `${UPLINK_VETH_PREFIX}${vmId.slice(0, 12)}`;
}
