/**
 * The interface between the network plumbing (netns, veth, pool, ports) and the egress policy
 * (nftables, proxy, DNS). Kept stable: the egress work builds on it.
 */

/** One child's network, as set up before QEMU runs guest code. */
export interface ChildNetwork {
  /** Name `ip netns exec` accepts. */
  netns: string;
  /** /run/netns/<netns>: what setns/nsenter takes. */
  netnsPath: string;
  /** The guest's address (the same in every child), reachable from inside netns. */
  guestAddr: string;
  /** The tap's address inside netns: the guest's gateway. */
  gatewayAddr: string;
  /** The tap QEMU opens, inside netns. */
  tap: string;
  /** The child-side end of the veth pair (inside netns); '' when the child has no uplink. */
  vethChild: string;
  /** The uplink-side end of the veth pair (in uplinkNetns); '' when the child has no uplink. */
  vethUplink: string;
  /** The child's unique address (its veth end): the guest's traffic leaves as this address. '' when no uplink. */
  hostAddr: string;
  /** The namespace the veth leads to: null is the host's root namespace. */
  uplinkNetns: string | null;
}
