import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encodeCommand, validateCommand, type Arg } from "../../src/protocol/encode.js";

/** Bytes as the socket would send them (a string is written as UTF-8). */
function wire(args: readonly Arg[]): Buffer {
  const e = encodeCommand(args);
  return typeof e === "string" ? Buffer.from(e, "utf8") : e;
}

/** A strict test-side parser of one RESP request (array of bulk strings); throws on any deviation. */
function parseRequest(buf: Buffer): Buffer[] {
  let pos = 0;
  const line = (): string => {
    const end = buf.indexOf("\r\n", pos);
    if (end === -1) throw new Error(`no CRLF after offset ${pos}`);
    const text = buf.toString("latin1", pos, end);
    pos = end + 2;
    return text;
  };
  const header = line();
  if (!/^\*[1-9]\d*$/.test(header)) throw new Error(`bad array header ${JSON.stringify(header)}`);
  const count = Number(header.slice(1));
  const args: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const len = line();
    if (!/^\$(0|[1-9]\d*)$/.test(len)) throw new Error(`bad bulk header ${JSON.stringify(len)}`);
    const n = Number(len.slice(1));
    args.push(buf.subarray(pos, pos + n));
    pos += n;
    if (buf.toString("latin1", pos, pos + 2) !== "\r\n") throw new Error(`bulk ${i} not followed by CRLF`);
    pos += 2;
  }
  if (pos !== buf.length) throw new Error(`${buf.length - pos} trailing bytes`);
  return args;
}

describe("encodeCommand: golden vectors", () => {
  it("encodes the RESP spec examples byte for byte", () => {
    expect(encodeCommand(["LLEN", "mylist"])).toBe("*2\r\n$4\r\nLLEN\r\n$6\r\nmylist\r\n");
    expect(encodeCommand(["GET", "key"])).toBe("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
    expect(encodeCommand(["PING"])).toBe("*1\r\n$4\r\nPING\r\n");
    expect(encodeCommand(["SET", "mykey", "myvalue"])).toBe("*3\r\n$3\r\nSET\r\n$5\r\nmykey\r\n$7\r\nmyvalue\r\n");
  });

  it("encodes an empty string argument as a zero-length bulk", () => {
    expect(encodeCommand(["SET", "k", ""])).toBe("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  });

  it("returns a string when every argument is text or a number", () => {
    expect(typeof encodeCommand(["INCRBY", "n", 5])).toBe("string");
    expect(typeof encodeCommand(["SET", "k", 10n])).toBe("string");
  });
});

describe("encodeCommand: UTF-8 byte lengths", () => {
  it("counts bytes, not UTF-16 code units, for a 2-byte character", () => {
    expect("é".length).toBe(1);
    expect(encodeCommand(["SET", "k", "é"])).toBe("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n");
  });

  it("counts 4 bytes for an emoji (a surrogate pair)", () => {
    expect("😀".length).toBe(2);
    expect(encodeCommand(["SET", "k", "😀"])).toBe("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n😀\r\n");
  });

  it("counts mixed text: 'aé€😀' is 1 + 2 + 3 + 4 = 10 bytes", () => {
    expect(wire(["ECHO", "aé€😀"]).toString("latin1")).toBe(
      "*2\r\n$4\r\nECHO\r\n$10\r\n" + Buffer.from("aé€😀", "utf8").toString("latin1") + "\r\n",
    );
  });

  it("encodes a multi-byte key and value so the wire parses back to the same text", () => {
    const args = ["HSET", "ключ", "поле", "значение 🎉"];
    expect(parseRequest(wire(args)).map((b) => b.toString("utf8"))).toEqual(args);
  });
});

describe("encodeCommand: numbers", () => {
  it.each<[Arg, string]>([
    [0, "0"],
    [42, "42"],
    [-7, "-7"],
    [3.14, "3.14"],
    [-0.5, "-0.5"],
    [-0, "0"],
    [Number.MAX_SAFE_INTEGER, "9007199254740991"],
    [1e21, "1e+21"],
    [0n, "0"],
    [12345678901234567890n, "12345678901234567890"],
    [-98765432109876543210n, "-98765432109876543210"],
  ])("encodes %s as the bulk string %s", (arg, text) => {
    expect(encodeCommand(["SET", "k", arg])).toBe(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${text.length}\r\n${text}\r\n`);
  });
});

describe("encodeCommand: Buffers", () => {
  it("returns a Buffer when any argument is a Buffer", () => {
    const e = encodeCommand(["SET", "k", Buffer.from("v")]);
    expect(Buffer.isBuffer(e)).toBe(true);
    expect((e as Buffer).toString("latin1")).toBe("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
  });

  it("writes CRLF and NUL inside a Buffer verbatim, length-prefixed", () => {
    const value = Buffer.from([0x61, 0x0d, 0x0a, 0x00, 0x62, 0xff, 0x0d]);
    const e = encodeCommand(["SET", "k", value]);
    expect(Buffer.isBuffer(e)).toBe(true);
    expect(e).toEqual(
      Buffer.concat([Buffer.from("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$7\r\n"), value, Buffer.from("\r\n")]),
    );
  });

  it("handles Buffers at the start, in the middle and at the end, with empty Buffers", () => {
    const args: Arg[] = [Buffer.from("SET"), "k\u00e9", Buffer.alloc(0), 12, Buffer.from([0, 13, 10]), -3n, "tail"];
    const parsed = parseRequest(wire(args));
    expect(parsed).toEqual([
      Buffer.from("SET"),
      Buffer.from("k\u00e9", "utf8"),
      Buffer.alloc(0),
      Buffer.from("12"),
      Buffer.from([0, 13, 10]),
      Buffer.from("-3"),
      Buffer.from("tail"),
    ]);
  });

  it("produces the same bytes for a Buffer as for the equal UTF-8 string", () => {
    expect(wire(["SET", "k", Buffer.from("é😀", "utf8")])).toEqual(wire(["SET", "k", "é😀"]));
  });

  it("round-trips a Buffer-holding command byte-exact (property)", () => {
    const arg = fc.oneof(
      fc.string({ unit: "binary" }),
      fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
      fc.integer(),
      fc.bigInt(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
    );
    fc.assert(
      fc.property(fc.array(arg, { minLength: 1, maxLength: 12 }), (args) => {
        const parsed = parseRequest(wire(args));
        expect(parsed).toEqual(args.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(String(a), "utf8"))));
      }),
      { numRuns: 300 },
    );
  });
});

describe("encodeCommand: validation", () => {
  it("throws the same TypeError as validateCommand for a bad argument, text-only or with Buffers", () => {
    expect(() => encodeCommand(["set", "k", Number.NaN])).toThrow(TypeError);
    expect(() => encodeCommand(["set", "k", Number.NaN])).toThrow(/^Invalid argument 2 of SET: got NaN;/);
    const withBuffer: unknown = ["set", Buffer.from("k"), undefined];
    expect(() => encodeCommand(withBuffer as Arg[])).toThrow(/^Invalid argument 2 of SET: got undefined;/);
  });

  it("throws for an empty command", () => {
    expect(() => encodeCommand([])).toThrow(/non-empty array/);
  });
});

describe("validateCommand", () => {
  it("accepts strings, Buffers, finite numbers and bigints", () => {
    expect(() => validateCommand(["SET", "k", Buffer.from("v"), 1, -1.5, 2n, ""])).not.toThrow();
  });

  it.each<[string, unknown, string]>([
    ["undefined", undefined, "undefined"],
    ["null", null, "null"],
    ["an object", { a: 1 }, "an object"],
    ["an array", ["x"], "an array"],
    ["NaN", Number.NaN, "NaN"],
    ["Infinity", Number.POSITIVE_INFINITY, "Infinity"],
    ["-Infinity", Number.NEGATIVE_INFINITY, "-Infinity"],
    ["a boolean", true, "boolean"],
    ["a symbol", Symbol("s"), "symbol"],
    ["a function", () => 1, "function"],
    ["a Uint8Array that is not a Buffer", new Uint8Array([1]), "an object"],
  ])("rejects %s with a TypeError naming the command and the index", (_label, bad, got) => {
    const args: unknown = ["set", "key", bad];
    let caught: unknown;
    try {
      validateCommand(args);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TypeError);
    const message = (caught as TypeError).message;
    expect(message).toContain("Invalid argument 2 of SET");
    expect(message).toContain(`got ${got}`);
  });

  it("names the index of the first bad argument, not a later one", () => {
    expect(() => validateCommand(["HSET", "h", "f", undefined, "g", null])).toThrow(
      /^Invalid argument 3 of HSET: got undefined;/,
    );
  });

  it("upper-cases a Buffer command name", () => {
    expect(() => validateCommand([Buffer.from("get"), null])).toThrow(/^Invalid argument 1 of GET: got null;/);
  });

  it("never puts the other arguments (they may be secrets) into the message", () => {
    let message = "";
    try {
      validateCommand(["AUTH", "alice", "s3cret-password", undefined]);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("Invalid argument 3 of AUTH");
    expect(message).not.toContain("s3cret-password");
    expect(message).not.toContain("alice");
  });

  it("rejects a bad command name at index 0", () => {
    expect(() => validateCommand([undefined, "k"])).toThrow(TypeError);
    expect(() => validateCommand([undefined, "k"])).toThrow(/Invalid argument 0 of/);
  });

  it.each<[string, unknown]>([
    ["an empty array", []],
    ["a string", "GET key"],
    ["undefined", undefined],
    ["null", null],
    ["an object", { 0: "GET", length: 1 }],
  ])("rejects %s as the whole command", (_label, bad) => {
    expect(() => validateCommand(bad)).toThrow(TypeError);
    expect(() => validateCommand(bad)).toThrow(/non-empty array/);
  });
});
