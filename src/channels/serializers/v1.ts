// The V1 serializer (vsn 1.0.x, and no vsn at all): JSON objects {topic, event, payload, ref}.
// Output never carries join_ref; there is no binary form. It knows nothing of sockets.
import { asRef, type Message, parseJson, type Serializer } from './serializer.ts';

const REQUIRED = ['topic', 'event', 'payload', 'ref'] as const;

function decode(text: string): Message | undefined {
  const value = parseJson(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  for (const key of REQUIRED) if (!Object.hasOwn(o, key)) return undefined;
  const joinRef = asRef(o.join_ref);
  const ref = asRef(o.ref);
  if (joinRef === undefined || ref === undefined || typeof o.event !== 'string') return undefined;
  return { joinRef, ref, topic: o.topic, event: o.event, payload: o.payload };
}

function encode(_joinRef: unknown, ref: unknown, topic: unknown, event: string, payload: unknown): string {
  return JSON.stringify({ topic, event, payload, ref });
}

export const v1: Serializer = {
  name: 'v1',
  decode,
  decodeBinary: () => 'unsupported',
  encode,
};
