// An incremental RESP2 + RESP3 reply decoder, written for this client.
//
// Why not redis-parser (RESP2 only)? Measured in bench/decoder.ts: it
// concatenates a multi-chunk bulk string chunk by chunk (StringDecoder for
// strings), copies Buffer replies into a module-level pool sized 3x the
// largest reply (a 32 MiB Buffer reply leaves ~96 MiB allocated after the
// reply is dropped), and shrinks that pool on a module-level setInterval that
// keeps the process alive after every socket closed. This decoder has no
// timers and nothing at module level but constants.
//
// Shape of the decoder:
//   - One pass over each chunk, no recursion: nested aggregates live on an
//     explicit stack (parallel arrays, at most maxDepth deep; deeper input is
//     a ProtocolError, never a stack overflow).
//   - A bulk string ($, ! blob error, = verbatim) whose bytes are in the chunk
//     is sliced (Buffer) or decoded (string) straight from it. One that is not
//     gets a Buffer of exactly its announced length, allocated once, and the
//     following chunks are copied into it: never concatenated chunk by chunk.
//     A string reply is decoded from that Buffer once, when it is complete.
//   - The announced length is checked against maxReplyBytes before anything
//     is allocated: `$1000000000` fails at once. Aggregates are bounded by
//     counting the bytes of the reply in progress (an aggregate header
//     announces no byte size).
//   - A line (header, simple string, integer, double...) cut by the end of a
//     chunk is copied out (a few bytes) and completed from the next chunks.
//     The decoder holds input only while a reply is incomplete (that copy, a
//     bulk being assembled, the aggregates open) and nothing once a reply is
//     delivered. (A Buffer reply that fits in its chunk is a view of that
//     chunk, zero-copy as before: whoever keeps the Buffer keeps the chunk.)
//   - Buffer or string is read per value from a flag the owner sets
//     (setReturnBuffers) whenever the next reply belongs to another command;
//     string replies pay nothing for it.
//
// Reply representation (the `replies` option):
//   "compat" (default): RESP3 values take the shape of the RESP2 reply Redis
//     sends for the same command: map -> flat array [k1, v1, k2, v2, ...],
//     set -> array, double -> its text as a bulk string (e.g. "3.14", "inf",
//     "-inf", "nan"), big number -> its decimal text as a bulk string (RESP2
//     has no big number type; text is exact, a number would not be),
//     boolean -> integer 1 / 0 (what Redis' addReplyBool sends in RESP2, in
//     the integer mode), null (`_`) -> null, verbatim string -> its text
//     without the `xxx:` format prefix. Text follows the Buffer wish, as the
//     bulk string it replaces would. What compat cannot undo: a few commands
//     nest differently in RESP3 (ZRANGE ... WITHSCORES, ZPOPMIN/ZPOPMAX with a
//     count, ZRANDMEMBER WITHSCORES, HRANDFIELD WITHVALUES, ZUNION/ZINTER/
//     ZDIFF WITHSCORES give [[member, score], ...] where RESP2 is flat): only
//     the layer that knows the command can flatten those.
//   "native": Map for maps, Set for sets, number for doubles (Infinity,
//     -Infinity, NaN), boolean for booleans, bigint for big numbers, null.
//     Map keys and Set members that are strings on the wire are always
//     decoded as strings, even when Buffers are asked for: a Map keyed by
//     Buffers could not be looked up (Buffers compare by identity). Values
//     follow the Buffer wish. Verbatim strings are their text (format dropped).
//   In both modes: attributes (`|`) are read and dropped; the value after
//   them takes their place. Errors (`-`, `!` blob errors) become ReplyError:
//   top level through onErrorReply, nested as values. A top-level push frame
//   (`>`) goes to onPush, never onReply (a push nested in an aggregate is an
//   array). Streamed strings and aggregates (`$?`, `*?`, ...) are protocol
//   errors: Redis never sends them.
//
// Integers (`:`, and booleans in compat mode) follow the `integers` option:
//   "number" (default): a number while |n| <= Number.MAX_SAFE_INTEGER, an
//     exact bigint beyond, never a rounded number; "bigint": always a bigint;
//   "string": always the decimal text as sent.
//
// Reentrancy: handlers may call reset() or setReturnBuffers(); a reset (or a
// failure) inside a handler drops the rest of the chunk being decoded. A
// handler that throws fails the stream with a ProtocolError ("Reply handling
// failed"), as corrupt input would: it is no longer in sync.
import { isAscii } from "node:buffer";
import { ProtocolError, ReplyError } from "../errors.js";

/**
 * A decoded reply. Error replies nested in aggregates (EXEC results) are
 * ReplyError values. Integers are numbers, or bigints / strings as the
 * `integers` option says. With `replies: "native"` (RESP3), maps are Map,
 * sets Set, booleans boolean, doubles number and big numbers bigint; with the
 * default `replies: "compat"`, RESP3 values take their RESP2 shape and never
 * use boolean, Map or Set.
 */
export type Reply = string | number | bigint | boolean | Buffer | null | ReplyError | Reply[] | Map<Reply, Reply> | Set<Reply>;

/**
 * How integer replies are returned, nested ones included. "number": a number
 * while it is a safe integer (|n| <= 2^53 - 1), a bigint beyond, never a
 * rounded number. "bigint": always a bigint. "string": always the decimal string.
 */
export type IntegerMode = "number" | "bigint" | "string";

/** How RESP3 values are represented (see the top of resp-decoder.ts). */
export type ReplyMode = "compat" | "native";

export interface DecoderHandlers {
  onReply(reply: Reply): void;
  onErrorReply(error: ReplyError): void;
  onProtocolError(error: ProtocolError): void;
  /**
   * A RESP3 push frame (`>`: pub/sub messages, client-side caching
   * invalidations), never delivered through onReply. Without this handler a
   * push frame is a protocol error.
   */
  onPush?(frame: Reply[]): void;
}

export interface RespDecoderOptions {
  /** Largest reply accepted, in bytes (default: Redis' proto-max-bulk-len, 512 MiB). */
  maxReplyBytes?: number;
  /** Integer representation (default "number"). */
  integers?: IntegerMode;
  /** RESP3 value representation (default "compat"). */
  replies?: ReplyMode;
  /** Deepest nesting of aggregates accepted (default 128). */
  maxDepth?: number;
}

/** Redis' own proto-max-bulk-len default: no real reply to one command is larger by default. */
export const DEFAULT_MAX_REPLY_BYTES = 512 * 1024 * 1024;

/** Redis' deepest replies nest a handful of levels; 128 leaves room and bounds the stack. */
export const DEFAULT_MAX_DEPTH = 128;

// Node's Buffer has these undocumented but long-stable methods; toString()
// is a checking wrapper around them (about 10 ns per call less).
interface SliceBuffer {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
}

const utf8 = (buf: Buffer, start: number, end: number): string => (buf as unknown as SliceBuffer).utf8Slice(start, end);
const latin1 = (buf: Buffer, start: number, end: number): string => (buf as unknown as SliceBuffer).latin1Slice(start, end);

/** From this length on, text is checked for ASCII first (SIMD, ~1 µs per 100 KiB): a Latin-1 decode is ~30% cheaper than UTF-8's. */
const ASCII_CHECK_FROM = 2048;

/** A bulk string's text. */
function text(buf: Buffer, start: number, end: number): string {
  if (end - start >= ASCII_CHECK_FROM && isAscii(start === 0 && end === buf.length ? buf : buf.subarray(start, end))) return latin1(buf, start, end);
  return utf8(buf, start, end);
}

// Frame kinds of the aggregate stack.
const K_ARRAY = 0; // arrays, compat maps and sets, nested pushes
const K_PUSH = 1; // a top-level push frame
const K_MAP = 2; // native map
const K_SET = 3; // native set
const K_ATTR = 4; // attribute: read, then dropped

const INT_NUMBER = 0;
const INT_BIGINT = 1;
const INT_STRING = 2;

// Byte values.
const CR = 13;
const LF = 10;
const MINUS = 45;
const T_BULK = 36; // $
const T_ARRAY = 42; // *
const T_SIMPLE = 43; // +
const T_ERROR = 45; // -
const T_INTEGER = 58; // :
const T_NULL = 95; // _
const T_DOUBLE = 44; // ,
const T_BOOLEAN = 35; // #
const T_BLOB_ERROR = 33; // !
const T_VERBATIM = 61; // =
const T_BIG_NUMBER = 40; // (
const T_MAP = 37; // %
const T_SET = 126; // ~
const T_ATTRIBUTE = 124; // |
const T_PUSH = 62; // >

/** Aggregate headers are capped here (2^53 would not be exact; no reply comes near). */
const MAX_COUNT_DIGITS = 15;
/** count(): the header line is cut by the end of the chunk. */
const CUT = -2;
/** count(): "-1", RESP2's null bulk string or null array. */
const NULL_COUNT = -1;
/** Arrays up to this many elements are allocated at their size up front; longer ones grow as they fill. */
const PREALLOCATE = 4096;

/** item(): nothing to place (an aggregate was opened). */
const NONE: unique symbol = Symbol("none");
/** item(): stop decoding this buffer (a bulk string is being assembled, or the stream failed). */
const STOP: unique symbol = Symbol("stop");

const DOUBLE_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const BIG_NUMBER_TEXT = /^[+-]?\d+$/;

function badInteger(): ProtocolError {
  return new ProtocolError("Invalid RESP integer from server: not a decimal integer of 1 to 30 digits");
}

function invalid(what: string): ProtocolError {
  return new ProtocolError(`Invalid RESP from server: ${what}`);
}

/** The name of an item by its type byte, for error messages (which never quote reply bytes: they may be anyone's data). */
function typeName(type: number): string {
  return JSON.stringify(String.fromCharCode(type));
}

export class RespDecoder {
  private returnBuffers = false;
  /** Buffer wish for values inside a top-level push frame (undefined: the same as returnBuffers). */
  private pushReturnBuffers: boolean | undefined;
  private readonly maxReplyBytes: number;
  private readonly maxDepth: number;
  private readonly intMode: number;
  private readonly native: boolean;

  // The aggregate stack: frame f (0 = outermost) is open for depth > f.
  private depth = 0;
  private readonly kinds: number[] = [];
  private readonly values: (Reply[] | Map<Reply, Reply> | Set<Reply> | null)[] = [];
  /** Elements still to read (maps count keys and values). */
  private readonly left: number[] = [];
  /** Next slot of an array frame. */
  private readonly index: number[] = [];
  /** A native map's key waiting for its value. */
  private readonly keys: Reply[] = [];
  /** A top-level push frame is open: its values use the push Buffer wish. */
  private inPush = false;

  /** A bulk string being assembled across chunks: exactly its announced length. */
  private bulk: Buffer | null = null;
  private bulkType = 0;
  private bulkFilled = 0;
  /** Bytes of the bulk's closing CRLF still to read (2, 1, 0). */
  private bulkCrlf = 0;

  /** The start of a line cut by the end of a chunk (copied out), waiting for its LF. */
  private tail: Buffer[] | null = null;
  private tailBytes = 0;

  /** Bytes of the reply in progress seen in earlier buffers. */
  private pending = 0;
  /** Next read position, set by the scalar readers. */
  private p = 0;
  /** Bumped by reset() and fail(): a decode loop that sees it change stops at once. */
  private gen = 0;
  private failed = false;

  constructor(
    private readonly handlers: DecoderHandlers,
    options: RespDecoderOptions = {},
  ) {
    this.maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    const integers = options.integers ?? "number";
    this.intMode = integers === "bigint" ? INT_BIGINT : integers === "string" ? INT_STRING : INT_NUMBER;
    this.native = options.replies === "native";
  }

  /** Ask for Buffers (true) or strings (false) for the values of the next reply decoded. */
  setReturnBuffers(returnBuffers: boolean): void {
    this.returnBuffers = returnBuffers;
  }

  /** Buffers or strings inside top-level push frames, whatever the next reply wants (undefined: follow setReturnBuffers). */
  setPushReturnBuffers(returnBuffers: boolean | undefined): void {
    this.pushReturnBuffers = returnBuffers;
  }

  /** Feed socket bytes. After a protocol error the decoder ignores further input until reset(). */
  write(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    const gen = this.gen;
    try {
      if (this.tail !== null) {
        const lf = chunk.indexOf(LF);
        if (lf === -1) {
          this.tail.push(chunk);
          this.tailBytes += chunk.length;
          this.pending += chunk.length;
        } else {
          // The cut line ends in this chunk: decode it alone, then the rest.
          this.tail.push(chunk.subarray(0, lf + 1));
          const line = Buffer.concat(this.tail);
          this.pending -= this.tailBytes; // counted again as part of `line`
          this.tail = null;
          this.tailBytes = 0;
          this.feed(line, 0, gen);
          if (this.gen !== gen) return;
          // Every item is complete once its line is: still cut means malformed (`#t\n`).
          if (this.tail !== null) throw invalid(`malformed ${typeName(line[0] as number)} line`);
          this.feed(chunk, lf + 1, gen);
        }
      } else {
        this.feed(chunk, 0, gen);
      }
    } catch (err) {
      // A handler that throws must not leave the decoder half way through a
      // chunk; treat it like corrupt input (unless a handler already reset
      // the stream: then the error belongs to the old one).
      if (this.gen === gen) {
        if (err instanceof ProtocolError) this.fail(err);
        else this.fail(new ProtocolError("Reply handling failed", { cause: err }));
      }
      return;
    }
    if (this.gen === gen && this.pending > this.maxReplyBytes) this.failTooLarge();
  }

  /** Forget any partial reply (a new socket starts clean). Safe to call from a handler. */
  reset(): void {
    this.failed = false;
    this.clear();
  }

  private clear(): void {
    this.gen++;
    for (let f = 0; f < this.depth; f++) {
      this.values[f] = null;
      this.keys[f] = null;
    }
    this.depth = 0;
    this.inPush = false;
    this.bulk = null;
    this.tail = null;
    this.tailBytes = 0;
    this.pending = 0;
  }

  private fail(error: ProtocolError): void {
    if (this.failed) return;
    this.failed = true;
    this.clear();
    this.handlers.onProtocolError(error);
  }

  private failTooLarge(): void {
    this.fail(new ProtocolError(`Reply exceeds maxReplyBytes (${this.maxReplyBytes} bytes)`));
  }

  /** Decode buf from pos on. Returns early when a handler reset the stream (gen changed). */
  private feed(buf: Buffer, pos: number, gen: number): void {
    const len = buf.length;
    /** Where the bytes of the reply in progress start in buf. */
    let mark = pos;

    if (this.bulk !== null) {
      pos = this.fillBulk(buf, pos);
      if (pos < 0) {
        this.pending += len - mark;
        return;
      }
      const type = this.bulkType;
      const bulk = this.bulk;
      this.bulk = null;
      const v = this.bulkValue(type, bulk, 0, bulk.length);
      if (this.depth === 0) {
        if (type === T_BLOB_ERROR) this.handlers.onErrorReply(v as ReplyError);
        else this.handlers.onReply(v);
        if (this.gen !== gen) return;
        this.pending = 0;
        mark = pos;
      } else if (this.place(v)) {
        if (this.gen !== gen) return;
        this.pending = 0;
        mark = pos;
      }
    }

    while (pos < len) {
      const type = buf[pos] as number;
      let v: Reply | typeof NONE | typeof STOP | undefined;
      let next = 0;
      // The common cases inline: a bulk string wholly in this buffer, a
      // small integer, an array header opening a frame.
      if (type === T_BULK) {
        let i = pos + 1;
        let n = 0;
        let c = 0;
        while (i < len && (c = buf[i] as number) >= 48 && c <= 57) {
          n = n * 10 + (c - 48);
          i++;
        }
        const start = i + 2;
        const end = start + n;
        if (c === CR && end + 2 <= len && i > pos + 1 && i - pos <= MAX_COUNT_DIGITS + 1 && buf[i + 1] === LF && buf[end] === CR && buf[end + 1] === LF) {
          v = this.wantBuffers() ? buf.subarray(start, end) : text(buf, start, end);
          next = end + 2;
        }
      } else if (type === T_INTEGER) {
        let i = pos + 1;
        const negative = i < len && buf[i] === MINUS;
        if (negative) i++;
        const digits = i;
        let n = 0;
        let c = 0;
        while (i < len && (c = buf[i] as number) >= 48 && c <= 57) {
          n = n * 10 + (c - 48);
          i++;
        }
        // Up to 15 digits: exact as a double, whatever the mode.
        if (c === CR && i + 1 < len && buf[i + 1] === LF && i > digits && i - digits <= 15 && this.intMode === INT_NUMBER) {
          v = negative ? -n : n;
          next = i + 2;
        }
      } else if (type === T_ARRAY) {
        let i = pos + 1;
        let n = 0;
        let c = 0;
        while (i < len && (c = buf[i] as number) >= 48 && c <= 57) {
          n = n * 10 + (c - 48);
          i++;
        }
        const f = this.depth;
        if (c === CR && i + 1 < len && buf[i + 1] === LF && n > 0 && n <= PREALLOCATE && i - pos <= 5 && f < this.maxDepth) {
          this.kinds[f] = K_ARRAY;
          this.values[f] = new Array<Reply>(n);
          this.left[f] = n;
          this.index[f] = 0;
          this.depth = f + 1;
          pos = i + 2;
          continue;
        }
      }
      if (v === undefined) {
        v = this.item(type, buf, pos, len, mark);
        if (v === undefined) {
          // The item at pos is cut by the end of the buffer: keep a copy of its start.
          this.tail = [Buffer.from(buf.subarray(pos))];
          this.tailBytes = len - pos;
          this.pending += len - mark;
          return;
        }
        if (v === STOP) {
          // A bulk string is being assembled (or the stream failed).
          if (this.gen === gen) this.pending += len - mark;
          return;
        }
        next = this.p;
        if (v === NONE) {
          pos = next;
          continue;
        }
      }
      pos = next;
      const value = v as Reply; // NONE and STOP were handled above
      if (this.depth === 0) {
        if (type === T_ERROR || type === T_BLOB_ERROR) this.handlers.onErrorReply(value as ReplyError);
        else if (type === T_PUSH) this.deliverPush(value as Reply[]);
        else this.handlers.onReply(value);
        if (this.gen !== gen) return;
        this.pending = 0;
        mark = pos;
      } else if (this.place(value)) {
        if (this.gen !== gen) return;
        this.pending = 0;
        mark = pos;
      }
    }
    this.pending += len - mark;
  }

  /**
   * Decode the item at pos (its type byte `type`), setting this.p past it.
   * Returns its value; NONE when there is no value to place (an aggregate
   * was opened, an empty attribute read); STOP when a bulk string started
   * assembling across chunks (or the stream failed); undefined when the
   * item is cut by the end of the buffer.
   */
  private item(type: number, buf: Buffer, pos: number, len: number, mark: number): Reply | typeof NONE | typeof STOP | undefined {
    switch (type) {
      case T_BULK:
      case T_BLOB_ERROR:
      case T_VERBATIM: {
        const n = this.count(buf, pos, len, type === T_BULK);
        if (n === CUT) return undefined;
        if (n === NULL_COUNT) return null; // "$-1": the RESP2 null bulk string
        const start = this.p;
        const end = start + n;
        if (end + 2 <= len) {
          if (buf[end] !== CR || buf[end + 1] !== LF) throw invalid(`bulk string not terminated by CRLF at its announced length ${n}`);
          this.p = end + 2;
          return this.bulkValue(type, buf, start, end);
        }
        // The bytes are not all here: one Buffer of the announced length, filled as chunks come.
        if (n > this.maxReplyBytes - this.pending - (start - mark)) {
          this.failTooLarge();
          return STOP;
        }
        this.bulk = Buffer.allocUnsafe(n);
        this.bulkType = type;
        this.bulkFilled = 0;
        this.bulkCrlf = 2;
        this.fillBulk(buf, start); // cannot complete: end + 2 > len
        return STOP;
      }
      case T_ARRAY:
      case T_MAP:
      case T_SET:
      case T_PUSH:
      case T_ATTRIBUTE: {
        const n = this.count(buf, pos, len, type === T_ARRAY);
        if (n === CUT) return undefined;
        if (n === NULL_COUNT) return null; // "*-1": the RESP2 null array
        return this.open(type, n);
      }
      case T_SIMPLE:
      case T_ERROR: {
        const end = this.lineEnd(buf, pos + 1, len);
        if (end < 0) return undefined;
        this.p = end + 2;
        if (type === T_ERROR) return new ReplyError(utf8(buf, pos + 1, end));
        return this.wantBuffers() ? buf.subarray(pos + 1, end) : utf8(buf, pos + 1, end);
      }
      case T_INTEGER:
        return this.integer(buf, pos, len);
      case T_NULL:
        if (pos + 2 >= len) return undefined;
        if (buf[pos + 1] !== CR || buf[pos + 2] !== LF) throw invalid("bad null");
        this.p = pos + 3;
        return null;
      case T_BOOLEAN: {
        if (pos + 3 >= len) return undefined;
        const c = buf[pos + 1];
        if ((c !== 116 && c !== 102) || buf[pos + 2] !== CR || buf[pos + 3] !== LF) throw invalid("bad boolean");
        this.p = pos + 4;
        const truth = c === 116; // 't'
        if (this.native) return truth;
        // As RESP2 sends it: an integer reply.
        return this.intMode === INT_NUMBER ? (truth ? 1 : 0) : this.intMode === INT_BIGINT ? (truth ? 1n : 0n) : truth ? "1" : "0";
      }
      case T_DOUBLE:
      case T_BIG_NUMBER:
        return this.numberLine(type, buf, pos, len);
      default:
        throw invalid(`got ${JSON.stringify(String.fromCharCode(type))} as reply type byte`);
    }
  }

  /** Open an aggregate of n elements (the header was read). */
  /**
   * The decimal length or count after the type byte at `pos` ("$5\r\n",
   * "*3\r\n"); `this.p` is set past its line. CUT when the line is not all
   * here yet; NULL_COUNT for "-1" where `nullable` (RESP2's null bulk string
   * and null array). Anything else is a ProtocolError.
   */
  private count(buf: Buffer, pos: number, len: number, nullable: boolean): number {
    let i = pos + 1;
    if (i < len && buf[i] === MINUS && nullable) {
      if (i + 3 >= len) return CUT;
      if (buf[i + 1] !== 49 || buf[i + 2] !== CR || buf[i + 3] !== LF) throw this.badLength(buf, pos);
      this.p = i + 4;
      return NULL_COUNT;
    }
    let n = 0;
    let c = 0;
    while (i < len && (c = buf[i] as number) !== CR) {
      if (c < 48 || c > 57) throw this.badLength(buf, pos);
      n = n * 10 + (c - 48);
      i++;
    }
    if (i - pos > MAX_COUNT_DIGITS + 1) throw this.badLength(buf, pos);
    if (i + 1 >= len) return CUT;
    if (buf[i + 1] !== LF || i === pos + 1) throw this.badLength(buf, pos);
    this.p = i + 2;
    return n;
  }

  private open(type: number, n: number): Reply | typeof NONE {
    const f = this.depth;
    if (n === 0) {
      if (type === T_ATTRIBUTE) return NONE; // an empty attribute: nothing to drop, nothing to deliver
      if (this.native) return type === T_MAP ? new Map() : type === T_SET ? new Set() : [];
      return [];
    }
    if (f >= this.maxDepth) throw invalid(`aggregates nested deeper than ${this.maxDepth}`);
    let kind = K_ARRAY;
    let count = n;
    let value: Reply[] | Map<Reply, Reply> | Set<Reply> | null;
    if (type === T_MAP) {
      count = 2 * n;
      if (this.native) {
        kind = K_MAP;
        value = new Map();
      } else {
        value = count <= PREALLOCATE ? new Array<Reply>(count) : [];
      }
    } else if (type === T_SET && this.native) {
      kind = K_SET;
      value = new Set();
    } else if (type === T_ATTRIBUTE) {
      kind = K_ATTR;
      count = 2 * n;
      value = null;
    } else {
      if (type === T_PUSH && f === 0) {
        kind = K_PUSH;
        this.inPush = true;
      }
      value = n <= PREALLOCATE ? new Array<Reply>(n) : [];
    }
    this.kinds[f] = kind;
    this.values[f] = value;
    this.left[f] = count;
    this.index[f] = 0;
    this.depth = f + 1;
    return NONE;
  }

  /**
   * Put a complete value into the open aggregate, closing every aggregate it
   * completes; a complete top-level reply is delivered. Returns true when
   * one was (push frames included).
   */
  private place(v: Reply): boolean {
    let d = this.depth;
    while (d > 0) {
      const f = d - 1;
      const kind = this.kinds[f] as number;
      const target = this.values[f];
      if (kind === K_ARRAY || kind === K_PUSH) {
        (target as Reply[])[(this.index[f] as number)++] = v;
      } else if (kind === K_MAP) {
        if (((this.left[f] as number) & 1) === 0) this.keys[f] = v;
        else {
          (target as Map<Reply, Reply>).set(this.keys[f] as Reply, v);
          this.keys[f] = null;
        }
      } else if (kind === K_SET) {
        (target as Set<Reply>).add(v);
      }
      // K_ATTR: the attribute's keys and values are dropped.
      const left = (this.left[f] as number) - 1;
      this.left[f] = left;
      if (left !== 0) return false;
      this.values[f] = null;
      d = f;
      this.depth = f;
      if (kind === K_ATTR) return false; // not a value: the next one takes its place
      v = target as Reply;
      if (kind === K_PUSH) {
        this.deliverPush(v as Reply[]);
        return true;
      }
    }
    this.handlers.onReply(v);
    return true;
  }

  private deliverPush(frame: Reply[]): void {
    this.inPush = false;
    const onPush = this.handlers.onPush;
    if (onPush === undefined) {
      this.fail(invalid("a RESP3 push frame, and no push handler"));
      return;
    }
    onPush.call(this.handlers, frame);
  }

  /** Buffers for the value being decoded? */
  private wantBuffers(): boolean {
    const wish = this.inPush && this.pushReturnBuffers !== undefined ? this.pushReturnBuffers : this.returnBuffers;
    if (!wish || !this.native || this.depth === 0) return wish;
    // Native maps' keys and sets' members are strings (see the top of the file).
    const f = this.depth - 1;
    const kind = this.kinds[f];
    return !(kind === K_SET || (kind === K_MAP && ((this.left[f] as number) & 1) === 0));
  }

  /** The value of a complete bulk-like item (not a plain `$` read from a chunk). */
  private bulkValue(type: number, buf: Buffer, start: number, end: number): Reply {
    if (type === T_BULK) return this.wantBuffers() ? (start === 0 && end === buf.length ? buf : buf.subarray(start, end)) : text(buf, start, end);
    if (type === T_BLOB_ERROR) return new ReplyError(text(buf, start, end));
    // Verbatim string: three bytes of format, ':', the text.
    if (end - start < 4 || buf[start + 3] !== 58) throw invalid("verbatim string without its format prefix");
    return this.wantBuffers() ? buf.subarray(start + 4, end) : text(buf, start + 4, end);
  }

  /** Copy what buf holds of the bulk in progress. Returns the position after it, or -1 when it needs more. */
  private fillBulk(buf: Buffer, pos: number): number {
    const bulk = this.bulk as Buffer;
    const len = buf.length;
    const need = bulk.length - this.bulkFilled;
    if (need > 0) {
      const take = Math.min(need, len - pos);
      buf.copy(bulk, this.bulkFilled, pos, pos + take);
      this.bulkFilled += take;
      pos += take;
      if (take < need) return -1;
    }
    while (this.bulkCrlf > 0) {
      if (pos >= len) return -1;
      if (buf[pos] !== (this.bulkCrlf === 2 ? CR : LF)) throw invalid(`bulk string not terminated by CRLF at its announced length ${bulk.length}`);
      pos++;
      this.bulkCrlf--;
    }
    return pos;
  }

  /** Index of the CR ending the line that starts at `from`, or -1 when the line is cut. CR or LF alone is an error. */
  private lineEnd(buf: Buffer, from: number, len: number): number {
    for (let i = from; i < len; i++) {
      const c = buf[i];
      if (c === CR) {
        if (i + 1 >= len) return -1;
        if (buf[i + 1] !== LF) throw invalid(`CR without LF in a ${typeName(buf[from - 1] as number)} line`);
        return i;
      }
      if (c === LF) throw invalid(`LF without CR in a ${typeName(buf[from - 1] as number)} line`);
    }
    return -1;
  }

  private badLength(buf: Buffer, pos: number): ProtocolError {
    if (buf[pos + 1] === 63) return invalid("streamed RESP3 strings and aggregates are not supported"); // '?'
    return invalid(`bad length in a ${typeName(buf[pos] as number)} header`);
  }

  /** `:` integer at pos; undefined when cut. */
  private integer(buf: Buffer, pos: number, len: number): Reply | undefined {
    let i = pos + 1;
    const negative = i < len && buf[i] === MINUS;
    if (negative) i++;
    const digits = i;
    let n = 0;
    let c = 0;
    while (i < len && (c = buf[i] as number) !== CR) {
      if (c < 48 || c > 57) throw badInteger();
      n = n * 10 + (c - 48);
      i++;
    }
    const count = i - digits;
    if (i + 1 >= len) {
      if (count > 30) throw badInteger();
      return undefined;
    }
    if (buf[i + 1] !== LF || count === 0 || count > 30) throw badInteger();
    this.p = i + 2;
    const mode = this.intMode;
    if (mode === INT_STRING) return latin1(buf, pos + 1, i);
    if (count <= 15) {
      // Below 10^15: exact as a double.
      const value = negative ? -n : n;
      return mode === INT_NUMBER ? value : BigInt(value);
    }
    const exact = BigInt(latin1(buf, pos + 1, i));
    if (mode === INT_BIGINT) return exact;
    return exact <= 9007199254740991n && exact >= -9007199254740991n ? Number(exact) : exact;
  }

  /** `,` double or `(` big number at pos; undefined when cut. */
  private numberLine(type: number, buf: Buffer, pos: number, len: number): Reply | undefined {
    const end = this.lineEnd(buf, pos + 1, len);
    if (end < 0) {
      if (len - pos > 1024) throw invalid(`${typeName(type)} number longer than 1024 bytes`);
      return undefined;
    }
    this.p = end + 2;
    const text = latin1(buf, pos + 1, end);
    if (type === T_DOUBLE) {
      const special = text === "inf" || text === "-inf" || text === "+inf" || text === "nan" || text === "-nan";
      if (!special && !DOUBLE_TEXT.test(text)) throw invalid("bad double");
      if (this.native) return special ? (text.endsWith("nan") ? NaN : text.startsWith("-") ? -Infinity : Infinity) : Number(text);
    } else {
      if (!BIG_NUMBER_TEXT.test(text)) throw invalid("bad big number");
      if (this.native) return BigInt(text);
    }
    return this.wantBuffers() ? buf.subarray(pos + 1, end) : text;
  }
}
