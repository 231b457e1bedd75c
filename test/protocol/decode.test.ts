import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Decoder, DEFAULT_MAX_REPLY_BYTES, type Reply } from "../../src/protocol/decode.js";
import { ProtocolError, ReplyError } from "../../src/errors.js";
import { writeReplies, writeReply, type WireReply } from "../support/resp-writer.js";

type Event =
  | { kind: "reply"; value: Reply }
  | { kind: "error"; error: ReplyError }
  | { kind: "protocol"; error: ProtocolError };

interface Harness {
  decoder: Decoder;
  events: Event[];
}

function harness(maxReplyBytes?: number): Harness {
  const events: Event[] = [];
  const decoder = new Decoder(
    {
      onReply: (value) => events.push({ kind: "reply", value }),
      onErrorReply: (error) => events.push({ kind: "error", error }),
      onProtocolError: (error) => events.push({ kind: "protocol", error }),
    },
    maxReplyBytes,
  );
  return { decoder, events };
}

function decodeAll(input: string | Buffer, chunkSizes?: readonly number[]): Event[] {
  const { decoder, events } = harness();
  const bytes = typeof input === "string" ? Buffer.from(input, "utf8") : input;
  if (chunkSizes === undefined) {
    decoder.write(bytes);
  } else {
    let pos = 0;
    for (const size of chunkSizes) {
      decoder.write(bytes.subarray(pos, pos + size));
      pos += size;
    }
    if (pos < bytes.length) decoder.write(bytes.subarray(pos));
  }
  return events;
}

function replies(events: readonly Event[]): Reply[] {
  return events.map((e) => {
    if (e.kind !== "reply") throw new Error(`expected only replies, got ${e.kind}: ${e.error.message}`);
    return e.value;
  });
}

/** A comparable form of events: errors become {error, code, name} records. */
function plain(value: Reply): unknown {
  if (value instanceof ReplyError) return { name: value.name, message: value.message, code: value.code };
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

function plainEvents(events: readonly Event[]): unknown[] {
  return events.map((e) =>
    e.kind === "reply"
      ? { reply: plain(e.value) }
      : e.kind === "error"
        ? { error: plain(e.error) }
        : { protocol: e.error.message },
  );
}

describe("Decoder: RESP2 types", () => {
  it("decodes a simple string", () => {
    expect(replies(decodeAll("+OK\r\n"))).toEqual(["OK"]);
  });

  it("decodes integers, negative and zero, as numbers", () => {
    expect(replies(decodeAll(":0\r\n:1000\r\n:-42\r\n:9007199254740991\r\n"))).toEqual([0, 1000, -42, 9007199254740991]);
  });

  it("decodes a bulk string, UTF-8 multi-byte included", () => {
    expect(replies(decodeAll("$5\r\nhello\r\n$6\r\né😀\r\n"))).toEqual(["hello", "é😀"]);
  });

  it("decodes a bulk string holding CRLF and NUL by its length", () => {
    expect(replies(decodeAll("$7\r\na\r\nb\0c\r\r\n"))).toEqual(["a\r\nb\0c\r"]);
  });

  it("decodes the empty bulk string as ''", () => {
    expect(replies(decodeAll("$0\r\n\r\n"))).toEqual([""]);
  });

  it("decodes the null bulk string as null", () => {
    expect(replies(decodeAll("$-1\r\n"))).toEqual([null]);
  });

  it("decodes the null array as null", () => {
    expect(replies(decodeAll("*-1\r\n"))).toEqual([null]);
  });

  it("decodes the empty array as []", () => {
    expect(replies(decodeAll("*0\r\n"))).toEqual([[]]);
  });

  it("decodes a flat array of mixed types", () => {
    expect(replies(decodeAll("*5\r\n:1\r\n+two\r\n$5\r\nthree\r\n$-1\r\n$0\r\n\r\n"))).toEqual([[1, "two", "three", null, ""]]);
  });

  it("decodes nested arrays with null and empty members", () => {
    const input = "*3\r\n*2\r\n:1\r\n*0\r\n*-1\r\n*2\r\n*1\r\n$1\r\nx\r\n$-1\r\n";
    expect(replies(decodeAll(input))).toEqual([[[1, []], null, [["x"], null]]]);
  });

  it("decodes several replies in one chunk, in order", () => {
    expect(replies(decodeAll("+OK\r\n:7\r\n$1\r\nv\r\n*1\r\n:2\r\n"))).toEqual(["OK", 7, "v", [2]]);
  });
});

describe("Decoder: error replies", () => {
  it.each<[string, string]>([
    ["-ERR unknown command 'FOO'\r\n", "ERR"],
    ["-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", "WRONGTYPE"],
    ["-NOSCRIPT No matching script. Please use EVAL.\r\n", "NOSCRIPT"],
    ["-MOVED 3999 127.0.0.1:6381\r\n", "MOVED"],
    ["-LOADING\r\n", "LOADING"],
  ])("a top-level %j goes to onErrorReply with code %s", (input, code) => {
    const events = decodeAll(input);
    expect(events).toHaveLength(1);
    const event = events[0];
    expect(event?.kind).toBe("error");
    if (event?.kind !== "error") return;
    expect(event.error).toBeInstanceOf(ReplyError);
    expect(event.error.code).toBe(code);
    expect(event.error.message).toBe(input.slice(1, -2));
    expect(event.error.maybeExecuted).toBe(true);
  });

  it("keeps replies and error replies in wire order", () => {
    expect(plainEvents(decodeAll("+OK\r\n-ERR bad\r\n:1\r\n"))).toEqual([
      { reply: "OK" },
      { error: { name: "ReplyError", message: "ERR bad", code: "ERR" } },
      { reply: 1 },
    ]);
  });

  it("turns errors inside arrays (EXEC results) into ReplyError values with a code, at any depth", () => {
    const events = decodeAll("*3\r\n+OK\r\n-WRONGTYPE Operation against a key\r\n*2\r\n:1\r\n-ERR inner\r\n");
    expect(events).toHaveLength(1);
    const reply = events[0]?.kind === "reply" ? events[0].value : undefined;
    expect(Array.isArray(reply)).toBe(true);
    if (!Array.isArray(reply)) return;
    expect(reply[1]).toBeInstanceOf(ReplyError);
    expect((reply[2] as Reply[])[1]).toBeInstanceOf(ReplyError);
    expect(plain(reply)).toEqual([
      "OK",
      { name: "ReplyError", message: "WRONGTYPE Operation against a key", code: "WRONGTYPE" },
      [1, { name: "ReplyError", message: "ERR inner", code: "ERR" }],
    ]);
  });
});

describe("Decoder: chunking", () => {
  const stream = Buffer.concat([
    Buffer.from("+OK\r\n:-12345\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n-ERR top level\r\n", "utf8"),
    Buffer.from("$8\r\né😀\r\n\r\n", "utf8"),
    Buffer.from("*4\r\n*2\r\n$3\r\nabc\r\n-WRONGTYPE nested\r\n:0\r\n$-1\r\n*1\r\n*1\r\n+deep\r\n", "utf8"),
    Buffer.from("$10\r\n0123456789\r\n", "utf8"),
  ]);
  const expected = plainEvents(decodeAll(stream));

  it("the reference decode of the stream is what the wire says", () => {
    expect(expected).toEqual([
      { reply: "OK" },
      { reply: -12345 },
      { reply: "" },
      { reply: null },
      { reply: null },
      { reply: [] },
      { error: { name: "ReplyError", message: "ERR top level", code: "ERR" } },
      { reply: "é😀\r\n" },
      {
        reply: [
          ["abc", { name: "ReplyError", message: "WRONGTYPE nested", code: "WRONGTYPE" }],
          0,
          null,
          [["deep"]],
        ],
      },
      { reply: "0123456789" },
    ]);
  });

  it("decodes the same when split in two at every byte offset", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(plainEvents(decodeAll(stream, [cut])), `cut at ${cut}`).toEqual(expected);
    }
  });

  it("decodes the same when split in three at every pair of offsets", () => {
    for (let a = 0; a <= stream.length; a++) {
      for (let b = a; b <= stream.length; b += 7) {
        expect(plainEvents(decodeAll(stream, [a, b - a])), `cuts at ${a}, ${b}`).toEqual(expected);
      }
    }
  });

  it("decodes the same when fed one byte at a time", () => {
    expect(plainEvents(decodeAll(stream, new Array<number>(stream.length).fill(1)))).toEqual(expected);
  });

  it("decodes the same fed one byte at a time with Buffers asked for", () => {
    const { decoder, events } = harness();
    decoder.setReturnBuffers(true);
    for (let i = 0; i < stream.length; i++) decoder.write(stream.subarray(i, i + 1));
    const whole = harness();
    whole.decoder.setReturnBuffers(true);
    whole.decoder.write(stream);
    expect(plainEvents(events)).toEqual(plainEvents(whole.events));
    expect(events[7]).toEqual({ kind: "reply", value: Buffer.from("é😀\r\n", "utf8") });
  });
});

describe("Decoder: setReturnBuffers per reply", () => {
  it("returns strings by default and Buffers once asked", () => {
    const { decoder, events } = harness();
    decoder.write(Buffer.from("$3\r\nfoo\r\n"));
    decoder.setReturnBuffers(true);
    decoder.write(Buffer.from("$3\r\nbar\r\n"));
    expect(replies(events)).toEqual(["foo", Buffer.from("bar")]);
  });

  it("switches string, Buffer, string within one chunk, from inside onReply the way a FIFO owner does", () => {
    // The owner keeps the wishes of the commands in flight; whenever the head
    // changes it tells the decoder what the next reply should be.
    const wishes = [false, true, false, true];
    const got: Reply[] = [];
    const decoder: Decoder = new Decoder({
      onReply: (value) => {
        got.push(value);
        wishes.shift();
        decoder.setReturnBuffers(wishes[0] ?? false);
      },
      onErrorReply: (error) => {
        throw error;
      },
      onProtocolError: (error) => {
        throw error;
      },
    });
    decoder.setReturnBuffers(wishes[0] ?? false);
    decoder.write(Buffer.from("$3\r\nfoo\r\n$4\r\nb\0\r\n\r\n$3\r\nbaz\r\n*2\r\n$1\r\nx\r\n:5\r\n"));
    expect(got).toEqual(["foo", Buffer.from("b\0\r\n"), "baz", [Buffer.from("x"), 5]]);
    expect(typeof got[0]).toBe("string");
    expect(Buffer.isBuffer(got[1])).toBe(true);
    expect(typeof got[2]).toBe("string");
  });

  it("honours the switch for a bulk string split across chunks (read when the reply completes)", () => {
    const { decoder, events } = harness();
    decoder.setReturnBuffers(true);
    decoder.write(Buffer.from("$6\r\nab"));
    decoder.write(Buffer.from("cd"));
    decoder.write(Buffer.from("ef\r\n$2\r\n"));
    decoder.setReturnBuffers(false);
    decoder.write(Buffer.from("gh\r\n"));
    expect(replies(events)).toEqual([Buffer.from("abcdef"), "gh"]);
  });

  it("with Buffers on, simple strings are Buffers too, integers stay numbers and errors keep their text", () => {
    const { decoder, events } = harness();
    decoder.setReturnBuffers(true);
    decoder.write(Buffer.from("+OK\r\n:3\r\n-ERR nope\r\n*1\r\n-WRONGTYPE in array\r\n"));
    expect(plainEvents(events)).toEqual([
      { reply: Buffer.from("OK") },
      { reply: 3 },
      { error: { name: "ReplyError", message: "ERR nope", code: "ERR" } },
      { reply: [{ name: "ReplyError", message: "WRONGTYPE in array", code: "WRONGTYPE" }] },
    ]);
  });

  it("returns binary bulk replies byte-exact", () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x0d, 0x0a, 0x80]);
    const { decoder, events } = harness();
    decoder.setReturnBuffers(true);
    decoder.write(writeReply(bytes));
    expect(replies(events)).toEqual([bytes]);
  });
});

describe("Decoder: protocol errors", () => {
  it("a garbage type byte gives exactly one onProtocolError, and later input is ignored", () => {
    const { decoder, events } = harness();
    decoder.write(Buffer.from("+OK\r\n?garbage\r\n+SAME CHUNK\r\n"));
    decoder.write(Buffer.from("+LATER\r\n"));
    decoder.write(Buffer.from("!more garbage\r\n"));
    expect(events.map((e) => e.kind)).toEqual(["reply", "protocol"]);
    expect(events[0]).toEqual({ kind: "reply", value: "OK" });
    const err = events[1]?.kind === "protocol" ? events[1].error : undefined;
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err?.code).toBe("ERR_RESPITE_PROTOCOL");
    expect(err?.message).toMatch(/^Invalid RESP from server: /);
  });

  it("a garbage type byte inside an array is one protocol error too", () => {
    const { decoder, events } = harness();
    decoder.write(Buffer.from("*3\r\n:1\r\n"));
    decoder.write(Buffer.from("%bad\r\n:3\r\n"));
    decoder.write(Buffer.from("+IGNORED\r\n"));
    expect(events.map((e) => e.kind)).toEqual(["protocol"]);
  });

  it("reset() after a protocol error decodes a fresh stream cleanly", () => {
    const { decoder, events } = harness();
    decoder.write(Buffer.from("*2\r\n*2\r\n:1\r\n~bad\r\n"));
    expect(events.map((e) => e.kind)).toEqual(["protocol"]);
    decoder.reset();
    decoder.write(Buffer.from("*2\r\n:1\r\n"));
    decoder.write(Buffer.from(":2\r\n+OK\r\n"));
    expect(events.slice(1)).toEqual([
      { kind: "reply", value: [1, 2] },
      { kind: "reply", value: "OK" },
    ]);
  });

  it("reset() called from inside onReply stops the old stream and leaves a clean decoder", () => {
    const events: Event[] = [];
    let resetOn: string | undefined = "KILL";
    const decoder: Decoder = new Decoder({
      onReply: (value) => {
        events.push({ kind: "reply", value });
        if (value === resetOn) {
          resetOn = undefined;
          decoder.reset(); // e.g. the owner saw a reply nobody asked for and drops the socket
        }
      },
      onErrorReply: (error) => events.push({ kind: "error", error }),
      onProtocolError: (error) => events.push({ kind: "protocol", error }),
    });
    decoder.write(Buffer.from("+A\r\n+KILL\r\n+STALE\r\n*2\r\n:1\r\n"));
    decoder.write(Buffer.from("*2\r\n:1\r\n"));
    decoder.write(Buffer.from(":2\r\n+FRESH\r\n"));
    expect(plainEvents(events)).toEqual([{ reply: "A" }, { reply: "KILL" }, { reply: [1, 2] }, { reply: "FRESH" }]);
  });

  it("reset() called from inside onProtocolError (garbage inside an array) leaves a clean decoder", () => {
    const events: Event[] = [];
    const decoder: Decoder = new Decoder({
      onReply: (value) => events.push({ kind: "reply", value }),
      onErrorReply: (error) => events.push({ kind: "error", error }),
      onProtocolError: (error) => {
        events.push({ kind: "protocol", error });
        decoder.reset(); // the owner reconnects at once and reuses the decoder
      },
    });
    decoder.write(Buffer.from("*3\r\n*2\r\n:1\r\n?bad\r\n"));
    decoder.write(Buffer.from("*2\r\n:1\r\n"));
    decoder.write(Buffer.from("*1\r\n:2\r\n"));
    decoder.write(Buffer.from("+OK\r\n"));
    expect(events.map((e) => e.kind)).toEqual(["protocol", "reply", "reply"]);
    expect(plainEvents(events.slice(1))).toEqual([{ reply: [1, [2]] }, { reply: "OK" }]);
  });

  it("ignores empty chunks, even in the middle of a bulk string's CRLF", () => {
    const { decoder, events } = harness();
    const bytes = Buffer.from("$0\r\n\r\n$3\r\nabc\r\n");
    decoder.write(bytes.subarray(0, 5));
    decoder.write(Buffer.alloc(0));
    decoder.write(bytes.subarray(5, 15));
    decoder.write(Buffer.alloc(0));
    decoder.write(bytes.subarray(15));
    expect(replies(events)).toEqual(["", "abc"]);
  });

  it("reset() drops a partial reply", () => {
    const { decoder, events } = harness();
    decoder.write(Buffer.from("*2\r\n:1\r\n$10\r\nabc"));
    decoder.reset();
    decoder.write(Buffer.from("+OK\r\n"));
    expect(replies(events)).toEqual(["OK"]);
  });

  it("a handler that throws becomes a ProtocolError, once; later input is ignored", () => {
    const errors: ProtocolError[] = [];
    const got: Reply[] = [];
    const decoder = new Decoder({
      onReply: (value) => {
        got.push(value);
        if (value === "BOOM") throw new Error("handler failed");
      },
      onErrorReply: () => undefined,
      onProtocolError: (error) => errors.push(error),
    });
    decoder.write(Buffer.from("+A\r\n+BOOM\r\n+B\r\n"));
    decoder.write(Buffer.from("+C\r\n"));
    expect(got).toEqual(["A", "BOOM"]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toBe("Reply handling failed");
    expect((errors[0]?.cause as Error).message).toBe("handler failed");
  });
});

describe("Decoder: maxReplyBytes", () => {
  it("defaults to Redis' proto-max-bulk-len, 512 MiB", () => {
    expect(DEFAULT_MAX_REPLY_BYTES).toBe(512 * 1024 * 1024);
  });

  it("fails a huge announced bulk at once, from its header (nothing allocated), exactly once", () => {
    const limit = 1000;
    const { decoder, events } = harness(limit);
    decoder.write(Buffer.from("$1000000000\r\n"));
    expect(events).toHaveLength(1);
    const event = events[0];
    expect(event?.kind).toBe("protocol");
    if (event?.kind !== "protocol") return;
    expect(event.error).toBeInstanceOf(ProtocolError);
    expect(event.error.message).toBe("Reply exceeds maxReplyBytes (1000 bytes)");
    decoder.write(Buffer.alloc(100, 0x61));
    decoder.write(Buffer.from("+OK\r\n"));
    expect(events).toHaveLength(1);
  });

  it("accepts a bulk announcing just under the limit, fed in small chunks", () => {
    const limit = 1000;
    const { decoder, events } = harness(limit);
    const reply = writeReply("a".repeat(limit - 10)); // "$990\r\n" + 990 + "\r\n" = 998 bytes
    for (let i = 0; i < reply.length; i += 100) {
      decoder.write(reply.subarray(i, i + 100));
    }
    expect(replies(events)).toEqual(["a".repeat(limit - 10)]);
  });

  it("fails a huge announced array, counted across its elements", () => {
    const { decoder, events } = harness(100);
    decoder.write(Buffer.from("*1000000\r\n"));
    for (let i = 0; i < 20; i++) decoder.write(Buffer.from(":1\r\n"));
    expect(events).toEqual([]);
    for (let i = 0; i < 20; i++) decoder.write(Buffer.from(":1\r\n"));
    expect(events.map((e) => e.kind)).toEqual(["protocol"]);
  });

  it("counts from the last complete reply: many replies under the limit each never fail", () => {
    const { decoder, events } = harness(64);
    const reply = writeReply("x".repeat(40)); // 47 bytes
    for (let i = 0; i < 100; i++) decoder.write(reply);
    expect(events).toHaveLength(100);
    expect(events.every((e) => e.kind === "reply")).toBe(true);
  });

  it("does not fail a chunk larger than the limit that holds only small complete replies", () => {
    const { decoder, events } = harness(64);
    const one = writeReply("x".repeat(40));
    decoder.write(Buffer.concat(new Array<Buffer>(10).fill(one)));
    expect(events).toHaveLength(10);
    expect(events.every((e) => e.kind === "reply")).toBe(true);
  });

  it("accepts a reply of exactly the limit", () => {
    const reply = writeReply("y".repeat(50));
    const { decoder, events } = harness(reply.length);
    decoder.write(reply.subarray(0, 10));
    decoder.write(reply.subarray(10));
    expect(replies(events)).toEqual(["y".repeat(50)]);
  });
});

// ---------------------------------------------------------------------------
// Property: random replies, written, concatenated, cut at random points,
// decode back to what was written.

const simpleText = fc.string({ unit: "binary", maxLength: 20 }).filter((s) => !/[\r\n]/.test(s));

const wireReply: fc.Arbitrary<WireReply> = fc.letrec<{ reply: WireReply }>((tie) => ({
  reply: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.constant(null),
    simpleText.map((simple) => ({ simple })),
    simpleText.map((error) => ({ error: `ERR${error === "" ? "" : " " + error}` })),
    fc.constant({ nullArray: true as const }),
    fc.array(tie("reply"), { maxLength: 5 }),
  ),
})).reply;

/** What the decoder (strings mode) should deliver for a reply; top-level errors go to onErrorReply. */
function expectedEvent(value: WireReply): unknown {
  if (typeof value === "object" && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value) && "error" in value) {
    return { error: expectedValue(value) };
  }
  return { reply: expectedValue(value) };
}

function expectedValue(value: WireReply): unknown {
  if (value === null || typeof value === "string" || typeof value === "number") return value;
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  if (Array.isArray(value)) return (value as readonly WireReply[]).map(expectedValue);
  if ("simple" in value) return value.simple;
  if ("error" in value) {
    const space = value.error.indexOf(" ");
    return { name: "ReplyError", message: value.error, code: space === -1 ? value.error : value.error.slice(0, space) };
  }
  return null; // nullArray
}

describe("Decoder: property", () => {
  it("random nested replies, concatenated and cut at random points, decode deep-equal", () => {
    fc.assert(
      fc.property(
        fc.array(wireReply, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (values, cutSeeds) => {
          const bytes = writeReplies(values);
          const cuts = [...new Set(cutSeeds.map((n) => n % (bytes.length + 1)))].sort((a, b) => a - b);
          const sizes: number[] = [];
          let prev = 0;
          for (const cut of cuts) {
            sizes.push(cut - prev);
            prev = cut;
          }
          expect(plainEvents(decodeAll(bytes, sizes))).toEqual(values.map(expectedEvent));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("with Buffers on, bulk strings come back byte-exact", () => {
    const bulk = fc.uint8Array({ maxLength: 60 }).map((u) => Buffer.from(u));
    fc.assert(
      fc.property(fc.array(fc.oneof(bulk, fc.array(bulk, { maxLength: 4 })), { minLength: 1, maxLength: 8 }), fc.nat(), (values, seed) => {
        const bytes = writeReplies(values);
        const cut = seed % (bytes.length + 1);
        const { decoder, events } = harness();
        decoder.setReturnBuffers(true);
        decoder.write(bytes.subarray(0, cut));
        decoder.write(bytes.subarray(cut));
        expect(replies(events)).toEqual(values);
      }),
      { numRuns: 300 },
    );
  });
});

describe("Decoder: integers option (exact integers)", () => {
  type Mode = "number" | "bigint" | "string";
  const MODES: readonly Mode[] = ["number", "bigint", "string"];

  function decodeWith(mode: Mode, input: string | Buffer, chunkSizes?: readonly number[]): Event[] {
    const events: Event[] = [];
    const decoder = new Decoder(
      {
        onReply: (value) => events.push({ kind: "reply", value }),
        onErrorReply: (error) => events.push({ kind: "error", error }),
        onProtocolError: (error) => events.push({ kind: "protocol", error }),
      },
      undefined,
      mode,
    );
    const bytes = typeof input === "string" ? Buffer.from(input, "utf8") : input;
    let pos = 0;
    for (const size of chunkSizes ?? []) {
      decoder.write(bytes.subarray(pos, pos + size));
      pos += size;
    }
    if (pos < bytes.length) decoder.write(bytes.subarray(pos));
    return events;
  }

  /** What each mode must deliver for the integer `text`. */
  function expectedInt(mode: Mode, text: string): number | bigint | string {
    if (mode === "string") return text;
    const exact = BigInt(text);
    if (mode === "bigint") return exact;
    return Number.isSafeInteger(Number(exact)) && BigInt(Number(exact)) === exact ? Number(exact) : exact;
  }

  const EDGES = [
    "0",
    "-1",
    "12345",
    "999999999999999", // 15 digits
    "1000000000000000", // 16 digits, safe
    "-1000000000000000",
    "9007199254740991", // 2^53 - 1
    "-9007199254740991",
    "9007199254740992", // 2^53: exact as a double, but beyond the safe range
    "9007199254740993", // 2^53 + 1
    "-9007199254740993",
    "12345678901234567890",
    "9223372036854775807", // 2^63 - 1
    "-9223372036854775808", // -2^63
  ];

  it("default: safe integers are numbers, anything beyond Number.MAX_SAFE_INTEGER an exact bigint", () => {
    const wire = EDGES.map((t) => `:${t}\r\n`).join("");
    expect(replies(decodeWith("number", wire))).toEqual([
      0,
      -1,
      12345,
      999999999999999,
      1000000000000000,
      -1000000000000000,
      9007199254740991,
      -9007199254740991,
      9007199254740992n,
      9007199254740993n,
      -9007199254740993n,
      12345678901234567890n,
      9223372036854775807n,
      -9223372036854775808n,
    ]);
  });

  it("bigint: every integer is a bigint; string: every integer is its decimal text", () => {
    const wire = EDGES.map((t) => `:${t}\r\n`).join("");
    expect(replies(decodeWith("bigint", wire))).toEqual(EDGES.map((t) => BigInt(t)));
    expect(replies(decodeWith("string", wire))).toEqual(EDGES);
  });

  it('without the option, the Decoder uses the "number" mode', () => {
    expect(replies(decodeAll(":9007199254740993\r\n:7\r\n"))).toEqual([9007199254740993n, 7]);
  });

  // EXEC-like: integers at several depths, next to bulk strings holding the same digits and a nested error.
  const nested =
    "*6\r\n:1\r\n:9007199254740993\r\n$16\r\n9007199254740993\r\n" +
    "*3\r\n:-9223372036854775808\r\n-ERR nested\r\n*1\r\n:9223372036854775807\r\n" +
    ":-9007199254740993\r\n$-1\r\n";

  it("nested integers follow the same rule, in every mode, next to bulk strings and errors", () => {
    const err = { name: "ReplyError", message: "ERR nested", code: "ERR" };
    expect(plainEvents(decodeWith("number", nested))).toEqual([
      { reply: [1, 9007199254740993n, "9007199254740993", [-9223372036854775808n, err, [9223372036854775807n]], -9007199254740993n, null] },
    ]);
    expect(plainEvents(decodeWith("bigint", nested))).toEqual([
      { reply: [1n, 9007199254740993n, "9007199254740993", [-9223372036854775808n, err, [9223372036854775807n]], -9007199254740993n, null] },
    ]);
    expect(plainEvents(decodeWith("string", nested))).toEqual([
      { reply: ["1", "9007199254740993", "9007199254740993", ["-9223372036854775808", err, ["9223372036854775807"]], "-9007199254740993", null] },
    ]);
  });

  it("decodes the same when split in two or three at every offset, in every mode", () => {
    const stream = Buffer.from(`:9007199254740993\r\n+OK\r\n${nested}:-9223372036854775808\r\n:12\r\n*2\r\n:1\r\n:12345678901234567890\r\n`);
    for (const mode of MODES) {
      const whole = plainEvents(decodeWith(mode, stream));
      expect(whole).toHaveLength(6);
      for (let a = 0; a <= stream.length; a++) {
        expect(plainEvents(decodeWith(mode, stream, [a])), `${mode}, cut at ${a}`).toEqual(whole);
        for (let b = a; b <= stream.length; b += 5) {
          expect(plainEvents(decodeWith(mode, stream, [a, b - a])), `${mode}, cuts at ${a}, ${b}`).toEqual(whole);
        }
      }
      expect(plainEvents(decodeWith(mode, stream, new Array<number>(stream.length).fill(1))), `${mode}, byte by byte`).toEqual(whole);
    }
  });

  it("digits right after a short integer (its 16th byte) are not taken for a long integer", () => {
    const wire = "*3\r\n:1\r\n$20\r\n12345678901234567890\r\n:-2\r\n:7\r\n:99999999999999999\r\n";
    expect(replies(decodeWith("number", wire))).toEqual([[1, "12345678901234567890", -2], 7, 99999999999999999n]);
  });

  it("with Buffers on, integers follow the mode and bulk strings stay Buffers", () => {
    for (const mode of MODES) {
      const events: Event[] = [];
      const decoder = new Decoder({ onReply: (value) => events.push({ kind: "reply", value }), onErrorReply: () => undefined, onProtocolError: () => undefined }, undefined, mode);
      decoder.setReturnBuffers(true);
      decoder.write(Buffer.from("*2\r\n$2\r\nab\r\n:9007199254740993\r\n"));
      expect(replies(events), mode).toEqual([[Buffer.from("ab"), expectedInt(mode, "9007199254740993")]]);
    }
  });

  it("property: random 64-bit integers, alone and nested, cut anywhere, are exact in every mode", () => {
    const int64 = fc.oneof(
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.bigInt({ min: 2n ** 53n - 1000n, max: 2n ** 53n + 1000n }),
      fc.bigInt({ min: -(2n ** 53n) - 1000n, max: -(2n ** 53n) + 1000n }),
      fc.bigInt({ min: -(10n ** 16n), max: 10n ** 16n }),
    );
    type Tree = bigint | Tree[];
    const tree: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
      t: fc.oneof({ depthSize: "small", withCrossShrink: true }, int64, fc.array(tie("t"), { maxLength: 5 })),
    })).t;
    const wire = (t: Tree): string => (Array.isArray(t) ? `*${t.length}\r\n${t.map(wire).join("")}` : `:${t}\r\n`);
    const expected = (mode: Mode, t: Tree): unknown => (Array.isArray(t) ? t.map((x) => expected(mode, x)) : expectedInt(mode, String(t)));
    fc.assert(
      fc.property(fc.array(tree, { minLength: 1, maxLength: 6 }), fc.nat(), fc.constantFrom(...MODES), (values, seed, mode) => {
        const bytes = Buffer.from(values.map(wire).join(""));
        const cut = seed % (bytes.length + 1);
        expect(replies(decodeWith(mode, bytes, [cut]))).toEqual(values.map((v) => expected(mode, v)));
      }),
      { numRuns: 1000 },
    );
  });

  it("reset() (also from inside onReply) leaves no exact value behind for the next stream", () => {
    // Reset between a partial array holding a big integer and a new stream.
    const events: Event[] = [];
    const decoder = new Decoder({ onReply: (value) => events.push({ kind: "reply", value }), onErrorReply: () => undefined, onProtocolError: () => undefined });
    decoder.write(Buffer.from("*2\r\n:9007199254740993\r\n"));
    decoder.reset();
    decoder.write(Buffer.from(":5\r\n*1\r\n:9007199254740995\r\n"));
    expect(replies(events)).toEqual([5, [9007199254740995n]]);

    // Reset from inside onReply, with a big integer later in the same chunk (discarded).
    const got: Reply[] = [];
    let first = true;
    const d2: Decoder = new Decoder({
      onReply: (value) => {
        got.push(value);
        if (first) {
          first = false;
          d2.reset();
        }
      },
      onErrorReply: () => undefined,
      onProtocolError: () => undefined,
    });
    d2.write(Buffer.from("+a\r\n*2\r\n:9007199254740993\r\n:9007199254740994\r\n"));
    d2.write(Buffer.from("*1\r\n:9007199254740997\r\n"));
    expect(got).toEqual(["a", [9007199254740997n]]);
  });

  it("a malformed long integer is a protocol error, not a wrong number", () => {
    for (const bad of [":12345678901234567x9\r\n", `:${"9".repeat(31)}\r\n`, "*1\r\n:123456789012345678-\r\n"]) {
      const events = decodeWith("number", bad + ":1\r\n");
      expect(events.map((e) => e.kind), bad).toEqual(["protocol"]);
      expect((events[0] as { error: ProtocolError }).error.message).toMatch(/^Invalid RESP integer from server/);
    }
  });
});
