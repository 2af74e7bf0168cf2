/** The operator's egress settings (daemon flags) and where the egress proxy listens. */

export interface EgressProxyAddress {
  /** An address on the uplink side that every child namespace routes to (added to the uplink's lo). */
  addr: string;
  /** Guest TCP 80 is redirected here (HTTP Host), 443 to tlsPort (TLS SNI), udp/tcp 53 to dnsPort. */
  httpPort: number;
  tlsPort: number;
  dnsPort: number;
}

export interface EgressConfig {
  /** Policy of a sandbox that names none: --default-egress. */
  defaultEgress: 'deny' | 'public';
  /** Every child's host-side address range (the network pool): children never reach each other. */
  childPools: string[];
  /** The host's own addresses (uplink side): never reachable from a guest. */
  hostAddresses: string[];
  /** Private ranges the operator opened (--egress-allow-private), e.g. a lab network or a test host's. */
  allowPrivate: string[];
  proxy: EgressProxyAddress;
  /** DNS servers (ip or ip:port) the proxy resolves with and forwards to; empty = the host's resolv.conf. */
  resolvers: string[];
}

/** Link-local, so never routed beyond the host and never a real service's address. */
export const DEFAULT_PROXY: EgressProxyAddress = { addr: '169.254.255.254', httpPort: 15080, tlsPort: 15443, dnsPort: 15053 };
