// Exact integers: an integer reply beyond 2^53 is never rounded. The
// `integers` option ("number" default, "bigint", "string") against a real
// server, over both transports; the typed helpers in each mode.
import { describe, expect, it } from "vitest";
import { RedisError, UnsafeIntegerError, type Reply } from "../../src/index.js";
import { resolveOptions } from "../../src/options.js";
import { rejectionOf, TRANSPORTS, useRedis } from "./support.js";

const redis = useRedis();

const TWO_53_PLUS_1 = "9007199254740993";

describe("integers option", () => {
  it("defaults to \"number\" and rejects an unknown value with a TypeError naming the option and the choices", () => {
    expect(resolveOptions({}).integers).toBe("number");
    expect(resolveOptions({ integers: "bigint" }).integers).toBe("bigint");
    expect(resolveOptions({ integers: "string" }).integers).toBe("string");
    const bad = { integers: "float" } as unknown as Parameters<typeof resolveOptions>[0];
    expect(() => resolveOptions(bad)).toThrow(new TypeError('Option integers must be "number", "bigint" or "string", got float'));
  });
});

for (const transport of TRANSPORTS) {
  describe(`exact integers (${transport})`, () => {
    const k = (name: string): string => `${transport}:int:${name}`;

    it("default: INCRBY past 2^53 gives exact bigints; small integers stay numbers", async () => {
      const c = redis.client(transport);
      expect(await c.command(["SET", k("big"), TWO_53_PLUS_1])).toBe("OK");
      expect(await c.command(["INCRBY", k("big"), 0])).toBe(9007199254740993n);
      expect(await c.command(["INCRBY", k("big"), 1])).toBe(9007199254740994n);
      expect(await c.command(["DECRBY", k("big"), 3])).toBe(9007199254740991); // back in the safe range: a number
      expect(await c.command(["INCR", k("big")])).toBe(9007199254740992n); // 2^53 itself is beyond MAX_SAFE_INTEGER
      expect(await c.command(["GET", k("big")])).toBe("9007199254740992");
      expect(await c.command(["INCRBY", k("big"), 9n])).toBe(9007199254741001n);
      expect(await c.command(["INCR", k("small")])).toBe(1);

      await c.command(["SET", k("max"), "9223372036854775807"]);
      expect(await c.command(["INCRBY", k("max"), 0])).toBe(9223372036854775807n);
      await c.command(["SET", k("min"), "-9223372036854775808"]);
      expect(await c.command(["INCRBY", k("min"), 0])).toBe(-9223372036854775808n);
      expect(await c.command(["DECRBY", k("neg"), TWO_53_PLUS_1])).toBe(-9007199254740993n);
    });

    it("default: nested integers (BITFIELD i64, EXEC results) follow the same rule", async () => {
      const c = redis.client(transport);
      expect(await c.command(["BITFIELD", k("bf"), "SET", "i64", 0, TWO_53_PLUS_1, "GET", "i64", 0, "INCRBY", "i64", 0, 1, "GET", "u8", 0])).toEqual([
        0,
        9007199254740993n,
        9007199254740994n,
        0,
      ]);
      expect(await c.command(["BITFIELD", k("bf2"), "SET", "i64", 0, "-9223372036854775808", "GET", "i64", 0])).toEqual([0, -9223372036854775808n]);
      const results = await c.batch(
        [
          ["SET", k("tx"), TWO_53_PLUS_1],
          ["INCRBY", k("tx"), 2],
          ["INCR", k("tx-small")],
          ["GET", k("tx")],
        ],
        { atomic: true },
      );
      expect(results).toEqual(["OK", 9007199254740995n, 1, "9007199254740995"]);
    });

    it('"bigint": every integer reply is a bigint, nested ones too', async () => {
      const c = redis.client(transport, { integers: "bigint" });
      await c.command(["SET", k("b"), TWO_53_PLUS_1]);
      expect(await c.command(["INCRBY", k("b"), 1])).toBe(9007199254740994n);
      expect(await c.command(["INCR", k("b-small")])).toBe(1n);
      expect(await c.command(["EXISTS", k("b"), k("b-small"), k("none")])).toBe(2n);
      expect(await c.command(["BITFIELD", k("b-bf"), "SET", "i64", 0, TWO_53_PLUS_1, "GET", "i64", 0])).toEqual([0n, 9007199254740993n]);
      expect(await c.command(["GET", k("b")])).toBe("9007199254740994"); // bulk strings stay strings
    });

    it('"string": every integer reply is its decimal text, nested ones too', async () => {
      const c = redis.client(transport, { integers: "string" });
      await c.command(["SET", k("s"), TWO_53_PLUS_1]);
      expect(await c.command(["INCRBY", k("s"), 1])).toBe("9007199254740994");
      expect(await c.command(["INCR", k("s-small")])).toBe("1");
      expect(await c.command(["BITFIELD", k("s-bf"), "SET", "i64", 0, "-9223372036854775808", "GET", "i64", 0])).toEqual(["0", "-9223372036854775808"]);
    });

    it("typed helpers return exact numbers in every mode, and reject (never round) past 2^53", async () => {
      for (const integers of ["number", "bigint", "string"] as const) {
        const c = redis.client(transport, { integers });
        const key = k(`h-${integers}`);
        const n: number = await c.incrby(key, 41);
        expect(n, integers).toBe(41);
        expect(await c.incr(key), integers).toBe(42);
        expect(await c.exists(key), integers).toBe(1);
        expect(await c.expire(key, 100), integers).toBe(true);
        expect(await c.sismember(k("no-set"), "x"), integers).toBe(false);
        expect(await c.decrby(key, 9007199254740991n), integers).toBe(-9007199254740949);

        const err = await rejectionOf(c.incrby(key, -100)); // -9007199254741049: beyond the safe range
        expect(err, integers).toBeInstanceOf(UnsafeIntegerError);
        expect(err).toBeInstanceOf(RedisError);
        expect((err as UnsafeIntegerError).value).toBe(-9007199254741049n);
        expect((err as UnsafeIntegerError).code).toBe("ERR_RESPITE_UNSAFE_INTEGER");
        expect((err as UnsafeIntegerError).maybeExecuted).toBe(true); // the command ran
        expect(await c.get(key)).toBe("-9007199254741049");
      }
    });

    it("integer replies keep their exact value across many pipelined replies mixing sizes", async () => {
      const c = redis.client(transport);
      const expected: Reply[] = [];
      const sent: Promise<Reply>[] = [];
      for (let i = 0; i < 200; i++) {
        const big = 9007199254740993n + BigInt(i) * 1_000_003n;
        const value = i % 3 === 0 ? BigInt(i) : i % 3 === 1 ? big : -big;
        sent.push(c.command(["SET", k(`m${i}`), value]).then(() => c.command(["INCRBY", k(`m${i}`), 0])));
        expected.push(i % 3 === 0 ? i : value);
      }
      expect(await Promise.all(sent)).toEqual(expected);
    });
  });
}
