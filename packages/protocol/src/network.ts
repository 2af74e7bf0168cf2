/**
 * The guest's network identity, declared once. Every child keeps its snapshot's address (children
 * are identical inside); its own network namespace on the host translates that address to a
 * unique one. The parent is booted with the same device so children restore with it.
 */
export const GUEST_NETWORK = {
  /** The guest's interface inside the VM (the one virtio-net device). */
  guestIfname: 'eth0',
  /** Fixed MAC: part of the device state a child restores, so it never varies. */
  mac: '52:54:00:f0:4b:02',
  guestAddr: '172.16.0.2',
  /** The host end (the tap in the child's namespace). */
  gatewayAddr: '172.16.0.1',
  prefixLen: 30,
  /**
   * The guest's resolver (its /etc/resolv.conf): the gateway. A child whose egress policy allows
   * names has its DNS (udp/tcp 53 to any address) sent to the egress proxy's forwarder; without
   * such a policy nothing answers there (the query is refused at once, no timeout).
   */
  nameserver: '172.16.0.1',
} as const;

/** Network defaults of the daemon: the pool every networked child takes a unique address from. */
export const NETWORK_DEFAULTS = {
  /** Split into /31s: 32768 children per /16. */
  pool: '10.200.0.0/16',
  /** Largest and smallest pool a daemon accepts (prefix length). */
  poolPrefix: { min: 8, max: 24 },
} as const;
