// Typed helpers (issue 7): exact values and types against a real server, over both transports.
import { describe, expect, expectTypeOf, it } from "vitest";
import { ProtocolError, ReplyError, type Client, type ScoredMember } from "../../src/index.js";
import { setArgs } from "../../src/helpers/strings.js";
import { TRANSPORTS, useRedis } from "./support.js";

const redis = useRedis();

describe("SET options", () => {
  it("builds the arguments in Redis' order", () => {
    expect(setArgs(undefined)).toEqual([]);
    expect(setArgs({ EX: 10, NX: true, GET: true })).toEqual(["EX", 10, "NX", "GET"]);
    expect(setArgs({ PXAT: 1_700_000_000_000, XX: true })).toEqual(["PXAT", 1_700_000_000_000, "XX"]);
    expect(setArgs({ KEEPTTL: true })).toEqual(["KEEPTTL"]);
  });

  it("throws a TypeError naming the conflicting options", () => {
    expect(() => setArgs({ EX: 1, PX: 1000 })).toThrow(new TypeError("SET options EX and PX cannot be combined: choose one"));
    expect(() => setArgs({ EXAT: 1, KEEPTTL: true })).toThrow(new TypeError("SET options EXAT and KEEPTTL cannot be combined: choose one"));
    expect(() => setArgs({ NX: true, XX: true })).toThrow(new TypeError("SET options NX and XX cannot be combined: choose one"));
    expect(() => setArgs({ EX: 0 })).toThrow(new TypeError("SET option EX must be a positive integer, got 0"));
    expect(() => setArgs({ PX: 1.5 })).toThrow(TypeError);
  });
});

for (const transport of TRANSPORTS) {
  describe(`typed helpers (${transport})`, () => {
    const k = (name: string): string => `${transport}:h:${name}`;

    it("strings: get, set with every option, getdel, getex", async () => {
      const c = redis.client(transport);
      expect(await c.get(k("missing"))).toBe(null);
      expect(await c.set(k("s"), "v1")).toBe("OK");
      expect(await c.get(k("s"))).toBe("v1");
      expect(await c.set(k("s"), "v2", { NX: true })).toBe(null);
      expect(await c.set(k("s"), "v2", { XX: true, EX: 100 })).toBe("OK");
      expect(await c.ttl(k("s"))).toBeGreaterThan(95);
      expect(await c.set(k("s"), "v3", { GET: true, KEEPTTL: true })).toBe("v2");
      expect(await c.ttl(k("s"))).toBeGreaterThan(95);
      expect(await c.set(k("new"), "x", { GET: true, NX: true })).toBe(null);
      expect(await c.set(k("px"), 1, { PX: 60_000 })).toBe("OK");
      expect(await c.pttl(k("px"))).toBeGreaterThan(55_000);
      const at = Math.floor(Date.now() / 1000) + 1000;
      expect(await c.set(k("exat"), "x", { EXAT: at })).toBe("OK");
      expect(await c.ttl(k("exat"))).toBeGreaterThan(990);
      expect(await c.set(k("pxat"), "x", { PXAT: at * 1000 })).toBe("OK");
      expect(await c.pttl(k("pxat"))).toBeGreaterThan(990_000);
      await expect(c.set(k("s"), "v", { EX: 1, PX: 1 })).rejects.toThrow(TypeError);
      expect(await c.getdel(k("s"))).toBe("v3");
      expect(await c.getdel(k("s"))).toBe(null);
      await c.set(k("gx"), "g");
      expect(await c.getex(k("gx"), { EX: 50 })).toBe("g");
      expect(await c.ttl(k("gx"))).toBeGreaterThan(45);
      expect(await c.getex(k("gx"), { PERSIST: true })).toBe("g");
      expect(await c.ttl(k("gx"))).toBe(-1);
      expect(await c.getex(k("none"))).toBe(null);
      await expect(c.getex(k("gx"), { EX: 1, PERSIST: true })).rejects.toThrow(TypeError);
      await c.set(k("bin"), Buffer.from([0, 255, 1]));
      expect(await c.getBuffer(k("bin"))).toEqual(Buffer.from([0, 255, 1]));
      expect(await c.getBuffer(k("nobin"))).toBe(null);

    });

    it("counters: incr, incrby, incrbyfloat, decr, decrby", async () => {
      const c = redis.client(transport);
      expect(await c.incr(k("n"))).toBe(1);
      expect(await c.incrby(k("n"), 41)).toBe(42);
      expect(await c.decr(k("n"))).toBe(41);
      expect(await c.decrby(k("n"), 40)).toBe(1);
      expect(await c.incrbyfloat(k("f"), 1.5)).toBe(1.5);
      expect(await c.incrbyfloat(k("f"), -0.25)).toBe(1.25);
      const err = await c.incr(k("f")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReplyError);
      expect((err as ReplyError).message).toBe("ERR value is not an integer or out of range");
    });

    it("keys: mget, mset, del, unlink, exists, expire, pexpire, ttl, pttl, persist", async () => {
      const c = redis.client(transport);
      expect(await c.mset({ [k("a")]: "1", [k("b")]: 2 })).toBe("OK");
      expect(await c.mset([[k("c"), "3"]])).toBe("OK");
      expect(await c.mget(k("a"), k("b"), k("zz"), k("c"))).toEqual(["1", "2", null, "3"]);
      expect(await c.exists(k("a"), k("b"), k("zz"), k("a"))).toBe(3);
      expect(await c.ttl(k("a"))).toBe(-1);
      expect(await c.ttl(k("zz"))).toBe(-2);
      expect(await c.pttl(k("zz"))).toBe(-2);
      expect(await c.expire(k("a"), 100)).toBe(true);
      expect(await c.expire(k("a"), 50, "GT")).toBe(false);
      expect(await c.expire(k("zz"), 100)).toBe(false);
      expect(await c.pexpire(k("b"), 100_000, "NX")).toBe(true);
      expect(await c.pttl(k("b"))).toBeGreaterThan(95_000);
      expect(await c.persist(k("b"))).toBe(true);
      expect(await c.persist(k("b"))).toBe(false);
      expect(await c.del(k("a"), k("zz"))).toBe(1);
      expect(await c.unlink(k("b"), k("c"))).toBe(2);
      expect(await c.exists(k("a"), k("b"), k("c"))).toBe(0);
    });

    it("hashes: hset, hget, hmget, hgetall, hdel, hincrby", async () => {
      const c = redis.client(transport);
      expect(await c.hset(k("h"), "f1", "v1")).toBe(1);
      expect(await c.hset(k("h"), { f1: "v1b", f2: 2, __proto__x: "p" })).toBe(2);
      expect(await c.hset(k("h"), new Map([["f3", "v3"]]))).toBe(1);
      expect(await c.hget(k("h"), "f1")).toBe("v1b");
      expect(await c.hget(k("h"), "nope")).toBe(null);
      expect(await c.hget(k("nohash"), "f")).toBe(null);
      expect(await c.hmget(k("h"), "f2", "nope", "f3")).toEqual(["2", null, "v3"]);
      expect(await c.hgetall(k("h"))).toEqual({ f1: "v1b", f2: "2", __proto__x: "p", f3: "v3" });
      expect(await c.hgetall(k("nohash"))).toEqual({});
      await c.hset(k("proto"), "__proto__", "safe");
      const proto = await c.hgetall(k("proto"));
      expect(Object.keys(proto)).toEqual(["__proto__"]);
      expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
      expect(await c.hincrby(k("h"), "f2", 5)).toBe(7);
      expect(await c.hdel(k("h"), "f1", "nope")).toBe(1);
    });

    it("lists: lpush, rpush, lpop, rpop (with counts), lrange, llen", async () => {
      const c = redis.client(transport);
      expect(await c.rpush(k("l"), "b", "c")).toBe(2);
      expect(await c.lpush(k("l"), "a", "z")).toBe(4);
      expect(await c.lrange(k("l"), 0, -1)).toEqual(["z", "a", "b", "c"]);
      expect(await c.llen(k("l"))).toBe(4);
      expect(await c.lpop(k("l"))).toBe("z");
      expect(await c.rpop(k("l"))).toBe("c");
      expect(await c.lpop(k("l"), 5)).toEqual(["a", "b"]);
      expect(await c.lpop(k("l"))).toBe(null);
      expect(await c.rpop(k("l"), 2)).toBe(null);
      expect(await c.lrange(k("l"), 0, -1)).toEqual([]);
    });

    it("sets: sadd, srem, smembers, sismember, scard", async () => {
      const c = redis.client(transport);
      expect(await c.sadd(k("s"), "a", "b", "c", "a")).toBe(3);
      expect(await c.srem(k("s"), "c", "x")).toBe(1);
      expect((await c.smembers(k("s"))).sort()).toEqual(["a", "b"]);
      expect(await c.sismember(k("s"), "a")).toBe(true);
      expect(await c.sismember(k("s"), "c")).toBe(false);
      expect(await c.scard(k("s"))).toBe(2);
      expect(await c.smembers(k("nos"))).toEqual([]);
    });

    it("sorted sets: zadd (flags), zrem, zrange (scores, BYSCORE, REV, LIMIT), zscore, zincrby", async () => {
      const c = redis.client(transport);
      expect(await c.zadd(k("z"), 1, "one")).toBe(1);
      expect(await c.zadd(k("z"), [{ score: 2, member: "two" }, { score: 3.5, member: "three" }])).toBe(2);
      expect(await c.zadd(k("z"), { minus: -Infinity, plus: Infinity })).toBe(2);
      expect(await c.zadd(k("z"), 10, "one", { XX: true, CH: true })).toBe(1);
      expect(await c.zadd(k("z"), 0, "one", { GT: true })).toBe(0);
      expect(await c.zadd(k("z"), 5, "new", { XX: true })).toBe(0);
      await expect(c.zadd(k("z"), 1, "x", { NX: true, GT: true })).rejects.toThrow(TypeError);
      expect(await c.zrange(k("z"), 0, -1)).toEqual(["minus", "two", "three", "one", "plus"]);
      const scored: ScoredMember[] = await c.zrange(k("z"), 0, -1, { withScores: true });
      expect(scored).toEqual([
        { member: "minus", score: -Infinity },
        { member: "two", score: 2 },
        { member: "three", score: 3.5 },
        { member: "one", score: 10 },
        { member: "plus", score: Infinity },
      ]);
      expect(await c.zrange(k("z"), "(2", 10, { by: "SCORE" })).toEqual(["three", "one"]);
      expect(await c.zrange(k("z"), "+inf", "-inf", { by: "SCORE", rev: true, limit: { offset: 1, count: 2 }, withScores: true })).toEqual([
        { member: "one", score: 10 },
        { member: "three", score: 3.5 },
      ]);
      expect(await c.zscore(k("z"), "three")).toBe(3.5);
      expect(await c.zscore(k("z"), "plus")).toBe(Infinity);
      expect(await c.zscore(k("z"), "nobody")).toBe(null);
      expect(await c.zincrby(k("z"), 0.5, "three")).toBe(4);
      expect(await c.zrem(k("z"), "minus", "plus", "nobody")).toBe(2);
    });

    it("ping and echo; a wrong type is a ReplyError; command() still sends anything", async () => {
      const c = redis.client(transport);
      expect(await c.ping()).toBe("PONG");
      expect(await c.ping("hello")).toBe("hello");
      expect(await c.echo("a\r\nb")).toBe("a\r\nb");
      await c.set(k("str"), "x");
      const err = await c.hget(k("str"), "f").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReplyError);
      expect((err as ReplyError).code).toBe("WRONGTYPE");
      expect(await c.command(["STRLEN", k("str")])).toBe(1);
    });

    it("a reply of the wrong shape is a ProtocolError naming the command, not a lying type", async () => {
      const c = redis.client(transport);
      // Pretend the server answered GET with an integer (a module or proxy could).
      const fake = Object.create(c) as typeof c;
      fake.command = () => Promise.resolve(7);
      const err = await fake.get("k").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).message).toBe("Unexpected reply to GET: got number");
    });
  });
}

// Compile-time checks only (typecheck runs them; never called, so nothing is sent).
export function typeChecks(c: Client, k: (name: string) => string): void {
  expectTypeOf(c.get(k("s"))).resolves.toEqualTypeOf<string | null>();
  expectTypeOf(c.set(k("s"), "v")).resolves.toEqualTypeOf<"OK">();
  expectTypeOf(c.set(k("s"), "v", { NX: true })).resolves.toEqualTypeOf<"OK" | null>();
  expectTypeOf(c.set(k("s"), "v", { GET: true })).resolves.toEqualTypeOf<string | null>();
  expectTypeOf(c.hgetall(k("h"))).resolves.toEqualTypeOf<Record<string, string>>();
  expectTypeOf(c.lpop(k("l"), 2)).resolves.toEqualTypeOf<string[] | null>();
  expectTypeOf(c.zrange(k("z"), 0, 1)).resolves.toEqualTypeOf<string[]>();
  expectTypeOf(c.zrange(k("z"), 0, 1, { withScores: true })).resolves.toEqualTypeOf<ScoredMember[]>();
  expectTypeOf(c.zscore(k("z"), "x")).resolves.toEqualTypeOf<number | null>();
}
