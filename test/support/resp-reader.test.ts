// The harness's own RESP2 reader and command writer (resp-reader.ts,
// resp-writer.ts): the oracles of admin(), the MONITOR taps and the fake
// servers rest on them, so they are checked here on hand-written bytes
// (never against src/protocol), in every split, and once against a real server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplyError } from "../../src/errors.js";
import { readAll, RespError, RespProtocolError, RespReader, type RespValue } from "./resp-reader.js";
import { startRedis, type RedisServer } from "./redis-server.js";
import { writeCommand, writeReplies } from "./resp-writer.js";

const STREAM =
  "+OK\r\n" +
  "-ERR wrong\r\n" +
  ":0\r\n" +
  ":-42\r\n" +
  ":9007199254740991\r\n" +
  ":9007199254740992\r\n" +
  ":-9223372036854775808\r\n" +
  "$5\r\nhello\r\n" +
  "$0\r\n\r\n" +
  "$-1\r\n" +
  "$6\r\na\r\nb\nc\r\n" + // CR, LF inside a bulk string are data
  "$3\r\nh\xc3\xa9\r\n" + // "hé" in UTF-8: 3 bytes, 2 characters
  "*0\r\n" +
  "*-1\r\n" +
  "*3\r\n:1\r\n$-1\r\n*2\r\n+a\r\n-NOPE inner\r\n" +
  "*2\r\n*1\r\n*0\r\n$1\r\nx\r\n";

const EXPECTED: RespValue[] = [
  "OK",
  new RespError("ERR wrong"),
  0,
  -42,
  9007199254740991,
  9007199254740992n,
  -9223372036854775808n,
  "hello",
  "",
  null,
  "a\r\nb\nc",
  "hé",
  [],
  null,
  [1, null, ["a", new RespError("NOPE inner")]],
  [[[]], "x"],
];

describe("RespReader", () => {
  const bytes = Buffer.from(STREAM, "latin1");

  it("reads every RESP2 type, nil and nested arrays", () => {
    expect(readAll(bytes)).toEqual(EXPECTED);
  });

  it("gives the same values however the bytes are split (every two-way split, and one byte at a time)", () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const reader = new RespReader();
      const got = [...reader.feed(bytes.subarray(0, cut)), ...reader.feed(bytes.subarray(cut))];
      expect(got, `split at ${cut}`).toEqual(EXPECTED);
      expect(reader.buffered).toBe(0);
    }
    const reader = new RespReader();
    const got: RespValue[] = [];
    for (let i = 0; i < bytes.length; i++) got.push(...reader.feed(bytes.subarray(i, i + 1)));
    expect(got).toEqual(EXPECTED);
  });

  it("returns nothing for an incomplete value and keeps its bytes", () => {
    const reader = new RespReader();
    expect(reader.feed("*2\r\n$3\r\nfoo\r\n$3\r\nba")).toEqual([]);
    expect(reader.buffered).toBe(19);
    expect(reader.feed("r\r\n:7")).toEqual([["foo", "bar"]]);
    expect(reader.buffered).toBe(2);
    expect(reader.feed("\r\n")).toEqual([7]);
  });

  it("refuses bytes that are not RESP2, and everything after them", () => {
    for (const bad of ["?x\r\n", ":12a\r\n", ":\r\n", "$-2\r\n", "$3\r\nabcd\r\n", "*-5\r\n", "+OK\rX", "+O\nK\r\n", "PING\r\n"]) {
      const reader = new RespReader();
      expect(() => reader.feed(bad), JSON.stringify(bad)).toThrow(RespProtocolError);
      expect(() => reader.feed("+OK\r\n")).toThrow(RespProtocolError);
    }
    expect(() => readAll("$3\r\nab")).toThrow(/left over/);
  });

  it("reads what the test-side reply writer writes", () => {
    const replies = ["x", Buffer.from("bin\x00"), 5, null, { simple: "OK" }, { error: "ERR e" }, { nullArray: true as const }, [1, ["y", null]]];
    expect(readAll(writeReplies(replies))).toEqual(["x", "bin\x00", 5, null, "OK", new RespError("ERR e"), null, [1, ["y", null]]]);
  });
});

describe("writeCommand", () => {
  it("writes an array of bulk strings, byte lengths for UTF-8 and Buffers", () => {
    expect(writeCommand(["SET", "k", "é", 12, 34n, Buffer.from([0, 255])]).toString("latin1")).toBe(
      "*6\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\xc3\xa9\r\n$2\r\n12\r\n$2\r\n34\r\n$2\r\n\x00\xff\r\n",
    );
  });

  it("refuses what cannot be sent", () => {
    expect(() => writeCommand([])).toThrow(TypeError);
    expect(() => writeCommand(["SET", "k", Number.NaN])).toThrow(TypeError);
    expect(() => writeCommand(["SET", "k", null as never])).toThrow(TypeError);
  });
});

describe("admin() on the harness's own codec, against a real server", () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("round-trips UTF-8 text with CRLF inside, integers, nil, arrays and nested errors", async () => {
    expect(await server.admin(["SET", "rr:k", "héllo\r\nworld"])).toBe("OK");
    expect(await server.admin(["GET", "rr:k"])).toBe("héllo\r\nworld");
    expect(await server.admin(["STRLEN", "rr:k"])).toBe(13);
    expect(await server.admin(["GET", "rr:missing"])).toBeNull();
    expect(await server.admin(["SET", "rr:n", "9223372036854775806"])).toBe("OK");
    expect(await server.admin(["INCR", "rr:n"])).toBe(9223372036854775807n); // exact, not a rounded double
    expect(await server.admin(["DECRBY", "rr:n", "9223372036854775807"])).toBe(0);
    expect(await server.admin(["RPUSH", "rr:l", "a", "", "c"])).toBe(3);
    expect(await server.admin(["LRANGE", "rr:l", 0, -1])).toEqual(["a", "", "c"]);
    const exec = await server.admin(["EVAL", "return {1, {'x', false}, redis.error_reply('MY err')}", 0]);
    expect(exec).toEqual([1, ["x", null], expect.any(ReplyError)]);
    expect(((exec as unknown[])[2] as ReplyError).message).toBe("MY err");
    const err = await server.admin(["INCR", "rr:k"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplyError);
    expect((err as ReplyError).code).toBe("ERR");
  });
});
