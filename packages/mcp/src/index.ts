export { runMcpServer, createServer, daemonController, SERVER_NAME, SERVER_VERSION, type McpServerOptions } from './server.js';
export { tools, MCP_DEFAULT_SANDBOX_TIMEOUT_MS, type ToolDef, type ToolContext } from './tools.js';
export { schemas, jsonSchemaOf, type ToolName } from './schemas.js';
