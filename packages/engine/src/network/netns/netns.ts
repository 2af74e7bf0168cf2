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
import { denyAllEgress } from '../egress-hook.js';
import { inNetns, ip, ipBatch, netnsPath } from '../tools.js';
import { CHILD_TAP, CHILD_VETH, childNetnsName, uplinkVethName } from './names.js';

/** Where a networked child's veth leads and which addresses it takes. */
export interface Uplink {
  /** null: the host's root namespace. */
  netns: string | null;
  pool: AddressPool;
}

export const NAT_TABLE = 'forkd_nat';

/** How a child's egress is set once its namespace and NAT are ready (before QEMU runs guest code). */
export type EgressSetter = (net: ChildNetwork) => Promise<void>;

/**
 * The namespace for VM vmId; with an uplink, also the veth, addresses, forwarding, NAT and the
 * egress (`egress`, default: deny all). tapOwner: the uid that may open the tap (a jailed QEMU's).
 */
export async function createChildNetwork(vmId: string, opts: { uplink?: Uplink; tapOwner?: number; egress?: EgressSetter }): Promise<ChildNetwork> {
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
  try {
    await ip(['netns', 'add', netns]);
  } catch (e) {
    if (slot) opts.uplink!.pool.release(slot.index);
    throw e;
  }
  try {
    const lines = [
      'link set lo up',
      `tuntap add dev ${CHILD_TAP} mode tap${opts.tapOwner !== undefined ? ` user ${opts.tapOwner}` : ''}`,
      `addr add ${GUEST_NETWORK.gatewayAddr}/${GUEST_NETWORK.prefixLen} dev ${CHILD_TAP}`,
      `link set ${CHILD_TAP} up`,
    ];
    if (slot) {
      // Made inside the child's namespace, its peer sent straight to the uplink's (pid 1's = root).
      lines.push(
        `link add ${CHILD_VETH} type veth peer name ${net.vethUplink} netns ${net.uplinkNetns ?? '1'}`,
        `addr add ${slot.hostAddr}/31 dev ${CHILD_VETH}`,
        `link set ${CHILD_VETH} up`,
        `route add default via ${slot.uplinkAddr} dev ${CHILD_VETH}`,
      );
    }
    await ipBatch(lines, netns);
    if (slot) {
      await ipBatch([`addr add ${slot.uplinkAddr}/31 dev ${net.vethUplink}`, `link set ${net.vethUplink} up`], net.uplinkNetns);
      // Forwarding on, then the NAT: the guest's fixed address leaves as this child's own.
      await inNetns(netns, 'sh', ['-c', `echo 1 > /proc/sys/net/ipv4/ip_forward && nft -f - <<'EOF'
table ip ${NAT_TABLE} {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${CHILD_VETH}" ip saddr ${GUEST_NETWORK.guestAddr} snat to ${slot.hostAddr}
  }
}
EOF`]);
    }
    await (opts.egress ?? denyAllEgress)(net);
    return net;
  } catch (e) {
    await destroyChildNetwork(net, opts.uplink?.pool).catch(() => undefined);
    throw e instanceof ForkdError ? new ForkdError(e.code, `setting up the network of VM ${vmId}: ${e.message}`, e.details, { cause: e }) : e;
  }
}

/**
 * Removes a child's network: the uplink end of its veth first (the pair goes with it, and with it
 * the uplink's route, at once: the pool pair may be reused), then the namespace with its tap and
 * rules. Call after QEMU has exited. Idempotent.
 */
export async function destroyChildNetwork(net: ChildNetwork, pool?: AddressPool): Promise<void> {
  if (net.vethUplink) await ip(['link', 'del', net.vethUplink], net.uplinkNetns).catch(() => undefined);
  await deleteNetns(net.netns);
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
