// What every serializer turns bytes into and back (Phoenix's Socket.Message and vsn negotiation).
// It knows nothing of sockets, channels or tasks.

/**
 * One inbound message, slot by slot as the client sent it. `ref` and `joinRef` are echoed
 * verbatim (same JSON type); `topic` may be a non-string, which routes as `unmatched topic`.
 */
export interface Message {
  joinRef: string | number | null;
  ref: string | number | null;
  topic: unknown;
  event: string;
  payload: unknown;
}

export interface Serializer {
  /** Memo key for TopicEvent.frames, and the name in logs. */
  readonly name: 'v1' | 'v2';
  /** A text frame; undefined when it is not a message of this version (the socket closes 1007). */
  decode(text: string): Message | undefined;
  /** A kind-0 binary push; 'unsupported' for other kinds (close 1003), undefined when malformed. */
  decodeBinary(data: Uint8Array): Message | 'unsupported' | undefined;
  /** Always a text frame: taskwire never sends binary. */
  encode(joinRef: unknown, ref: unknown, topic: unknown, event: string, payload: unknown): string;
}

/** The JSON value of a text frame, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A slot that may carry a ref: string, number or null (absent counts as null). */
export function asRef(value: unknown): string | number | null | undefined {
  if (value === undefined || value === null) return null;
  return typeof value === 'string' || typeof value === 'number' ? value : undefined;
}

const SEMVER = /^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/**
 * Phoenix's negotiation: `~> 1.0.0` is V1, `~> 2.0.0` is V2, a missing vsn means "1.0.0".
 * Anything else (not semver, another version, not a plain string) is refused: undefined.
 */
export function negotiateVersion(vsn: string | undefined | null): 1 | 2 | undefined {
  if (vsn === undefined) return 1;
  if (vsn === null) return undefined;
  const m = SEMVER.exec(vsn);
  if (!m) return undefined;
  const [, major, minor, patch, pre] = m;
  if (minor !== '0' || (patch === '0' && pre !== undefined)) return undefined;
  if (major === '1') return 1;
  if (major === '2') return 2;
  return undefined;
}
