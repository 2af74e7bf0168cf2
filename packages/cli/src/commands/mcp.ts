import { runMcpServer } from '@forkd/mcp';

/**
 * `forkd mcp`: the MCP server on stdio, for agent clients (Claude Desktop, Cursor, ...). Talks to
 * FORKD_URL/FORKD_TOKEN when set, else to the local daemon (started on demand). Returns when the
 * client closes stdin; nothing but the protocol is written to stdout.
 */
export async function mcp(global: { home?: string }): Promise<number> {
  // The embedded default finds the daemon under FORKD_HOME; --home must mean the same here.
  if (global.home) process.env.FORKD_HOME = global.home;
  await runMcpServer();
  return 0;
}
