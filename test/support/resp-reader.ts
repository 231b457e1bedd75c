// A test-side RESP2 reader, written from the protocol description and sharing
// no code with src/protocol: the harness (admin commands, the MONITOR taps,
// the fake servers) decodes what a server or a client sent with it, so a
// codec bug in src/protocol cannot hide in both the client and its oracle.
//
// Incremental: feed() takes the bytes as they arrive, in any split, and
// returns every complete top-level value so far (the rest waits for more
// bytes). Handles simple strings (+), errors (-), integers (:), bulk strings
// ($, $-1 is nil) and arrays (*, *-1 is nil; nested, with errors inside).
// Bulk and simple strings are decoded as UTF-8 text. Anything else is a
// RespProtocolError, and the reader refuses further input.

/** An error reply (-...), as a value: the message without the leading "-". */
export class RespError {
  constructor(readonly message: string) {}
}

/** The bytes are not RESP2. */
export class RespProtocolError extends Error {
  override name = "RespProtocolError";
}

/** Integers are numbers while safe (|n| <= 2^53 - 1), exact bigints beyond. */
export type RespValue = string | number | bigint | null | RespError | RespValue[];

const CR = 0x0d;
const LF = 0x0a;
const PLUS = 0x2b;
const MINUS = 0x2d;
const COLON = 0x3a;
const DOLLAR = 0x24;
const STAR = 0x2a;

/** Parsed value and the offset just past it; undefined: more bytes needed. */
type Step = { value: RespValue; end: number } | undefined;

const INTEGER = /^-?(0|[1-9][0-9]*)$/;

function integer(text: string, what: string): number {
  if (!INTEGER.test(text)) throw new RespProtocolError(`bad ${what}: ${JSON.stringify(text)}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RespProtocolError(`${what} out of range: ${text}`);
  return n;
}

/** An integer reply: a number while safe, else the exact bigint (never a rounded number). */
function integerReply(text: string): number | bigint {
  if (!INTEGER.test(text)) throw new RespProtocolError(`bad integer: ${JSON.stringify(text)}`);
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

/** Offset of the CR of the first CRLF at or after `from`; -1 if not all here yet. */
function lineEnd(buf: Buffer, from: number): number {
  for (let i = from; i < buf.length; i++) {
    if (buf[i] === CR) {
      if (i + 1 >= buf.length) return -1;
      if (buf[i + 1] !== LF) throw new RespProtocolError(`CR not followed by LF at offset ${i}`);
      return i;
    }
    if (buf[i] === LF) throw new RespProtocolError(`LF without CR at offset ${i}`);
  }
  return -1;
}

function parse(buf: Buffer, pos: number, depth: number): Step {
  if (pos >= buf.length) return undefined;
  const type = buf[pos];
  if (type !== PLUS && type !== MINUS && type !== COLON && type !== DOLLAR && type !== STAR) {
    throw new RespProtocolError(`unexpected type byte 0x${(type as number).toString(16)} at offset ${pos}`);
  }
  if (depth > 1000) throw new RespProtocolError("arrays nested deeper than 1000");
  const eol = lineEnd(buf, pos + 1);
  if (eol === -1) return undefined;
  const line = buf.toString("utf8", pos + 1, eol);
  const next = eol + 2;
  switch (type) {
    case PLUS:
      return { value: line, end: next };
    case MINUS:
      return { value: new RespError(line), end: next };
    case COLON:
      return { value: integerReply(line), end: next };
    case DOLLAR: {
      const length = integer(line, "bulk length");
      if (length === -1) return { value: null, end: next };
      if (length < -1) throw new RespProtocolError(`bad bulk length ${length}`);
      const end = next + length;
      if (end + 2 > buf.length) return undefined;
      if (buf[end] !== CR || buf[end + 1] !== LF) throw new RespProtocolError(`bulk string of ${length} bytes not followed by CRLF`);
      return { value: buf.toString("utf8", next, end), end: end + 2 };
    }
    default: {
      const count = integer(line, "array length");
      if (count === -1) return { value: null, end: next };
      if (count < -1) throw new RespProtocolError(`bad array length ${count}`);
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const step = parse(buf, at, depth + 1);
        if (step === undefined) return undefined;
        items.push(step.value);
        at = step.end;
      }
      return { value: items, end: at };
    }
  }
}

export class RespReader {
  private pending: Buffer = Buffer.alloc(0);
  private failure: RespProtocolError | undefined;

  /** Bytes received but not yet part of a complete value. */
  get buffered(): number {
    return this.pending.length;
  }

  /**
   * Add bytes; returns the complete values they finish, in order. Throws a
   * RespProtocolError on bytes that are not RESP2 (and on every call after).
   */
  feed(chunk: Buffer | string): RespValue[] {
    if (this.failure !== undefined) throw this.failure;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    const buf = this.pending.length === 0 ? bytes : Buffer.concat([this.pending, bytes]);
    const out: RespValue[] = [];
    let pos = 0;
    try {
      for (;;) {
        const step = parse(buf, pos, 0);
        if (step === undefined) break;
        out.push(step.value);
        pos = step.end;
      }
    } catch (err) {
      this.failure = err instanceof RespProtocolError ? err : new RespProtocolError(String(err));
      this.pending = Buffer.alloc(0);
      throw this.failure;
    }
    // Copy the tail: a small leftover must not pin a large chunk.
    this.pending = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
    return out;
  }
}

/** Every value of a complete byte string (throws if bytes are left over). */
export function readAll(bytes: Buffer | string): RespValue[] {
  const reader = new RespReader();
  const values = reader.feed(bytes);
  if (reader.buffered > 0) throw new RespProtocolError(`${reader.buffered} bytes left over: an incomplete value`);
  return values;
}
