/**
 * Wire shapes both sides share: the agent protocol uses them and the REST API composes its
 * schemas from them, so a path, an environment map, a directory entry or a process reads the
 * same everywhere.
 */
import { z } from 'zod';
import { LIMITS } from './limits.js';

/** An absolute path inside the guest. */
export const GuestPath = z.string().min(1).max(4096).refine((p) => p.startsWith('/'), 'path must be absolute').refine((p) => !p.includes('\0'), 'path must not contain NUL');

/** Environment variables, named as POSIX shells accept them. */
export const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'invalid environment variable name').max(LIMITS.env.maxNameChars);
const envVars = z.record(EnvName, z.string().max(LIMITS.env.maxValueChars));
const countAtMost = (max: number) => (m: Record<string, string>) => Object.keys(m).length <= max;
/** One environment map (a sandbox's, or one call's). */
export const EnvMap = envVars.refine(countAtMost(LIMITS.env.maxVars), `at most ${LIMITS.env.maxVars} variables`);
/** What a command runs with: the sandbox's map with the call's on top. */
export const MergedEnvMap = envVars.refine(countAtMost(2 * LIMITS.env.maxVars), `at most ${2 * LIMITS.env.maxVars} variables`);

/** A command's argv (no shell). */
export const Argv = z.array(z.string().max(LIMITS.maxArgBytes)).min(1).max(LIMITS.maxArgs);

export const EntryType = z.enum(['file', 'dir', 'symlink', 'other']);
/** One file, directory or link in the guest (files.list / files.stat). */
export const EntryInfo = z.object({
  name: z.string(),
  path: z.string(),
  type: EntryType,
  size: z.number(),
  mode: z.number().int(),
  permissions: z.string(),
  modified_ms: z.number(),
  symlink_target: z.string().nullable(),
});

/** The agent names background processes p1, p2, ...; callers may only pass names of that alphabet. */
export const ProcessHandle = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'invalid process handle');
export const Signal = z.enum(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP']);
/** One background process. */
export const ProcessInfo = z.object({
  handle: ProcessHandle,
  pid: z.number().int(),
  command: z.string(),
  started_at_ms: z.number(),
  running: z.boolean(),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
});

export type EntryInfoT = z.output<typeof EntryInfo>;
export type ProcessInfoT = z.output<typeof ProcessInfo>;
