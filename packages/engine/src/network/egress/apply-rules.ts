/** Loads a child's egress ruleset into its namespace (one atomic `nft -f` transaction). */
import { runTool } from '../../qemu/tools.js';
import type { ChildNetwork } from '../types.js';
import { EGRESS_TABLE } from './nft-rules.js';

/** nft 1.0.6 has no --netns: enter the namespace by its path (nsenter, util-linux). */
export async function loadRuleset(net: Pick<ChildNetwork, 'netnsPath'>, ruleset: string): Promise<void> {
  await runTool('nsenter', [`--net=${net.netnsPath}`, 'nft', '-f', '-'], { input: ruleset, timeoutMs: 10_000 });
}

/** The table as nft lists it, or null when the namespace has none. */
export async function listRuleset(net: Pick<ChildNetwork, 'netnsPath'>): Promise<string | null> {
  try {
    return (await runTool('nsenter', [`--net=${net.netnsPath}`, 'nft', 'list', 'table', 'inet', EGRESS_TABLE], { timeoutMs: 10_000 })).stdout;
  } catch {
    return null;
  }
}
