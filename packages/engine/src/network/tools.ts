/** The host tools the network plumbing shells out to, each with a typed error naming its package. */
import { ForkdError } from '@forkd/protocol';
import { runTool, type RunToolResult } from '../qemu/tools.js';

const PACKAGE_OF: Record<string, string> = { ip: 'iproute2', nft: 'nftables', nsenter: 'util-linux' };

async function tool(cmd: string, args: string[], input?: string): Promise<RunToolResult> {
  try {
    return await runTool(cmd, args, { timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
  } catch (e) {
    if (e instanceof ForkdError && e.code === 'FORKD_E_TOOL_MISSING') {
      throw new ForkdError('FORKD_E_TOOL_MISSING', `${cmd} is needed for sandbox networking: apt-get install ${PACKAGE_OF[cmd] ?? cmd}`, { tool: cmd });
    }
    throw e;
  }
}

/** `ip ARGS` (in the root namespace), or `ip -n NETNS ARGS`. */
export function ip(args: string[], netns?: string | null): Promise<RunToolResult> {
  return tool('ip', netns ? ['-n', netns, ...args] : args);
}

/** `ip -batch -` : many commands, one process (each fork+exec costs milliseconds). */
export function ipBatch(lines: string[], netns?: string | null): Promise<RunToolResult> {
  return tool('ip', [...(netns ? ['-n', netns] : []), '-batch', '-'], `${lines.join('\n')}\n`);
}

/** The path nsenter/setns take for a named namespace. */
export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

/** Loads an nft ruleset (nft -f -) inside a namespace, or in the root namespace for null. */
export function nftInNetns(netns: string | null, ruleset: string): Promise<RunToolResult> {
  return netns ? tool('nsenter', [`--net=${netnsPath(netns)}`, '--', 'nft', '-f', '-'], ruleset) : tool('nft', ['-f', '-'], ruleset);
}

/** A command run inside a namespace (sysctl, nft list...). */
export function inNetns(netns: string | null, cmd: string, args: string[]): Promise<RunToolResult> {
  return netns ? tool('nsenter', [`--net=${netnsPath(netns)}`, '--', cmd, ...args]) : tool(cmd, args);
}
