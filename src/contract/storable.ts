// What PostgreSQL can store as `text` or `jsonb`: every string but those holding U+0000 (NUL) or
// a lone UTF-16 surrogate, in JSON nested no deeper than MAX_JSON_DEPTH. Pure predicates and a
// walker that names the first offending path; they must not log, throw or change a value (a
// sanitizer that does, `toStorable`, belongs beside them).

/**
 * Deepest nesting of a JSON value taskwire stores. PostgreSQL's jsonb takes about 10,000 levels,
 * but JSON.stringify (which turns a value into a query parameter) overflows the stack at about
 * 4,000 on Node 24: this bound is far below both and far above any real task input.
 */
export const MAX_JSON_DEPTH = 512;

/** True when PostgreSQL can store `s` unchanged in `text` and as a `jsonb` string or key. */
export function isStorableString(s: string): boolean {
  return s.isWellFormed() && !s.includes('\u0000');
}

/** Where the first unstorable string of a JSON value sits: the keys and indexes leading to it. */
export interface UnstorablePlace {
  /** From the root: object keys and array indexes; for a bad key, ends with that key. */
  path: Array<string | number>;
  /** The string at `path` is an object key or a value; or the value there nests too deep. */
  in: 'key' | 'value' | 'depth';
}

/**
 * The first string (key or value) of `value` that PostgreSQL can't store, or the first array or
 * object nested deeper than MAX_JSON_DEPTH, depth first in document order; undefined when the
 * whole value is storable. Iterative, so any depth that JSON.parse accepts is walked safely.
 */
export function findUnstorable(value: unknown): UnstorablePlace | undefined {
  const stack: Array<{ value: unknown; path: Array<string | number> }> = [{ value, path: [] }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    const v = item.value;
    if (typeof v === 'string') {
      if (!isStorableString(v)) return { path: item.path, in: 'value' };
    } else if (v !== null && typeof v === 'object' && item.path.length >= MAX_JSON_DEPTH) {
      return { path: item.path, in: 'depth' };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], path: [...item.path, i] });
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      for (const key of keys) if (!isStorableString(key)) return { path: [...item.path, key], in: 'key' };
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ value: (v as Record<string, unknown>)[keys[i]], path: [...item.path, keys[i]] });
      }
    }
  }
  return undefined;
}

/** Shows `s` with NUL and lone surrogates as `\uXXXX` escapes, so that the text itself is storable. */
export function escapeUnstorable(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const high = c >= 0xd800 && c <= 0xdbff;
    const low = c >= 0xdc00 && c <= 0xdfff;
    if (high && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += s[i] + s[i + 1];
        i += 1;
        continue;
      }
    }
    out += c === 0 || high || low ? `\\u${c.toString(16).padStart(4, '0')}` : s[i];
  }
  return out;
}

/** `s` with each NUL and each lone surrogate replaced by U+FFFD (what a lossy UTF-8 decoder shows). */
export function storableString(s: string): string {
  if (isStorableString(s)) return s;
  return s.toWellFormed().replaceAll('\u0000', '\uFFFD');
}

/**
 * The storable form of a value a handler produced (result, error, message, output chunk): every
 * string and key through storableString, values nested deeper than MAX_JSON_DEPTH replaced by
 * null, and anything JSON can't hold dropped as JSON.stringify would. The one place where taskwire
 * changes such values, so what subscribers see live is what the database keeps. A value that is
 * already storable comes back as it is (same object).
 */
export function toStorable(value: unknown): unknown {
  if (findUnstorable(value) === undefined) return value;
  return sanitize(value, 0);
}

function sanitize(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return storableString(v);
  if (v === null || typeof v !== 'object') return v;
  if (depth >= MAX_JSON_DEPTH) return null;
  if (Array.isArray(v)) return v.map((item) => sanitize(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(v)) out[storableString(key)] = sanitize(item, depth + 1);
  return out;
}
