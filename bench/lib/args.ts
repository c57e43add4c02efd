// Command-line flags of the benchmark: each scenario declares its flags (kind, default, help) and
// gets a typed object back. `--kebab-case value`, `--kebab-case=value`, `--flag` / `--no-flag`.

type Kind = 'int' | 'num' | 'str' | 'bool' | 'ms' | 'list';

export interface FlagDef<T> {
  readonly kind: Kind;
  readonly def: T;
  readonly help: string;
  readonly choices?: readonly string[];
}

export const int = (def: number, help: string): FlagDef<number> => ({ kind: 'int', def, help });
export const num = (def: number, help: string): FlagDef<number> => ({ kind: 'num', def, help });
export const str = <T extends string>(def: T, help: string, choices?: readonly T[]): FlagDef<T> => ({
  kind: 'str',
  def,
  help,
  choices,
});
export const bool = (def: boolean, help: string): FlagDef<boolean> => ({ kind: 'bool', def, help });
/** A duration: `1500`, `1500ms`, `15s`, `2m`; the value is milliseconds. */
export const ms = (def: number, help: string): FlagDef<number> => ({ kind: 'ms', def, help });
/** Repeatable: every occurrence is kept. */
export const list = (help: string): FlagDef<string[]> => ({ kind: 'list', def: [], help });

export type FlagSpec = Record<string, FlagDef<unknown>>;
export type FlagValues<S extends FlagSpec> = { [K in keyof S]: S[K] extends FlagDef<infer T> ? T : never };

export class UsageError extends Error {
  override name = 'UsageError';
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function parseDuration(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!m) throw new UsageError(`not a duration: ${raw} (use 500ms, 15s, 2m)`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

function convert(name: string, def: FlagDef<unknown>, raw: string): unknown {
  switch (def.kind) {
    case 'int': {
      const n = Number(raw.replaceAll('_', ''));
      if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got ${raw}`);
      return n;
    }
    case 'num': {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${raw}`);
      return n;
    }
    case 'ms':
      return parseDuration(raw);
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new UsageError(`--${name} must be true or false, got ${raw}`);
    case 'str':
      if (def.choices && !def.choices.includes(raw))
        throw new UsageError(`--${name} must be one of ${def.choices.join(', ')}, got ${raw}`);
      return raw;
    default:
      return raw;
  }
}

export function parseFlags<S extends FlagSpec>(spec: S, argv: string[]): FlagValues<S> {
  const byCli = new Map<string, string>();
  for (const key of Object.keys(spec)) byCli.set(kebab(key), key);
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(spec)) out[key] = def.kind === 'list' ? [] : def.def;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${arg}`);
    let name = arg.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq !== -1) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    let key = byCli.get(name);
    if (!key && name.startsWith('no-') && value === undefined) {
      key = byCli.get(name.slice(3));
      if (key && spec[key].kind === 'bool') {
        out[key] = false;
        continue;
      }
      key = undefined;
    }
    if (!key) throw new UsageError(`unknown flag --${name}`);
    const def = spec[key];
    if (value === undefined) {
      if (def.kind === 'bool' && (i + 1 >= argv.length || argv[i + 1].startsWith('--'))) {
        out[key] = true;
        continue;
      }
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      value = argv[++i];
    }
    const converted = convert(name, def, value);
    if (def.kind === 'list') (out[key] as string[]).push(converted as string);
    else out[key] = converted;
  }
  return out as FlagValues<S>;
}

export function helpText(spec: FlagSpec): string {
  const rows = Object.entries(spec).map(([key, def]) => {
    const flag = `--${kebab(key)}${def.kind === 'bool' ? '' : ` <${def.kind === 'ms' ? 'duration' : def.kind}>`}`;
    const shown =
      def.kind === 'list'
        ? ''
        : def.kind === 'ms'
          ? ` (default ${def.def} ms)`
          : ` (default ${String(def.def)})`;
    const choices = def.choices ? ` [${def.choices.join('|')}]` : '';
    return `  ${flag.padEnd(34)} ${def.help}${choices}${shown}`;
  });
  return rows.join('\n');
}
