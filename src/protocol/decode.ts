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
import RedisParser from "redis-parser";
import { ProtocolError, ReplyError } from "../errors.js";

/** A decoded RESP2 reply. Nested error replies (inside EXEC results) become ReplyError values. */
export type Reply = string | number | Buffer | null | ReplyError | Reply[];

export interface DecoderHandlers {
  onReply(reply: Reply): void;
  onErrorReply(error: ReplyError): void;
  onProtocolError(error: ProtocolError): void;
}

/** Redis' own proto-max-bulk-len default: no real reply to one command is larger by default. */
export const DEFAULT_MAX_REPLY_BYTES = 512 * 1024 * 1024;

// redis-parser types replies as `any`; this is the one place we narrow them.
type ParserValue = string | number | Buffer | null | Error | ParserValue[];

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
  ) {
    this.parser = new RedisParser({
      returnReply: (reply: ParserValue) => {
        if (this.discarding) return;
        this.pendingBytes = 0;
        this.handlers.onReply(Array.isArray(reply) ? convertNested(reply) : (reply as Reply));
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
    });
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
