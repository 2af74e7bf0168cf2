/**
 * A child's network namespace, created on demand: inside it the tap QEMU opens (the guest's
 * gateway address on it) and, for a child with `network`, a veth pair to the uplink namespace with
 * the child's unique address and a source NAT that makes the guest's fixed address leave as it.
 * A child without `network` gets the namespace and tap only: its device answers nothing beyond
 * the namespace, yet the host can still reach its ports (ports/).
 */
import { promises as fs } from 'node:fs';
import { ForkdError, GUEST_NETWORK } from '@forkd/protocol';
import type { ChildNetwork } from '../types.js';
import type { AddressPool, PoolSlot } from '../pool/pool.js';
import { denyAllRuleset } from '../egress-hook.js';
import { ip, netnsPath, requireNetworkTools, runScript } from '../tools.js';
import { CHILD_TAP, CHILD_VETH, childNetnsName, uplinkVethName } from './names.js';

/** Where a networked child's veth leads and which addresses it takes. */
export interface Uplink {
  /** null: the host's root namespace. */
  netns: string | null;
  pool: AddressPool;
}

export const NAT_TABLE = 'forkd_nat';

/**
 * Prepares a child's egress once its plumbing is known (the proxy learns the policy) and returns the
 * nft ruleset to load with the namespace (network/egress/service.ts prepareEgress), before QEMU runs.
 */
export type EgressSetter = (net: ChildNetwork) => Promise<string>;

/**
 * The namespace for VM vmId; with an uplink, also the veth, addresses, forwarding, NAT and the
 * egress (`egress`, default: deny all). tapOwner: the uid that may open the tap (a jailed QEMU's).
 * One process from Node does it all (setUpScript): each spawn from a large Node process costs
 * milliseconds, and `nft` starting up costs tens of them (figures: bench/README.md#isolation).
 */
export async function createChildNetwork(vmId: string, opts: { uplink?: Uplink; tapOwner?: number; egress?: EgressSetter }): Promise<ChildNetwork> {
  // Both go into a shell script: only the shapes this module makes are accepted.
  if (!/^[0-9a-f]{16}$/.test(vmId)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `not a VM id: ${JSON.stringify(vmId)}`);
  if (opts.uplink?.netns != null && !/^[A-Za-z0-9_.-]{1,64}$/.test(opts.uplink.netns)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid uplink namespace name ${JSON.stringify(opts.uplink.netns)}`);
  if (opts.tapOwner !== undefined && !(Number.isInteger(opts.tapOwner) && opts.tapOwner >= 0)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `bad tap owner uid ${opts.tapOwner}`);
  await requireNetworkTools();
  const netns = childNetnsName(vmId);
  const slot: PoolSlot | null = opts.uplink ? opts.uplink.pool.allocate() : null;
  const net: ChildNetwork = {
    netns,
    netnsPath: netnsPath(netns),
    guestAddr: GUEST_NETWORK.guestAddr,
    gatewayAddr: GUEST_NETWORK.gatewayAddr,
    tap: CHILD_TAP,
    vethChild: slot ? CHILD_VETH : '',
    vethUplink: slot ? uplinkVethName(vmId) : '',
    hostAddr: slot?.hostAddr ?? '',
    uplinkNetns: opts.uplink?.netns ?? null,
  };
  let ruleset: string;
  try {
    ruleset = await (opts.egress ?? denyAllRuleset)(net);
  } catch (e) {
    if (slot) opts.uplink!.pool.release(slot.index);
    throw e;
  }
  try {
    await runScript(setUpScript(net, slot, opts.tapOwner), `${slot ? natRuleset(net) : ''}${ruleset}`);
    return net;
  } catch (e) {
    if (e instanceof ForkdError && e.details?.exit_code === NETNS_ADD_FAILED) {
      // Not made by us (it may be another VM's): nothing to remove but the address.
      if (slot) opts.uplink!.pool.release(slot.index);
      throw new ForkdError(e.code, `creating the network namespace ${netns} of VM ${vmId} failed: ${String(e.details.stderr_tail ?? '').trim()}`, e.details, { cause: e });
    }
    await destroyChildNetwork(net, opts.uplink?.pool).catch(() => undefined);
    throw e instanceof ForkdError ? new ForkdError(e.code, `setting up the network of VM ${vmId}: ${e.message}`, e.details, { cause: e }) : e;
  }
}

/** The guest's fixed address leaves the child's namespace as the child's own (its veth's). */
function natRuleset(net: ChildNetwork): string {
  return `table ip ${NAT_TABLE} {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${CHILD_VETH}" ip saddr ${GUEST_NETWORK.guestAddr} snat to ${net.hostAddr}
  }
}
`;
}

/** The set-up script's exit code when the namespace itself could not be made (e.g. it exists). */
const NETNS_ADD_FAILED = 97;

/**
 * The shell script that makes a child's namespace: the namespace, then its inside (lo, tap and, with
 * an uplink, the veth made there with its peer sent to the uplink, address and default route) in one
 * `ip -batch`, the uplink end's address in another, then inside the namespace forwarding on (uplinked
 * only) and the ruleset on stdin (NAT + egress) in one nft transaction. Every word interpolated is a
 * name or address this module made (hex ids, pool addresses, a checked uid); `set -e` stops at the
 * first failure, whose stderr names it.
 */
function setUpScript(net: ChildNetwork, slot: PoolSlot | null, tapOwner: number | undefined): string {
  const inside = [
    'link set lo up',
    `tuntap add dev ${CHILD_TAP} mode tap${tapOwner !== undefined ? ` user ${tapOwner}` : ''}`,
    `addr add ${GUEST_NETWORK.gatewayAddr}/${GUEST_NETWORK.prefixLen} dev ${CHILD_TAP}`,
    `link set ${CHILD_TAP} up`,
  ];
  const lines = ['set -e', `ip netns add ${net.netns} || exit ${NETNS_ADD_FAILED}`];
  if (slot) {
    // Made inside the child's namespace, its peer sent straight to the uplink's (pid 1's = root).
    inside.push(
      `link add ${CHILD_VETH} type veth peer name ${net.vethUplink} netns ${net.uplinkNetns ?? '1'}`,
      `addr add ${slot.hostAddr}/31 dev ${CHILD_VETH}`,
      `link set ${CHILD_VETH} up`,
      `route add default via ${slot.uplinkAddr} dev ${CHILD_VETH}`,
    );
  }
  lines.push(...batch(inside, net.netns));
  if (slot) lines.push(...batch([`addr add ${slot.uplinkAddr}/31 dev ${net.vethUplink}`, `link set ${net.vethUplink} up`], net.uplinkNetns));
  // A child without uplink forwards nothing: nft alone, one program fewer (each is tens of ms on a loaded host).
  lines.push(slot ? `exec nsenter --net=${net.netnsPath} -- sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward && exec nft -f -'` : `exec nsenter --net=${net.netnsPath} -- nft -f -`);
  return `${lines.join('\n')}\n`;
}

function batch(lines: string[], netns: string | null): string[] {
  return [`ip${netns ? ` -n ${netns}` : ''} -batch - <<'FORKD_EOF'`, ...lines, 'FORKD_EOF'];
}

/**
 * Removes a child's network: the uplink end of its veth first (the pair goes with it, and with it
 * the uplink's route, at once: the pool pair may be reused), then the namespace with its tap and
 * rules. Call after QEMU has exited. Idempotent.
 */
export async function destroyChildNetwork(net: ChildNetwork, pool?: AddressPool): Promise<void> {
  if (net.vethUplink) {
    // One process for both (a quiet veth removal, then the namespace's); judged as deleteNetns does.
    const script = `ip${net.uplinkNetns ? ` -n ${net.uplinkNetns}` : ''} link del ${net.vethUplink} 2>/dev/null || true\nip netns del ${net.netns}\n`;
    try {
      await runScript(script);
    } catch (e) {
      if (await fs.access(netnsPath(net.netns)).then(() => true, () => false)) throw e;
    }
  } else {
    await deleteNetns(net.netns);
  }
  if (pool && net.hostAddr) {
    const slot = pool.reserve(net.hostAddr);
    if (slot) pool.release(slot.index);
  }
}

/** `ip netns del`, quiet when it is already gone. */
export async function deleteNetns(name: string): Promise<void> {
  try {
    await ip(['netns', 'del', name]);
  } catch (e) {
    if (await fs.access(netnsPath(name)).then(() => true, () => false)) throw e;
  }
}

/** Names of the namespaces `ip netns` knows (from /run/netns). */
export async function listNetns(): Promise<string[]> {
  try {
    return await fs.readdir('/run/netns');
  } catch {
    return [];
  }
}
