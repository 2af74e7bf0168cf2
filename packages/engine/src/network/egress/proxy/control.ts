/** The proxy's control channel: one JSON request per line on a unix socket, one JSON reply per line. */
import type { EgressPolicy } from '@forkd/protocol';

export type ControlRequest =
  | { op: 'set'; hostAddr: string; policy: EgressPolicy }
  | { op: 'remove'; hostAddr: string }
  | { op: 'state' };

export type ControlReply =
  | { ok: true; removed?: boolean; children?: string[]; stats?: Record<string, number> }
  | { ok: false; error: string };

/** A policy pushed over the channel can hold up to 2 × maxEntries rules; one line stays well below this. */
export const MAX_CONTROL_LINE_BYTES = 1024 * 1024;
