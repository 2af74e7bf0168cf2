/**
 * The forkd MCP server over stdio. The low-level MCP Server is used rather than McpServer so that
 * argument validation is ours: invalid arguments come back as tool errors starting with
 * FORKD_E_INVALID_ARGUMENT, like every other failure, instead of the SDK's own wording.
 * stdout carries the protocol and nothing else; logs go to stderr.
 */
import type { Readable, Writable } from 'node:stream';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { FORKD_VERSION } from '@forkd/protocol';
import { Controller, type ConnectionOptions } from '@forkd/sdk';
import { ensureLocalDaemon } from '@forkd/sdk/local';
import { schemas, jsonSchemaOf } from './schemas.js';
import { tools, type ToolDef } from './tools.js';
import { errorResult, invalidArgsResult, okResult, ToolAnswer } from './result.js';

export const SERVER_NAME = 'forkd';
export const SERVER_VERSION = FORKD_VERSION;

export interface McpServerOptions {
  /** Where the daemon is; default FORKD_URL/FORKD_TOKEN, else the local daemon (started if needed). */
  connection?: ConnectionOptions;
  /** A ready Controller (overrides connection). */
  controller?: Controller;
  stdin?: Readable;
  stdout?: Writable;
}

function log(msg: string): void {
  process.stderr.write(`forkd-mcp: ${msg}\n`);
}

/** The Controller to use: explicit, FORKD_URL, or the embedded default (resolved on the first tool call). */
export async function daemonController(connection: ConnectionOptions = {}): Promise<Controller> {
  if (connection.url || connection.socketPath || process.env.FORKD_URL) return new Controller(connection);
  const { socket, started } = await ensureLocalDaemon();
  if (started) log(`started a local forkd daemon on ${socket}`);
  return new Controller({ ...connection, socketPath: socket });
}

/** On stdin EOF, how long calls still running may take to answer before the server closes. */
export const DRAIN_MS = 10_000;

export function createServer(getController: () => Promise<Controller>, inFlight: Set<Promise<unknown>> = new Set()): Server {
  const server = new Server(
    { name: SERVER_NAME, version: SERVER_VERSION },
    { capabilities: { tools: {} }, instructions: 'forkd: microVM sandboxes forked from warm snapshots. spawn_sandboxes from a snapshot (list_snapshots), then exec_command / eval_code / run_code (Python with rich results: plots come back as images) / read_file / write_file in them; kill_sandbox when done. fork_sandbox copies a running sandbox (memory, files) into new ones; branch_sandbox saves it as a snapshot; workspaces (create_workspace, suspend_workspace, resume_workspace) keep one for later.' },
  );
  const byName = new Map<string, ToolDef>(tools.map((t) => [t.name, t as ToolDef]));
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: tools.map((t) => ({
      name: t.name,
      description: t.description,
      inputSchema: jsonSchemaOf(schemas[t.name]),
      annotations: { readOnlyHint: t.readOnly ?? false, destructiveHint: t.destructive ?? false, openWorldHint: false },
    })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const tool = byName.get(req.params.name);
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `unknown tool ${req.params.name}`);
    const parsed = schemas[tool.name].safeParse(req.params.arguments ?? {});
    if (!parsed.success) return invalidArgsResult(tool.name, parsed.error);
    const call = (async () => {
      try {
        const ctl = await getController();
        const v = await tool.run(parsed.data as never, { ctl, signal: extra.signal });
        return v instanceof ToolAnswer ? v.result : okResult(v);
      } catch (e) {
        return errorResult(e);
      }
    })();
    inFlight.add(call);
    try {
      return await call;
    } finally {
      inFlight.delete(call);
    }
  });
  return server;
}

/** Serves MCP over stdio until the client closes stdin. */
export async function runMcpServer(opts: McpServerOptions = {}): Promise<void> {
  const stdin = opts.stdin ?? process.stdin;
  const stdout = opts.stdout ?? process.stdout;
  if (stdout === process.stdout) {
    // A stray console.log from any library would corrupt the protocol stream.
    for (const k of ['log', 'info', 'debug', 'warn'] as const) console[k] = (...a: unknown[]) => console.error(...a);
  }
  let pending: Promise<Controller> | undefined;
  const getController = (): Promise<Controller> => {
    if (opts.controller) return Promise.resolve(opts.controller);
    // A failed attempt (daemon not up yet) is retried on the next call.
    pending ??= daemonController(opts.connection).catch((e: unknown) => {
      pending = undefined;
      throw e;
    });
    return pending;
  };
  const inFlight = new Set<Promise<unknown>>();
  const server = createServer(getController, inFlight);
  const closed = new Promise<void>((resolve) => (server.onclose = resolve));
  server.onerror = (e) => log(`protocol error: ${e.message}`);
  await server.connect(new StdioServerTransport(stdin, stdout));
  let ending = false;
  const end = async (): Promise<void> => {
    if (ending) return;
    ending = true;
    // A client that pipes requests and closes stdin still gets the answers of calls already running.
    // The SDK dispatches requests and sends answers in later microtasks: a macrotask turn before
    // looking at inFlight, and another before closing, lets both happen.
    const turn = () => new Promise((r) => setImmediate(r));
    await turn();
    await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
    await turn();
    await server.close();
  };
  stdin.once('end', () => void end());
  stdin.once('close', () => void end());
  await closed;
}
