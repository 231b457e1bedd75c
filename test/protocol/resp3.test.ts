// The RESP3 side of the Decoder (src/protocol/resp-decoder.ts behind
// decode.ts): golden vectors from the RESP3 specification in both reply
// modes, every split point, random nested values cut anywhere, fuzzed and
// deeply nested garbage, push frames, the announced-length limit, and big
// bulk strings assembled once. Memory retention and process exit are in
// decoder-memory.test.ts (child processes).
import { afterEach, describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import { Decoder, type Reply } from "../../src/protocol/decode.js";
import { DEFAULT_MAX_DEPTH, RespDecoder } from "../../src/protocol/resp-decoder.js";
import { ProtocolError, ReplyError } from "../../src/errors.js";
import { expected, expectedEvent, writeR3, type Expect, type R3 } from "./resp3-writer.js";

type Mode = "compat" | "native";
const MODES: readonly Mode[] = ["compat", "native"];

interface Harness {
  decoder: Decoder;
  events: unknown[];
}

/** Comparable form of a reply: ReplyError values become plain records, at any depth (Map and Set included). */
function plain(value: unknown): unknown {
  if (value instanceof ReplyError) return { name: value.name, message: value.message, code: value.code };
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [plain(k), plain(v)]));
  if (value instanceof Set) return new Set([...value].map(plain));
  return value;
}

function harness(mode: Mode = "compat", options: { buffers?: boolean; maxReplyBytes?: number; maxDepth?: number; noPush?: boolean } = {}): Harness {
  const events: unknown[] = [];
  const decoder = new Decoder(
    {
      onReply: (value) => events.push({ reply: plain(value) }),
      onErrorReply: (error) => events.push({ error: plain(error) }),
      onProtocolError: (error) => events.push({ protocol: error.message }),
      ...(options.noPush === true ? {} : { onPush: (frame: Reply[]) => events.push({ push: plain(frame) }) }),
    },
    options.maxReplyBytes,
    "number",
    { replies: mode, maxDepth: options.maxDepth },
  );
  decoder.setReturnBuffers(options.buffers ?? false);
  return { decoder, events };
}

function decode(bytes: Buffer | string, mode: Mode = "compat", cuts: readonly number[] = [], buffers = false): unknown[] {
  const { decoder, events } = harness(mode, { buffers });
  const b = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
  let prev = 0;
  for (const cut of cuts) {
    decoder.write(b.subarray(prev, cut));
    prev = cut;
  }
  decoder.write(b.subarray(prev));
  return events;
}

// ---------------------------------------------------------------------------
// Golden vectors: the examples of the RESP3 specification (protocol/RESP3.md
// in redis/redis-specifications), with what each mode delivers.

interface Golden {
  name: string;
  wire: string;
  compat: unknown;
  native: unknown;
}

const err = (message: string): unknown => ({ name: "ReplyError", message, code: message.split(" ")[0] });

const GOLDEN: Golden[] = [
  { name: "blob string", wire: "$11\r\nhello world\r\n", compat: { reply: "hello world" }, native: { reply: "hello world" } },
  { name: "empty blob string", wire: "$0\r\n\r\n", compat: { reply: "" }, native: { reply: "" } },
  { name: "simple string", wire: "+hello world\r\n", compat: { reply: "hello world" }, native: { reply: "hello world" } },
  { name: "simple error", wire: "-ERR this is the error description\r\n", compat: { error: err("ERR this is the error description") }, native: { error: err("ERR this is the error description") } },
  { name: "number", wire: ":1234\r\n", compat: { reply: 1234 }, native: { reply: 1234 } },
  { name: "negative number", wire: ":-1234\r\n", compat: { reply: -1234 }, native: { reply: -1234 } },
  { name: "null", wire: "_\r\n", compat: { reply: null }, native: { reply: null } },
  { name: "double", wire: ",1.23\r\n", compat: { reply: "1.23" }, native: { reply: 1.23 } },
  { name: "double without a dot", wire: ",10\r\n", compat: { reply: "10" }, native: { reply: 10 } },
  { name: "double with exponent", wire: ",1.5e+300\r\n", compat: { reply: "1.5e+300" }, native: { reply: 1.5e300 } },
  { name: "negative double", wire: ",-3.0000000000000001\r\n", compat: { reply: "-3.0000000000000001" }, native: { reply: -3 } },
  { name: "double inf", wire: ",inf\r\n", compat: { reply: "inf" }, native: { reply: Infinity } },
  { name: "double -inf", wire: ",-inf\r\n", compat: { reply: "-inf" }, native: { reply: -Infinity } },
  { name: "double nan", wire: ",nan\r\n", compat: { reply: "nan" }, native: { reply: NaN } },
  { name: "boolean true", wire: "#t\r\n", compat: { reply: 1 }, native: { reply: true } },
  { name: "boolean false", wire: "#f\r\n", compat: { reply: 0 }, native: { reply: false } },
  { name: "blob error", wire: "!21\r\nSYNTAX invalid syntax\r\n", compat: { error: err("SYNTAX invalid syntax") }, native: { error: err("SYNTAX invalid syntax") } },
  { name: "verbatim string", wire: "=15\r\ntxt:Some string\r\n", compat: { reply: "Some string" }, native: { reply: "Some string" } },
  { name: "empty verbatim string", wire: "=4\r\nmkd:\r\n", compat: { reply: "" }, native: { reply: "" } },
  {
    name: "big number",
    wire: "(3492890328409238509324850943850943825024385\r\n",
    compat: { reply: "3492890328409238509324850943850943825024385" },
    native: { reply: 3492890328409238509324850943850943825024385n },
  },
  { name: "negative big number", wire: "(-3492890328409238509324850943850943825024385\r\n", compat: { reply: "-3492890328409238509324850943850943825024385" }, native: { reply: -3492890328409238509324850943850943825024385n } },
  { name: "array", wire: "*3\r\n:1\r\n:2\r\n:3\r\n", compat: { reply: [1, 2, 3] }, native: { reply: [1, 2, 3] } },
  {
    name: "nested array",
    wire: "*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n",
    compat: { reply: [[1, 2, 3], ["Hello", err("World")]] },
    native: { reply: [[1, 2, 3], ["Hello", err("World")]] },
  },
  { name: "array of mixed RESP3 types", wire: "*2\r\n*3\r\n:1\r\n$5\r\nhello\r\n:2\r\n#f\r\n", compat: { reply: [[1, "hello", 2], 0] }, native: { reply: [[1, "hello", 2], false] } },
  {
    name: "map",
    wire: "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
    compat: { reply: ["first", 1, "second", 2] },
    native: { reply: new Map<unknown, unknown>([["first", 1], ["second", 2]]) },
  },
  { name: "empty map", wire: "%0\r\n", compat: { reply: [] }, native: { reply: new Map() } },
  {
    name: "set",
    wire: "~5\r\n+orange\r\n+apple\r\n#t\r\n:100\r\n:999\r\n",
    compat: { reply: ["orange", "apple", 1, 100, 999] },
    native: { reply: new Set<unknown>(["orange", "apple", true, 100, 999]) },
  },
  { name: "empty set", wire: "~0\r\n", compat: { reply: [] }, native: { reply: new Set() } },
  {
    name: "attribute before a reply (dropped)",
    wire: "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
    compat: { reply: [2039123, 9543892] },
    native: { reply: [2039123, 9543892] },
  },
  { name: "attribute inside an array (dropped)", wire: "*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n", compat: { reply: [1, 2, 3] }, native: { reply: [1, 2, 3] } },
  {
    name: "push",
    wire: ">4\r\n+pubsub\r\n+message\r\n+somechannel\r\n+this is the message\r\n",
    compat: { push: ["pubsub", "message", "somechannel", "this is the message"] },
    native: { push: ["pubsub", "message", "somechannel", "this is the message"] },
  },
  {
    name: "HELLO 3 reply",
    wire: "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:10\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
    compat: { reply: ["server", "redis", "version", "7.0.0", "proto", 3, "id", 10, "mode", "standalone", "role", "master", "modules", []] },
    native: {
      reply: new Map<unknown, unknown>([
        ["server", "redis"],
        ["version", "7.0.0"],
        ["proto", 3],
        ["id", 10],
        ["mode", "standalone"],
        ["role", "master"],
        ["modules", []],
      ]),
    },
  },
  // RESP2, still accepted.
  { name: "RESP2 null bulk string", wire: "$-1\r\n", compat: { reply: null }, native: { reply: null } },
  { name: "RESP2 null array", wire: "*-1\r\n", compat: { reply: null }, native: { reply: null } },
];

describe("RESP3 golden vectors", () => {
  for (const mode of MODES) {
    it.each(GOLDEN)(`${mode}: $name`, (g) => {
      expect(decode(g.wire, mode)).toEqual([g[mode]]);
    });
  }

  it("all vectors back to back decode in order, in both modes", () => {
    const wire = GOLDEN.map((g) => g.wire).join("");
    for (const mode of MODES) expect(decode(wire, mode)).toEqual(GOLDEN.map((g) => g[mode]));
  });

  it("split in two at every byte offset, each vector and the whole stream decode the same", () => {
    for (const mode of MODES) {
      for (const g of GOLDEN) {
        const bytes = Buffer.from(g.wire);
        for (let cut = 0; cut <= bytes.length; cut++) expect(decode(bytes, mode, [cut]), `${mode} ${g.name} cut at ${cut}`).toEqual([g[mode]]);
      }
      const stream = Buffer.from(GOLDEN.map((g) => g.wire).join(""));
      const whole = GOLDEN.map((g) => g[mode]);
      for (let cut = 0; cut <= stream.length; cut++) expect(decode(stream, mode, [cut]), `${mode} stream cut at ${cut}`).toEqual(whole);
    }
  });

  it("split in three at every pair of offsets (vectors with aggregates), and fed one byte at a time", () => {
    for (const mode of MODES) {
      for (const g of GOLDEN.filter((x) => /^[*%~|>]/.test(x.wire))) {
        const bytes = Buffer.from(g.wire);
        for (let a = 0; a <= bytes.length; a++) {
          for (let b = a; b <= bytes.length; b++) expect(decode(bytes, mode, [a, b]), `${mode} ${g.name} cuts ${a} ${b}`).toEqual([g[mode]]);
        }
      }
      const stream = Buffer.from(GOLDEN.map((g) => g.wire).join(""));
      const ones = Array.from({ length: stream.length }, (_, i) => i + 1);
      expect(decode(stream, mode, ones)).toEqual(GOLDEN.map((g) => g[mode]));
    }
  });

  it("with Buffers asked for: text is Buffers (doubles and big numbers too in compat), native map keys and set members stay strings", () => {
    const wire = "%2\r\n$1\r\na\r\n$2\r\nvv\r\n+b\r\n,1.5\r\n~2\r\n$1\r\nx\r\n+y\r\n(12345678901234567890\r\n=7\r\ntxt:abc\r\n*1\r\n$1\r\nz\r\n";
    expect(decode(wire, "compat", [], true)).toEqual([
      { reply: [Buffer.from("a"), Buffer.from("vv"), Buffer.from("b"), Buffer.from("1.5")] },
      { reply: [Buffer.from("x"), Buffer.from("y")] },
      { reply: Buffer.from("12345678901234567890") },
      { reply: Buffer.from("abc") },
      { reply: [Buffer.from("z")] },
    ]);
    expect(decode(wire, "native", [], true)).toEqual([
      { reply: new Map<unknown, unknown>([["a", Buffer.from("vv")], ["b", 1.5]]) },
      { reply: new Set(["x", "y"]) },
      { reply: 12345678901234567890n },
      { reply: Buffer.from("abc") },
      { reply: [Buffer.from("z")] },
    ]);
  });

  it("compat booleans are integers in the integer mode, as RESP2 sends them", () => {
    for (const [integers, t, f] of [["number", 1, 0], ["bigint", 1n, 0n], ["string", "1", "0"]] as const) {
      const got: Reply[] = [];
      const d = new Decoder({ onReply: (r) => got.push(r), onErrorReply: () => undefined, onProtocolError: (e) => { throw e; } }, undefined, integers);
      d.write(Buffer.from("#t\r\n*2\r\n#f\r\n:9007199254740993\r\n"));
      expect(got, integers).toEqual([t, [f, integers === "number" ? 9007199254740993n : integers === "bigint" ? 9007199254740993n : "9007199254740993"]]);
    }
  });

  it("an error nested in a map or set is a ReplyError value; a blob error split across chunks is one error reply", () => {
    const events = decode("%1\r\n+k\r\n!5\r\nERR x\r\n~1\r\n-WRONGTYPE y\r\n", "native");
    expect(events).toEqual([{ reply: new Map([["k", err("ERR x")]]) }, { reply: new Set([err("WRONGTYPE y")]) }]);
    const long = `ERR ${"e".repeat(100_000)}`;
    const bytes = Buffer.from(`!${long.length}\r\n${long}\r\n+OK\r\n`);
    expect(decode(bytes, "compat", [10, 70_000, 100_003])).toEqual([{ error: err(long) }, { reply: "OK" }]);
  });
});

// ---------------------------------------------------------------------------
// Property: random nested RESP3 values (maps of sets of pushes ...), written
// by the test-side writer, concatenated and cut at random points.

const lineText = fc.string({ unit: "binary", maxLength: 12 }).filter((s) => !/[\r\n]/.test(s));
const int64 = fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.bigInt({ min: -1000n, max: 1000n }));
const doubleText = fc.oneof(
  fc.constantFrom("inf", "-inf", "nan", "0", "-0", "1.5", "3.14", "1e+100", "-2.5e-7", "10"),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => d.toPrecision(17)),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => String(d)),
);

const scalar: fc.Arbitrary<R3> = fc.oneof(
  lineText.map((s): R3 => ({ t: "simple", s })),
  lineText.map((s): R3 => ({ t: "error", s: `ERR${s === "" ? "" : " " + s}` })),
  int64.map((n): R3 => ({ t: "int", n })),
  fc.string({ unit: "binary", maxLength: 30 }).map((b): R3 => ({ t: "bulk", b })),
  fc.uint8Array({ maxLength: 30 }).map((u): R3 => ({ t: "bulk", b: Buffer.from(u) })),
  fc.constantFrom<R3>({ t: "nullBulk" }, { t: "nullArray" }, { t: "null" }, { t: "bool", v: true }, { t: "bool", v: false }),
  doubleText.map((text): R3 => ({ t: "double", text })),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map((n): R3 => ({ t: "bignum", text: n.toString() })),
  fc.string({ unit: "binary", maxLength: 20 }).map((s): R3 => ({ t: "blobError", s: `ERR ${s}` })),
  fc.tuple(fc.constantFrom("txt", "mkd"), fc.string({ unit: "binary", maxLength: 20 })).map(([format, text]): R3 => ({ t: "verbatim", format, text })),
);

const r3: fc.Arbitrary<R3> = fc.letrec<{ v: R3 }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("v"), { maxLength: 4 }).map((items): R3 => ({ t: "array", items })),
    fc.array(fc.tuple(tie("v"), tie("v")), { maxLength: 3 }).map((entries): R3 => ({ t: "map", entries })),
    fc.array(tie("v"), { maxLength: 4 }).map((items): R3 => ({ t: "set", items })),
    fc.array(tie("v"), { maxLength: 4 }).map((items): R3 => ({ t: "push", items })),
    fc.tuple(fc.array(fc.tuple(tie("v"), tie("v")), { maxLength: 2 }), tie("v")).map(([entries, value]): R3 => ({ t: "attr", entries, value })),
  ),
})).v;

function cutsFrom(seeds: readonly number[], length: number): number[] {
  return [...new Set(seeds.map((n) => n % (length + 1)))].sort((a, b) => a - b);
}

describe("RESP3 property", () => {
  it("random nested values, concatenated and cut at random points, decode to what was written, in both modes, strings or Buffers", () => {
    fc.assert(
      fc.property(
        fc.array(r3, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.constantFrom<Mode>("compat", "native"),
        fc.boolean(),
        (values, seeds, mode, buffers) => {
          const bytes = writeR3(...values);
          const how: Expect = { mode, buffers };
          expect(decode(bytes, mode, cutsFrom(seeds, bytes.length), buffers)).toEqual(values.map((v) => expectedEvent(v, how)));
        },
      ),
      { numRuns: 600 },
    );
  });

  it("fed one byte at a time, random values decode the same", () => {
    fc.assert(
      fc.property(fc.array(r3, { minLength: 1, maxLength: 3 }), fc.constantFrom<Mode>("compat", "native"), (values, mode) => {
        const bytes = writeR3(...values);
        const ones = Array.from({ length: bytes.length }, (_, i) => i + 1);
        expect(decode(bytes, mode, ones)).toEqual(values.map((v) => expectedEvent(v, { mode, buffers: false })));
      }),
      { numRuns: 150 },
    );
  });

  it("the writer and the expectation agree on a hand-checked value (guards the test-side model)", () => {
    const v: R3 = {
      t: "map",
      entries: [
        [{ t: "bulk", b: "k" }, { t: "set", items: [{ t: "push", items: [{ t: "double", text: "inf" }, { t: "bool", v: true }] }] }],
        [{ t: "int", n: 2n ** 60n }, { t: "attr", entries: [[{ t: "simple", s: "a" }, { t: "null" }]], value: { t: "verbatim", format: "txt", text: "hi" } }],
      ],
    };
    expect(writeR3(v).toString()).toBe("%2\r\n$1\r\nk\r\n~1\r\n>2\r\n,inf\r\n#t\r\n:1152921504606846976\r\n|1\r\n+a\r\n_\r\n=6\r\ntxt:hi\r\n");
    expect(expected(v, { mode: "compat", buffers: false })).toEqual(["k", [["inf", 1]], 1152921504606846976n, "hi"]);
    expect(expected(v, { mode: "native", buffers: false })).toEqual(
      new Map<unknown, unknown>([
        ["k", new Set([[Infinity, true]])],
        [1152921504606846976n, "hi"],
      ]),
    );
  });
});

// ---------------------------------------------------------------------------
// Garbage and hostile input.

function protocolOnly(events: readonly unknown[]): string[] {
  return events.filter((e): e is { protocol: string } => typeof e === "object" && e !== null && "protocol" in e).map((e) => e.protocol);
}

describe("garbage and deep nesting", () => {
  it("fuzzed bytes: write() never throws, at most one ProtocolError, nothing after it, bounded time", () => {
    const start = Date.now();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 6 }), fc.constantFrom<Mode>("compat", "native"), (bytes, seeds, mode) => {
        const { decoder, events } = harness(mode, { maxReplyBytes: 4096 });
        const b = Buffer.from(bytes);
        let prev = 0;
        for (const cut of cutsFrom(seeds, b.length)) {
          decoder.write(b.subarray(prev, cut));
          prev = cut;
        }
        decoder.write(b.subarray(prev));
        const p = events.findIndex((e) => typeof e === "object" && e !== null && "protocol" in e);
        if (p !== -1) expect(p).toBe(events.length - 1);
        expect(protocolOnly(events).length).toBeLessThanOrEqual(1);
        for (const m of protocolOnly(events)) expect(m).toMatch(/^(Invalid RESP|Reply exceeds maxReplyBytes)/);
      }),
      { numRuns: 3000 },
    );
    expect(Date.now() - start).toBeLessThan(20_000);
  });

  it("fuzzed RESP-like bytes (type bytes, digits, CR, LF): same guarantees", () => {
    const alphabet = fc.constantFrom(..."$*%~>|+-:,#_(!=;.?0123456789\r\n\r\nabtf".split("").map((c) => c.charCodeAt(0)));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 300 }), fc.nat(), fc.constantFrom<Mode>("compat", "native"), (codes, seed, mode) => {
        const { decoder, events } = harness(mode, { maxReplyBytes: 1 << 16 });
        const b = Buffer.from(codes);
        const cut = seed % (b.length + 1);
        expect(() => {
          decoder.write(b.subarray(0, cut));
          decoder.write(b.subarray(cut));
        }).not.toThrow();
        expect(protocolOnly(events).length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 3000 },
    );
  });

  it("valid streams with one byte changed: never throws, decodes or fails with one ProtocolError", () => {
    fc.assert(
      fc.property(fc.array(r3, { minLength: 1, maxLength: 4 }), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(), (values, at, byte, seed) => {
        const b = Buffer.from(writeR3(...values));
        b[at % b.length] = byte;
        const { decoder, events } = harness("native", { maxReplyBytes: 1 << 16 });
        const cut = seed % (b.length + 1);
        decoder.write(b.subarray(0, cut));
        decoder.write(b.subarray(cut));
        expect(protocolOnly(events).length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ["arrays", "*1\r\n"],
    ["maps", "%1\r\n+k\r\n"],
    ["sets", "~1\r\n"],
    ["pushes", ">1\r\n"],
    ["attributes", "|1\r\n+k\r\n"],
  ])("100k nested %s: one ProtocolError, no stack overflow, quickly", (_, level) => {
    for (const chunked of [false, true]) {
      const bytes = Buffer.from(level.repeat(100_000) + ":1\r\n");
      const { decoder, events } = harness();
      const start = Date.now();
      if (chunked) for (let i = 0; i < bytes.length; i += 1000) decoder.write(bytes.subarray(i, i + 1000));
      else decoder.write(bytes);
      expect(Date.now() - start).toBeLessThan(2000);
      expect(events).toEqual([{ protocol: `Invalid RESP from server: aggregates nested deeper than ${DEFAULT_MAX_DEPTH}` }]);
    }
  });

  it("protocol error messages never quote the reply's bytes (they may be anyone's data)", () => {
    const secret = "hunter2secret";
    for (const wire of [`#${secret}\r\n`, `,${secret}\r\n`, `(${secret}\r\n`, `:${secret}\r\n`, `$${secret}\r\n`, `*1${secret}\r\n`, `=${secret.length}\r\n${secret}\r\n`, `+${secret}\rx`, `_${secret}\r\n`]) {
      const messages = protocolOnly(decode(wire));
      expect(messages, wire).toHaveLength(1);
      expect(messages[0], wire).not.toContain("hunter");
    }
  });

  it("the depth limit is configurable: maxDepth levels decode, one more fails", () => {
    const nested = (depth: number): string => "*1\r\n".repeat(depth) + ":7\r\n";
    const wrap = (depth: number): unknown => (depth === 0 ? 7 : [wrap(depth - 1)]);
    expect(DEFAULT_MAX_DEPTH).toBe(128);
    expect(decode(nested(128))).toEqual([{ reply: wrap(128) }]);
    expect(protocolOnly(decode(nested(129)))).toHaveLength(1);
    const { decoder, events } = harness("compat", { maxDepth: 3 });
    decoder.write(Buffer.from(nested(3) + nested(4)));
    expect(events).toEqual([{ reply: wrap(3) }, { protocol: "Invalid RESP from server: aggregates nested deeper than 3" }]);
  });

  it.each([
    ["streamed string", "$?\r\n;4\r\nHell\r\n;0\r\n", /streamed RESP3/],
    ["streamed array", "*?\r\n:1\r\n.\r\n", /streamed RESP3/],
    ["verbatim string without format", "=3\r\nabc\r\n", /verbatim/],
    ["bad boolean", "#x\r\n", /bad boolean/],
    ["bad null", "_x\r\n", /bad null/],
    ["bad double", ",1.2.3\r\n", /bad double/],
    ["bad big number", "(12a\r\n", /bad big number/],
    ["negative map size", "%-1\r\n", /bad length/],
    ["bulk not ended by CRLF", "$3\r\nabcd\r\n", /not terminated by CRLF/],
    ["bulk not ended by CRLF, split", "$3\r\nab|cxx", /not terminated by CRLF/],
    ["LF without CR", "+OK\n", /LF without CR/],
    ["CR without LF", "+O\rK\r\n", /CR without LF/],
    ["empty length", "$\r\n", /bad length/],
    ["empty integer", ":\r\n", /^Invalid RESP integer/],
    ["length with too many digits", `*${"9".repeat(20)}\r\n`, /bad length/],
    ["unknown type byte", "@x\r\n", /as reply type byte/],
    ["line cut then malformed", "#t|\n", /malformed "#" line/],
  ])("%s is a ProtocolError", (_, wire, message) => {
    // `|` marks a chunk boundary.
    const parts = wire.split("|");
    const { decoder, events } = harness();
    for (const p of parts) decoder.write(Buffer.from(p));
    decoder.write(Buffer.from("+LATER\r\n"));
    expect(events).toHaveLength(1);
    expect(protocolOnly(events)[0]).toMatch(message);
  });
});

// ---------------------------------------------------------------------------
// Push frames.

describe("push frames", () => {
  it("go to onPush, never onReply, interleaved with replies in wire order", () => {
    const wire = "+OK\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n:1\r\n>2\r\n+invalidate\r\n*1\r\n$3\r\nkey\r\n>0\r\n*1\r\n>1\r\n:5\r\n";
    for (const mode of MODES) {
      const expectedEvents = [
        { reply: "OK" },
        { push: ["message", "ch", "hello"] },
        { reply: 1 },
        { push: ["invalidate", ["key"]] },
        { push: [] },
        { reply: [[5]] }, // a push nested in an aggregate is an array
      ];
      expect(decode(wire, mode)).toEqual(expectedEvents);
      const bytes = Buffer.from(wire);
      for (let cut = 0; cut <= bytes.length; cut++) expect(decode(bytes, mode, [cut]), `cut ${cut}`).toEqual(expectedEvents);
    }
  });

  it("without an onPush handler a push frame is a ProtocolError", () => {
    const { decoder, events } = harness("compat", { noPush: true });
    decoder.write(Buffer.from("+A\r\n>1\r\n+x\r\n+B\r\n"));
    expect(events).toEqual([{ reply: "A" }, { protocol: "Invalid RESP from server: a RESP3 push frame, and no push handler" }]);
  });

  it("an attribute before a push frame is dropped; the push still goes to onPush", () => {
    expect(decode("|1\r\n+a\r\n+b\r\n>1\r\n+x\r\n")).toEqual([{ push: ["x"] }]);
  });

  it("setPushReturnBuffers: values in push frames follow their own wish, replies theirs", () => {
    const got: unknown[] = [];
    const d = new RespDecoder({ onReply: (r) => got.push(["reply", r]), onPush: (f) => got.push(["push", f]), onErrorReply: () => undefined, onProtocolError: (e) => { throw e; } });
    d.setReturnBuffers(false);
    d.setPushReturnBuffers(true);
    d.write(Buffer.from("$1\r\na\r\n>2\r\n$1\r\nb\r\n*1\r\n$1\r\nc\r\n$1\r\nd\r\n"));
    d.setPushReturnBuffers(undefined);
    d.write(Buffer.from(">1\r\n$1\r\ne\r\n"));
    expect(got).toEqual([
      ["reply", "a"],
      ["push", [Buffer.from("b"), [Buffer.from("c")]]],
      ["reply", "d"],
      ["push", ["e"]],
    ]);
  });

  it("reset() from inside onPush drops the rest of the chunk", () => {
    const got: unknown[] = [];
    const d: Decoder = new Decoder({
      onReply: (r) => got.push(r),
      onPush: (f) => {
        got.push(f);
        d.reset();
      },
      onErrorReply: () => undefined,
      onProtocolError: (e) => {
        throw e;
      },
    });
    d.write(Buffer.from(">1\r\n+p\r\n+STALE\r\n*2\r\n"));
    d.write(Buffer.from("+FRESH\r\n"));
    expect(got).toEqual([["p"], "FRESH"]);
  });
});

// ---------------------------------------------------------------------------
// Big bulk strings and maxReplyBytes.

describe("bulk strings across chunks", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("a huge announced bulk fails at once against maxReplyBytes, before any allocation", () => {
    for (const header of ["$1000000000\r\n", "!1000000000\r\n", "=1000000000\r\n", "*1\r\n$1000000000\r\n"]) {
      const allocUnsafe = vi.spyOn(Buffer, "allocUnsafe");
      const alloc = vi.spyOn(Buffer, "alloc");
      const { decoder, events } = harness("compat"); // default limit, 512 MiB
      decoder.write(Buffer.from(header));
      expect(events, header).toEqual([{ protocol: "Reply exceeds maxReplyBytes (536870912 bytes)" }]);
      expect(allocUnsafe.mock.calls.filter(([n]) => (n as number) > 1 << 20), header).toEqual([]);
      expect(alloc.mock.calls.filter(([n]) => (n as number) > 1 << 20), header).toEqual([]);
      vi.restoreAllMocks();
    }
  });

  it("the announced length counts with the bytes of the reply already read", () => {
    const { decoder, events } = harness("compat", { maxReplyBytes: 100 });
    decoder.write(Buffer.from("*2\r\n$40\r\n" + "x".repeat(40) + "\r\n"));
    expect(events).toEqual([]);
    decoder.write(Buffer.from("$60\r\n" + "y".repeat(10))); // 4 + 49 + 5 + 60 + 2 > 100
    expect(protocolOnly(events)).toEqual(["Reply exceeds maxReplyBytes (100 bytes)"]);
  });

  it("a multi-chunk bulk is assembled in one Buffer of its length, allocated once, never concatenated", () => {
    const size = 1024 * 1024 + 3;
    const body = Buffer.alloc(size, 0x62);
    body.write("é", size - 2, "utf8"); // a two-byte character at the end
    const wire = Buffer.concat([Buffer.from(`$${size}\r\n`), body, Buffer.from("\r\n")]);
    for (const buffers of [true, false]) {
      const allocUnsafe = vi.spyOn(Buffer, "allocUnsafe");
      const concat = vi.spyOn(Buffer, "concat");
      const { decoder, events } = harness("compat", { buffers });
      for (let i = 0; i < wire.length; i += 65536) decoder.write(wire.subarray(i, i + 65536));
      expect(allocUnsafe.mock.calls.map(([n]) => n).filter((n) => (n as number) > 4096)).toEqual([size]);
      expect(concat).not.toHaveBeenCalled();
      expect(events).toHaveLength(1);
      const reply = (events[0] as { reply: unknown }).reply;
      if (buffers) {
        expect(Buffer.isBuffer(reply)).toBe(true);
        expect((reply as Buffer).equals(body)).toBe(true);
        // Its own memory, exactly its size: holding the reply holds nothing more.
        expect((reply as Buffer).buffer.byteLength).toBe(size);
      } else {
        expect(reply).toBe(body.toString("utf8"));
      }
      vi.restoreAllMocks();
    }
  });

  it("a bulk whose CRLF is split from its body, at every split of the terminator", () => {
    const wire = Buffer.from("$5\r\nhello\r\n+OK\r\n");
    for (let a = 4; a <= 11; a++) {
      for (let b = a; b <= 12; b++) expect(decode(wire, "compat", [a, b]), `${a} ${b}`).toEqual([{ reply: "hello" }, { reply: "OK" }]);
    }
  });

  it("reset() in the middle of a big bulk drops it; the next stream starts clean", () => {
    const { decoder, events } = harness();
    decoder.write(Buffer.from("$100000\r\n" + "x".repeat(50_000)));
    decoder.reset();
    decoder.write(Buffer.from("+OK\r\n"));
    expect(events).toEqual([{ reply: "OK" }]);
  });
});
