// RESP reply decoding on top of redis-parser (RESP2).
//
// Buffer replies per command, not per parser: redis-parser reads its
// `optionReturnBuffers` flag at the moment it parses each value, and a
// connection's replies arrive in request order. So the owner of the waiter
// FIFO calls setReturnBuffers() with the wish of the command whose reply comes
// next (the FIFO head) whenever the head changes. String replies pay nothing:
// no second parser, no per-reply conversion, no Buffer-then-toString copy.
//
// maxReplyBytes: redis-parser buffers a bulk string until all of it has
// arrived, trusting the length header. A broken or hostile peer announcing
// `$1000000000` would make us buffer without limit, so we count the bytes fed
// since the last complete reply and fail the socket past the limit. The check
// runs after each chunk is parsed: a chunk holding many small complete replies
// is not one big reply (the count may miss the tail of a chunk that completed
// a reply, so the bound is maxReplyBytes plus about one socket read).
//
// Handlers may call reset() (the owner drops the socket and reuses the
// decoder). That happens inside redis-parser's execute(), which must not be
// reset under its own feet: it would carry half-parsed state into the new
// stream. So a reset (or failure) during execute() only marks the rest of the
// chunk as discarded, and the parser is reset when execute() returns.
//
// Integer replies (the `integers` option). redis-parser 3.0.0 reads `:<digits>`
// into a double one digit at a time (n = n * 10 + d), so past 2^53 it rounds,
// and not even to the nearest double (2^63 - 1 comes out as
// 9223372036854778000). Its stringNumbers mode is exact but returns strings,
// which inside an array (EXEC, ...) cannot be told from bulk strings. So:
//   "number" (default): numbers as before while |n| <= Number.MAX_SAFE_INTEGER,
//     a bigint beyond, never a rounded number;
//   "bigint": every integer reply is a bigint;
//   "string": every integer reply is its decimal string (stringNumbers mode).
// For "number" and "bigint", ExactIntegerParser hooks the one place where
// redis-parser looks at an integer before reading it: parseInteger() reads
// `optionStringNumbers`, with parser.buffer/offset at the first byte after
// ':'. Our getter answers false (parse as a number, as before) and, only when
// the integer has 16 digits or more (below that it is always safe: < 10^15),
// reads it exactly and keeps the value when it is beyond the safe range.
// Rounding is monotonic, so the parser's double is unsafe exactly when the
// true value is: after the reply is complete, its unsafe numbers, walked in
// parse order (depth first), are swapped for the kept bigints. Small integers
// pay one extra byte read per integer; replies without big integers are not
// walked (in "number" mode).
import RedisParser from "redis-parser";
import { ProtocolError, ReplyError } from "../errors.js";

/**
 * A decoded RESP2 reply. Nested error replies (inside EXEC results) become
 * ReplyError values. Integer replies are numbers, or bigints / strings as the
 * `integers` option says (see IntegerMode).
 */
export type Reply = string | number | bigint | Buffer | null | ReplyError | Reply[];

/**
 * How integer replies are returned, nested ones included. "number": a number
 * while it is a safe integer (|n| <= 2^53 - 1), a bigint beyond, never a
 * rounded number. "bigint": always a bigint. "string": always the decimal string.
 */
export type IntegerMode = "number" | "bigint" | "string";

export interface DecoderHandlers {
  onReply(reply: Reply): void;
  onErrorReply(error: ReplyError): void;
  onProtocolError(error: ProtocolError): void;
}

/** Redis' own proto-max-bulk-len default: no real reply to one command is larger by default. */
export const DEFAULT_MAX_REPLY_BYTES = 512 * 1024 * 1024;

// redis-parser types replies as `any`; this is the one place we narrow them.
type ParserValue = string | number | Buffer | null | Error | ParserValue[];

/** What the getter reads: redis-parser's own state while it parses an integer, and ours. */
interface ParserInternals {
  buffer: Buffer;
  offset: number;
  unsafe: bigint[];
}

/** A redis-parser that keeps the exact value of every integer beyond the safe range (see the top of this file). */
class ExactIntegerParser extends RedisParser {
  /** Exact values of the unsafe integers of the reply being parsed, in parse order. */
  unsafe: bigint[] = [];
  /** exactIntegers()' cursor in `unsafe`. */
  next = 0;

  override reset(): void {
    super.reset();
    this.unsafe = [];
  }
}

Object.defineProperty(ExactIntegerParser.prototype, "optionStringNumbers", {
  get(this: ParserInternals): boolean {
    // The 16th byte is a digit for any integer of 16 digits or more (signed
    // or not); with fewer (|n| < 10^15) it is always safe. That byte may also
    // belong to what follows a short integer: keep() checks. Past the end of
    // the buffer the integer is incomplete: redis-parser will parse it again.
    const buf = this.buffer;
    const i = this.offset + 15;
    if (i < buf.length) {
      const c = buf[i] as number;
      if (c >= 48 && c <= 57) keep(this);
    }
    return false;
  },
  // The base constructor calls setStringNumbers(false).
  set(_: boolean) {},
});

/** Slow path: the integer at parser.offset may have 16 digits or more. */
function keep(parser: ParserInternals): void {
  const buf = parser.buffer;
  const negative = buf[parser.offset] === 45; // '-'
  const start = negative ? parser.offset + 1 : parser.offset;
  // Same end test as redis-parser's: the "\r" must be followed by one more byte.
  const last = buf.length - 1;
  let end = start;
  while (end < last && buf[end] !== 13) end++;
  if (end >= last) return; // incomplete: redis-parser parses it again once more bytes came
  if (end - start < 16) return;
  // RESP integers are 64-bit: 20 digits at most. We read up to 30 exactly:
  // value = high * 10^15 + low, both exact doubles.
  const invalid = (): ProtocolError =>
    new ProtocolError(`Invalid RESP integer from server: ${JSON.stringify(buf.toString("latin1", parser.offset, Math.min(end, parser.offset + 40)))}`);
  if (end - start > 30) throw invalid();
  const split = end - 15;
  let high = 0;
  let low = 0;
  for (let i = start; i < end; i++) {
    const d = (buf[i] as number) - 48;
    if (d < 0 || d > 9) throw invalid();
    if (i < split) high = high * 10 + d;
    else low = low * 10 + d;
  }
  // Number.MAX_SAFE_INTEGER is 9_007199254740991.
  if (high < 9 || (high === 9 && low <= 7199254740991)) return;
  const value = BigInt(high) * 1_000_000_000_000_000n + BigInt(low);
  parser.unsafe.push(negative ? -value : value);
}

/**
 * Swap the unsafe numbers of a complete reply for their exact values (and,
 * for "bigint", the safe ones for bigints), depth first, in parse order.
 */
function exactIntegers(reply: Reply, parser: ExactIntegerParser, allBigint: boolean): Reply {
  parser.next = 0;
  const out = convertIntegers(reply, parser, allBigint);
  parser.unsafe.length = 0;
  return out;
}

function convertIntegers(v: Reply, parser: ExactIntegerParser, allBigint: boolean): Reply {
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return allBigint ? BigInt(v) : v;
    const exact = parser.unsafe[parser.next++];
    if (exact === undefined) throw new ProtocolError(`Invalid RESP integer from server (${v})`);
    return exact;
  }
  if (Array.isArray(v)) for (let i = 0; i < v.length; i++) v[i] = convertIntegers(v[i] as Reply, parser, allBigint);
  return v;
}

function convertNested(value: ParserValue[]): Reply[] {
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (v instanceof Error) value[i] = new ReplyError(v.message);
    else if (Array.isArray(v)) convertNested(v);
  }
  return value as Reply[];
}

export class Decoder {
  private readonly parser: RedisParser;
  private pendingBytes = 0;
  private failed = false;
  /** True while parser.execute() runs. */
  private executing = false;
  /** The stream was reset or failed during execute(): drop what the parser still delivers from it. */
  private discarding = false;

  constructor(
    private readonly handlers: DecoderHandlers,
    private readonly maxReplyBytes = DEFAULT_MAX_REPLY_BYTES,
    integers: IntegerMode = "number",
  ) {
    const allBigint = integers === "bigint";
    const options = {
      stringNumbers: integers === "string",
      returnReply: (reply: ParserValue) => {
        if (this.discarding) return;
        this.pendingBytes = 0;
        let r = Array.isArray(reply) ? convertNested(reply) : (reply as Reply);
        if (exact !== undefined && (allBigint || exact.unsafe.length !== 0)) r = exactIntegers(r, exact, allBigint);
        this.handlers.onReply(r);
      },
      returnError: (err: Error) => {
        if (this.discarding) return;
        this.pendingBytes = 0;
        this.handlers.onErrorReply(new ReplyError(err.message));
      },
      returnFatalError: (err: Error) => {
        if (this.discarding) return;
        this.fail(new ProtocolError(`Invalid RESP from server: ${err.message}`, { cause: err }));
      },
    };
    const exact = integers === "string" ? undefined : new ExactIntegerParser(options);
    this.parser = exact ?? new RedisParser(options);
  }

  /** Ask for Buffers (true) or strings (false) for the next reply parsed. */
  setReturnBuffers(returnBuffers: boolean): void {
    if (this.parser.optionReturnBuffers !== returnBuffers) this.parser.setReturnBuffers(returnBuffers);
  }

  /** Feed socket bytes. After a protocol error the decoder ignores further input. */
  write(chunk: Buffer): void {
    // Empty chunks are skipped: redis-parser 3.0.0 mis-slices a bulk string
    // whose pending chunks include an empty one ("$0\r\n\r" + "" + "\n" gives "\r").
    if (this.failed || chunk.length === 0) return;
    this.pendingBytes += chunk.length;
    this.executing = true;
    try {
      this.parser.execute(chunk);
    } catch (err) {
      // A handler that throws must not leave the parser half way through a
      // buffer; treat it like corrupt input: the socket is no longer in sync.
      // (Unless a handler already reset the stream: then the error is the old stream's.)
      if (!this.discarding) {
        if (err instanceof ProtocolError) this.fail(err);
        else this.fail(new ProtocolError("Reply handling failed", { cause: err }));
      }
    } finally {
      this.executing = false;
    }
    if (this.discarding) {
      this.discarding = false;
      this.parser.reset();
      return;
    }
    if (this.pendingBytes > this.maxReplyBytes) {
      this.fail(new ProtocolError(`Reply exceeds maxReplyBytes (${this.maxReplyBytes} bytes)`));
    }
  }

  /** Forget any partial reply (a new socket starts clean). Safe to call from a handler. */
  reset(): void {
    this.pendingBytes = 0;
    this.failed = false;
    this.resetParser();
  }

  private resetParser(): void {
    if (this.executing) this.discarding = true;
    else this.parser.reset();
  }

  private fail(error: ProtocolError): void {
    if (this.failed) return;
    this.failed = true;
    this.resetParser();
    this.handlers.onProtocolError(error);
  }
}
