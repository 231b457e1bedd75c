// RESP reply decoding: the Decoder every connection uses. It is the
// hand-written RESP2 + RESP3 decoder of resp-decoder.ts (see there for the
// design and the reply representation), behind the constructor the rest of
// the client has always called. redis-parser, used before, lost on every
// RESP2 measure of bench/decoder.ts (node 20, min of 31 runs, new vs old):
// GET 16 B 70 vs 86 ns, as Buffer 57 vs 66 ns; MGET 10 x 16 B 743 vs 895 ns;
// GET 100 KiB 26 vs 31 us, as Buffer 13 vs 16 us; a 32 MiB Buffer reply
// 4 vs 19 ms; :12345 14 vs 19 ns. After that 32 MiB reply is dropped and
// collected: 0 vs 96 MiB still held (its module-level pool); a process that
// decoded it exits 12 ms vs 3.6 s after its last line (its pool-shrinking
// setInterval). So both protocols use the new decoder.
//
// Buffer replies per command, not per decoder: replies arrive in request
// order, so the owner of the waiter FIFO calls setReturnBuffers() with the
// wish of the command whose reply comes next (the FIFO head) whenever the
// head changes; the decoder reads the flag as it builds each value. String
// replies pay nothing for it.
//
// maxReplyBytes: a bulk string whose announced length would take the reply
// past the limit fails at once, from its header, before anything is
// allocated; an aggregate fails once the bytes of the reply in progress pass
// the limit (exactly: bytes are counted per reply, not per chunk).
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

