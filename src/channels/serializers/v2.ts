// The V2 serializer (vsn 2.0.x): JSON arrays [join_ref, ref, topic, event, payload], plus decoding
// of inbound kind-0 binary pushes. It never produces binary, and knows nothing of sockets.
import { asRef, type Message, parseJson, type Serializer } from './serializer.ts';

const PUSH = 0;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function decode(text: string): Message | undefined {
  const value = parseJson(text);
  if (!Array.isArray(value) || value.length < 5) return undefined;
  const joinRef = asRef(value[0]);
  const ref = asRef(value[1]);
  const event = value[3];
  if (joinRef === undefined || ref === undefined || typeof event !== 'string') return undefined;
  return { joinRef, ref, topic: value[2], event, payload: value[4] };
}

/**
 * Kind 0 (client push): kind, join_ref_len, ref_len, topic_len, event_len, then those strings and
 * the payload bytes. An empty join_ref or ref is null on the wire (2.4).
 */
function decodeBinary(data: Uint8Array): Message | 'unsupported' | undefined {
  if (data.length === 0) return undefined;
  if (data[0] !== PUSH) return 'unsupported';
  if (data.length < 5) return undefined;
  const lengths = [data[1], data[2], data[3], data[4]];
  const strings: string[] = [];
  let offset = 5;
  for (const length of lengths) {
    if (offset + length > data.length) return undefined;
    try {
      strings.push(utf8.decode(data.subarray(offset, offset + length)));
    } catch {
      return undefined;
    }
    offset += length;
  }
  const [joinRef, ref, topic, event] = strings;
  return { joinRef: joinRef || null, ref: ref || null, topic, event, payload: data.subarray(offset) };
}

function encode(joinRef: unknown, ref: unknown, topic: unknown, event: string, payload: unknown): string {
  return JSON.stringify([joinRef, ref, topic, event, payload]);
}

export const v2: Serializer = { name: 'v2', decode, decodeBinary, encode };
