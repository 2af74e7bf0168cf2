/** Tool answers: JSON text (and structuredContent for objects); errors as MCP tool errors whose text starts with the FORKD_E_* code. */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { toSdkError, type RunCodeResponse } from '@forkd/sdk';

export function okResult(v: unknown): CallToolResult {
  const value = v ?? null;
  const structured = typeof value === 'object' && value !== null && !Array.isArray(value) ? { structuredContent: value as Record<string, unknown> } : {};
  return { content: [{ type: 'text', text: JSON.stringify(value, null, 2) }], ...structured };
}

export function errorResult(e: unknown): CallToolResult {
  const err = toSdkError(e);
  const details = err.details && Object.keys(err.details).length ? `\n${JSON.stringify(err.details)}` : '';
  return { isError: true, content: [{ type: 'text', text: `${err.code}: ${err.message}${details}` }] };
}

/** Invalid arguments, said as the daemon would (FORKD_E_INVALID_ARGUMENT, one line per problem). */
export function invalidArgsResult(tool: string, error: z.ZodError): CallToolResult {
  const problems = error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(arguments)'}: ${i.message}`);
  return { isError: true, content: [{ type: 'text', text: `FORKD_E_INVALID_ARGUMENT: invalid arguments for ${tool}: ${problems.join('; ')}` }] };
}

/** A tool's answer that is already an MCP result (run_code's images), passed through as it is. */
export class ToolAnswer {
  constructor(readonly result: CallToolResult) {}
}

/**
 * run_code as MCP content: the execution as JSON text with each image replaced by a note, then
 * every PNG/JPEG as an MCP image item (what a model can look at), in result order.
 */
export function runCodeResult(r: RunCodeResponse): ToolAnswer {
  const images: CallToolResult['content'] = [];
  const results = r.results.map((res, i) => {
    const { png, jpeg, ...rest } = res;
    const notes: Record<string, string> = {};
    for (const [kind, data] of [['png', png], ['jpeg', jpeg]] as const) {
      if (data === undefined) continue;
      images.push({ type: 'image', data, mimeType: `image/${kind}` });
      notes[kind] = `image content #${images.length} (result ${i}, ${Buffer.byteLength(data, 'base64')} bytes)`;
    }
    return { ...rest, ...notes };
  });
  const value = { ...r, results };
  return new ToolAnswer({ content: [{ type: 'text', text: JSON.stringify(value, null, 2) }, ...images], structuredContent: value });
}
