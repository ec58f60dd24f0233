/**
 * Tiny flag parsing shared by the episode commands (demos, inspect, replay): `--name value`,
 * `--name=value` and boolean `--flag`. Every mistake is a UsageError naming the flag and the
 * expected form, so the user sees one line, not a stack trace.
 */
import { UsageError } from './main.ts';

/** What a command accepts: flag name -> 'string' | 'int' | 'bool', plus positional arguments. */
export type FlagSpec = Record<string, 'string' | 'int' | 'bool'>;

export interface ParsedArgs {
  flags: Record<string, string | number | boolean>;
  positional: string[];
}

/** Parse `argv` against `spec`; `usage` is appended to errors so the user sees the expected form. */
export function parseFlags(argv: string[], spec: FlagSpec, usage: string): ParsedArgs {
  const flags: Record<string, string | number | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown flag '--${name}' (expected one of: ${Object.keys(spec).map((k) => `--${k}`).join(', ')})\n${usage}`);
    if (kind === 'bool') {
      if (eq >= 0) throw new UsageError(`flag '--${name}' takes no value, got '${arg}'\n${usage}`);
      flags[name] = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || (eq < 0 && value.startsWith('--'))) {
      throw new UsageError(`flag '--${name}' needs a value (--${name} <${kind === 'int' ? 'integer' : 'value'}>)\n${usage}`);
    }
    if (kind === 'int') {
      const n = Number(value);
      if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n)) {
        throw new UsageError(`flag '--${name}' expects an integer, got '${value}'\n${usage}`);
      }
      flags[name] = n;
    } else flags[name] = value;
  }
  return { flags, positional };
}

/** A required string flag. */
export function requireString(a: ParsedArgs, name: string, usage: string): string {
  const v = a.flags[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing required flag '--${name} <value>'\n${usage}`);
  return v;
}

/** An integer flag with a default and an inclusive lower bound. */
export function intFlag(a: ParsedArgs, name: string, fallback: number, min: number, usage: string): number {
  const v = a.flags[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || v < min) throw new UsageError(`flag '--${name}' must be an integer >= ${min}, got '${String(v)}'\n${usage}`);
  return v;
}
