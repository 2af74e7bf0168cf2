/**
 * A child's egress when no egress policy service is attached to its ChildNetworks (engine-only use,
 * tests; the daemon attaches network/egress/service.ts): deny all, i.e. an nft table in the child's
 * namespace (loaded with it, netns/netns.ts) that drops every packet forwarded from the tap except replies (established/related). Inbound connections to the
 * guest (from inside the namespace, e.g. ports) are not forwarded traffic from the tap, so they work.
 * FORKD_TEST_EGRESS=allow-all (engine tests only) opens everything, to check the plumbing itself.
 */
import type { ChildNetwork } from './types.js';
import { EGRESS_TABLE } from './egress/nft-rules.js';

export async function denyAllRuleset(net: ChildNetwork): Promise<string> {
  const allowAll = process.env.FORKD_TEST_EGRESS === 'allow-all';
  return `table inet ${EGRESS_TABLE} {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "${net.tap}" ct state established,related accept
    iifname "${net.tap}" ${allowAll ? 'accept' : 'drop'}
  }
}
`;
}
