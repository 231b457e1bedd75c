// RESP reply decoding: the Decoder every connection uses. It is the
// hand-written RESP2 + RESP3 decoder of resp-decoder.ts (see there for the
// design and the reply representation), behind the constructor the rest of
// the client has always called. redis-parser, used before, lost on every
// measure of bench/decoder.ts (speed of small and large replies, memory
// retained after a large Buffer reply, a timer left running after close).
//
// Buffer replies per command, not per decoder: replies arrive in request
// order, so the owner of the waiter FIFO calls setReturnBuffers() with the
// wish of the command whose reply comes next (the FIFO head) whenever the
// head changes; the decoder reads the flag as it builds each value. String
// replies pay nothing for it.
//
// maxReplyBytes: a bulk string announcing more than the limit fails at once,
// before anything is allocated; an aggregate fails once the bytes of the
// reply in progress pass the limit.
//
// Handlers may call reset() (the owner drops the socket and reuses the
// decoder) or setReturnBuffers(); a reset inside a handler drops the rest of
// the chunk being decoded. A handler that throws fails the stream.
import {
  DEFAULT_MAX_REPLY_BYTES,
  RespDecoder,
  type DecoderHandlers,
  type IntegerMode,
  type Reply,
  type ReplyMode,
} from "./resp-decoder.js";

export { DEFAULT_MAX_DEPTH, DEFAULT_MAX_REPLY_BYTES } from "./resp-decoder.js";
export type { DecoderHandlers, IntegerMode, Reply, ReplyMode } from "./resp-decoder.js";

export interface DecoderOptions {
  /** RESP3 value representation: "compat" (default, RESP2 shapes) or "native" (Map, Set, boolean, ...). */
  replies?: ReplyMode;
  /** Deepest nesting of aggregates accepted (default 128); deeper input is a ProtocolError. */
  maxDepth?: number;
}

/** Decodes RESP2 and RESP3 replies; both are always accepted (RESP3 types only ever come after HELLO 3). */
export class Decoder extends RespDecoder {
  constructor(handlers: DecoderHandlers, maxReplyBytes = DEFAULT_MAX_REPLY_BYTES, integers: IntegerMode = "number", options: DecoderOptions = {}) {
    super(handlers, { maxReplyBytes, integers, replies: options.replies, maxDepth: options.maxDepth });
  }
}

