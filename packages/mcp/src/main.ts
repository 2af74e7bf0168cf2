/** `node packages/mcp/dist/main.js` (or from source with tsx): the MCP server on stdio. */
import { runMcpServer } from './server.js';

try {
  await runMcpServer();
  process.exit(0);
} catch (e) {
  process.stderr.write(`forkd-mcp: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
