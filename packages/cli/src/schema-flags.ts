/**
 * Command-line flags derived from a REST route's body schema (as the MCP tools are, see
 * mcp/src/schemas.ts): the flag is named after the field, its default, choices, number parsing and
 * range checks come from the schema, so a limit is declared once, in @forkd/api.
 */
import { Option, type Command } from 'commander';
import type { z } from 'zod';
import { ForkdError } from '@forkd/protocol';
import { keyValues } from './client.js';

export interface FlagSpec {
  /** Commander flags when they differ from `--field-name <value>` (e.g. '-n, --count <n>'). */
  flags?: string;
  /** Used when the schema carries no description. */
  description?: string;
  required?: boolean;
}

type Kind = 'number' | 'string' | 'boolean' | 'enum' | 'record' | 'array';
interface Def { type: string; innerType?: z.ZodType; entries?: Record<string, string> }
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The schema under optional/default wrappers: its kind, description and choices live there. */
function core(s: z.ZodType): z.ZodType {
  let cur = s;
  while (defOf(cur).innerType && ['optional', 'default', 'nullable', 'prefault'].includes(defOf(cur).type)) cur = defOf(cur).innerType!;
  return cur;
}

function kindOf(s: z.ZodType): Kind {
  const t = defOf(core(s)).type;
  if (t === 'number' || t === 'string' || t === 'boolean' || t === 'enum' || t === 'record' || t === 'array') return t;
  throw new Error(`no command-line form for a ${t} field`);
}

export interface SchemaFlags<Fields> {
  options: Option[];
  /** The body fields given on the command line (numbers checked against the schema: ForkdError on a bad value). */
  read(opts: Record<string, unknown>): Partial<Fields>;
}

const snakeToKebab = (f: string) => f.replace(/_/g, '-');

export function schemaFlags<S extends Record<string, z.ZodType>, K extends keyof S & string>(shape: S, specs: { [k in K]: FlagSpec }): SchemaFlags<{ [k in K]: z.output<S[k]> }> {
  const fields = (Object.keys(specs) as K[]).map((field) => {
    const schema = shape[field]!;
    const spec = specs[field];
    const kind = kindOf(schema);
    const placeholder = kind === 'number' ? '<n>' : kind === 'record' ? '<KEY=VALUE>' : `<${field.endsWith('tag') ? 'tag' : 'value'}>`;
    const flags = spec.flags ?? `--${snakeToKebab(field)}${kind === 'boolean' ? '' : ` ${placeholder}`}`;
    const description = core(schema).description ?? schema.description ?? spec.description ?? field.replace(/_/g, ' ');
    const opt = new Option(flags, kind === 'record' || kind === 'array' ? `${description} (repeatable)` : description);
    if (kind === 'enum') opt.choices(Object.values(defOf(core(schema)).entries ?? {}));
    if (kind === 'record' || kind === 'array') opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    const fallback = schema.safeParse(undefined);
    if (fallback.success && fallback.data !== undefined) opt.default(fallback.data);
    if (spec.required) opt.makeOptionMandatory();
    return { field, schema, kind, opt };
  });
  return {
    options: fields.map((f) => f.opt),
    read(opts) {
      const out: Record<string, unknown> = {};
      for (const { field, schema, kind, opt } of fields) {
        const raw = opts[opt.attributeName()];
        if (raw === undefined) continue;
        const flag = opt.long ?? opt.flags;
        if (kind === 'record') {
          const pairs = keyValues(raw as string[], flag);
          if (Object.keys(pairs).length) out[field] = pairs;
        } else if (kind === 'number') {
          // Numbers are parsed and range-checked here; other fields go as typed and the daemon judges them.
          if (typeof raw === 'string' && !/^-?\d+(\.\d+)?$/.test(raw.trim())) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${flag} must be a number; got ${JSON.stringify(raw)}`);
          const r = schema.safeParse(Number(raw));
          if (!r.success) {
            const range = r.error.issues.every((i) => i.code === 'too_small' || i.code === 'too_big');
            throw new ForkdError(range ? 'FORKD_E_OUT_OF_RANGE' : 'FORKD_E_INVALID_ARGUMENT', `${flag}: ${r.error.issues.map((i) => i.message).join('; ')}`);
          }
          out[field] = r.data;
        } else out[field] = raw;
      }
      return out as Partial<{ [k in K]: z.output<S[k]> }>;
    },
  };
}

/** Adds the derived flags to a command (commander has no addOptions). */
export function withFlags(cmd: Command, ...sets: Array<{ options: Option[] }>): Command {
  for (const s of sets) for (const o of s.options) cmd.addOption(o);
  return cmd;
}
