// The bus frame: the one engine-level message format every transport uses (text header line, then
// a body). Encoding and strict parsing only: no I/O, no state; a bad frame parses to undefined, never throws.
import { isUtf8 } from 'node:buffer';

/**
 * `tw1 <publisher> <seq> m <count>\n<message>\n<message>...`  count messages, one per line;
 * `tw1 <publisher> <seq> p <index> <parts>\n<bytes>`           part index (0-based) of one large message;
 * `tw1 <publisher> <seq> r <count>\n<ref>`                     count messages stored elsewhere under ref.
 * `seq` counts the publisher's frames on one channel from 1, so a receiver sees a lost frame as a gap.
 */
export const FRAME_TAG = 'tw1';

/** Bytes kept free for the header when packing: 'tw1 ' + publisher + seq + kind + two numbers. */
export const HEADER_RESERVE = 80;

const PUBLISHER = /^[A-Za-z0-9_-]{1,32}$/;
const REF = /^[A-Za-z0-9_.:-]{1,128}$/;
const HEADER = /^tw1 ([A-Za-z0-9_-]{1,32}) ([1-9][0-9]{0,15}) ([mpr]) ([0-9]{1,10})(?: ([0-9]{1,10}))?$/;
/** A frame's header is ASCII and short: a longer first line is not a frame. */
const MAX_HEADER = 128;

export type Frame =
  | { kind: 'm'; publisher: string; seq: number; messages: string[] }
  | { kind: 'p'; publisher: string; seq: number; index: number; parts: number; chunk: Buffer }
  | { kind: 'r'; publisher: string; seq: number; count: number; ref: string };

export function isPublisherId(id: string): boolean {
  return PUBLISHER.test(id);
}

export function isRef(ref: string): boolean {
  return REF.test(ref);
}

export function messagesFrame(publisher: string, seq: number, messages: string[]): string {
  return `${FRAME_TAG} ${publisher} ${seq} m ${messages.length}\n${messages.join('\n')}`;
}

export function partFrame(
  publisher: string,
  seq: number,
  index: number,
  parts: number,
  chunk: Buffer,
): Buffer {
  const header = Buffer.from(`${FRAME_TAG} ${publisher} ${seq} p ${index} ${parts}\n`, 'latin1');
  return Buffer.concat([header, chunk]);
}

export function refFrame(publisher: string, seq: number, count: number, ref: string): string {
  return `${FRAME_TAG} ${publisher} ${seq} r ${count}\n${ref}`;
}

/** The frame in `data`, or undefined when it is not one (malformed, wrong shape, bad UTF-8). */
export function parseFrame(data: string | Uint8Array): Frame | undefined {
  let header: string;
  let text: string | undefined;
  let bytes: Buffer | undefined;
  if (typeof data === 'string') {
    const nl = data.indexOf('\n');
    if (nl < 0 || nl > MAX_HEADER) return undefined;
    header = data.slice(0, nl);
    text = data.slice(nl + 1);
  } else {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const nl = buf.indexOf(10);
    if (nl < 0 || nl > MAX_HEADER) return undefined;
    header = buf.toString('latin1', 0, nl);
    bytes = buf.subarray(nl + 1);
  }
  const h = HEADER.exec(header);
  if (!h) return undefined;
  const publisher = h[1];
  const seq = Number(h[2]);
  const a = Number(h[4]);
  const b = h[5] === undefined ? undefined : Number(h[5]);
  if (!Number.isSafeInteger(seq)) return undefined;
  if (h[3] === 'p') {
    if (b === undefined || b < 2 || a >= b) return undefined;
    const chunk = bytes ?? Buffer.from(text ?? '', 'utf8');
    if (chunk.length === 0) return undefined;
    return { kind: 'p', publisher, seq, index: a, parts: b, chunk };
  }
  if (b !== undefined || a < 1) return undefined;
  if (text === undefined) {
    if (!isUtf8(bytes!)) return undefined;
    text = bytes!.toString('utf8');
  }
  if (h[3] === 'r') return REF.test(text) ? { kind: 'r', publisher, seq, count: a, ref: text } : undefined;
  const messages = text.split('\n');
  if (messages.length !== a) return undefined;
  return { kind: 'm', publisher, seq, messages };
}

/** Splits a stored body of `count` messages (a spilled reference) back into them, or undefined. */
export function splitBody(body: string, count: number): string[] | undefined {
  const messages = body.split('\n');
  return messages.length === count ? messages : undefined;
}
