/**
 * The uplink namespace's side, set once per daemon (idempotent): forwarding on, children never
 * forwarded to one another, and pool traffic leaving through any other interface masqueraded.
 * Production: the host's root namespace. Tests: always a namespace the test made.
 */
import type { Uplink } from './netns.js';
import { inNetns } from '../tools.js';
import { UPLINK_VETH_PREFIX } from './names.js';

export function uplinkTableName(pool: string): string {
  return `forkd_uplink_${pool.replace(/[./]/g, '_')}`;
}

export async function ensureUplink(uplink: Uplink): Promise<void> {
  const table = uplinkTableName(uplink.pool.cidr);
  const veths = `"${UPLINK_VETH_PREFIX}*"`;
  // Declared then flushed: re-running replaces the rules instead of stacking them.
  await inNetns(uplink.netns, 'sh', ['-c', `echo 1 > /proc/sys/net/ipv4/ip_forward && nft -f - <<'EOF'
table inet ${table}
flush table inet ${table}
table inet ${table} {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname ${veths} oifname ${veths} drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${uplink.pool.cidr} oifname != ${veths} masquerade
  }
}
EOF`]);
}
