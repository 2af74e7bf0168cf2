/**
 * Called after a child's namespace is set up and before QEMU runs guest code. A stub until the
 * egress policy lands: default deny, i.e. an nft table in the child's namespace that drops every
 * packet forwarded from the tap except replies (established/related). Inbound connections to the
 * guest (from inside the namespace, e.g. ports) are not forwarded traffic from the tap, so they work.
 * FORKD_TEST_EGRESS=allow-all (tests only) opens everything, to check the plumbing itself.
 */
import type { ChildNetwork, EgressPolicy } from './types.js';
import { nftInNetns } from './tools.js';

export const EGRESS_TABLE = 'forkd_egress';

export async function applyEgress(net: ChildNetwork, _policy: EgressPolicy): Promise<void> {
  const allowAll = process.env.FORKD_TEST_EGRESS === 'allow-all';
  await nftInNetns(net.netns, `table inet ${EGRESS_TABLE} {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "${net.tap}" ct state established,related accept
    iifname "${net.tap}" ${allowAll ? 'accept' : 'drop'}
  }
}
`);
}
