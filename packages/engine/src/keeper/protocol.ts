/**
 * The keeper's wire protocol: newline-delimited JSON over a Unix socket (mode 0600 in the 0700
 * run dir). One client (the daemon) at a time holds the lease.
 */
import path from 'node:path';
import crypto from 'node:crypto';
import { z } from 'zod';
import { runtimeDir } from '../runtime/dir.js';

export const KEEPER_PROTOCOL = 1;
export const MAX_KEEPER_LINE = 1024 * 1024;

const paths = z.array(z.string().max(4096)).max(256).optional();
/** qemu/jail.ts JailSpec on the wire: the daemon decides the jail, the keeper applies it. */
const JailWire = z.object({
  mode: z.enum(['full', 'seccomp', 'off']),
  uid: z.number().int().positive().optional(),
  gid: z.number().int().positive().optional(),
  groups: z.array(z.number().int().nonnegative()).max(16).optional(),
  root: z.string().max(4096).optional(),
  readOnly: paths,
  writable: paths,
  devices: paths,
  roRam: z.string().max(4096).optional(),
});

export const KeeperRequest = z.discriminatedUnion('op', [
  z.object({ id: z.number().int(), op: z.literal('hello'), version: z.number().int(), client_pid: z.number().int() }),
  z.object({ id: z.number().int(), op: z.literal('launch'), qemu_path: z.string().max(4096), args: z.array(z.string().max(64 * 1024)).max(512), cwd: z.string().max(4096), stderr_cap: z.number().int().positive().max(1 << 20), confine: z.object({ cgroupProcs: z.array(z.string().max(4096)).max(8).optional(), fileSizeBytes: z.number().int().positive().optional(), nice: z.number().int().min(0).max(19).optional() }).strict().optional(), jail: JailWire.optional(), netns: z.string().max(64).optional() }),
  z.object({ id: z.number().int(), op: z.literal('shutdown') }),
]);
export type KeeperRequestT = z.output<typeof KeeperRequest>;

export const KeeperVm = z.object({ pid: z.number().int(), run_dir: z.string(), args: z.array(z.string()), netns: z.string().optional() });
export type KeeperVmT = z.output<typeof KeeperVm>;

export const KeeperMessage = z.union([
  z.object({ id: z.number().int(), ok: z.literal(true), keeper_pid: z.number().int().optional(), keeper_starttime: z.number().optional(), vms: z.array(KeeperVm).optional(), pid: z.number().int().optional() }),
  z.object({ id: z.number().int(), ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
  z.object({ ev: z.literal('exit'), pid: z.number().int(), code: z.number().int().nullable(), signal: z.string().nullable() }),
  z.object({ ev: z.literal('stderr'), pid: z.number().int(), data: z.string() }),
]);

/** One keeper per daemon state: the key names it, and its socket lives in the run dir. */
export function keeperSocketPath(key: string): string {
  return path.join(runtimeDir(), `keeper-${keeperKey(key)}.sock`);
}

export function keeperKey(key: string): string {
  return crypto.createHash('sha256').update(key).digest('hex').slice(0, 12);
}
