/** The host tools the network plumbing shells out to, each with a typed error naming its package. */
import { ForkdError } from '@forkd/protocol';
import { runTool, type RunToolResult } from '../qemu/tools.js';
import { which } from '../qemu/which.js';

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

/** The path nsenter/setns take for a named namespace. */
export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

/** A command run inside a namespace (sysctl, nft list...). */
export function inNetns(netns: string | null, cmd: string, args: string[]): Promise<RunToolResult> {
  return netns ? tool('nsenter', [`--net=${netnsPath(netns)}`, '--', cmd, ...args]) : tool(cmd, args);
}

let checked: Promise<void> | null = null;

/** ip, nft and nsenter are on PATH (looked up once): a missing one is FORKD_E_TOOL_MISSING naming its package. */
export function requireNetworkTools(): Promise<void> {
  checked ??= (async () => {
    for (const cmd of ['ip', 'nft', 'nsenter']) {
      if (!(await which(cmd))) {
        checked = null;
        throw new ForkdError('FORKD_E_TOOL_MISSING', `${cmd} is needed for sandbox networking: apt-get install ${PACKAGE_OF[cmd] ?? cmd}`, { tool: cmd });
      }
    }
  })();
  return checked;
}

/**
 * A `sh` script run as one process (its tools fork from a small shell, not from this large one),
 * with `input` on its stdin. Callers build scripts only from names and addresses they made.
 */
export function runScript(script: string, input?: string): Promise<RunToolResult> {
  return tool('sh', ['-c', script], input);
}
