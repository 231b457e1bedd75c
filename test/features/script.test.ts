// Lua scripts (issue 7): EVALSHA first, EVAL on NOSCRIPT (first use, SCRIPT
// FLUSH, a restarted server), never EVAL after any other error.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ReplyError, type Reply } from "../../src/index.js";
import { TRANSPORTS, useRedis } from "./support.js";

const redis = useRedis();

const INCR_BY = "return redis.call('INCRBY', KEYS[1], ARGV[1])";

async function calls(): Promise<{ evalsha: number; eval: number }> {
  const info = String(await redis.server.admin(["INFO", "commandstats"]));
  const count = (name: string): number => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  return { evalsha: count("evalsha"), eval: count("eval") };
}

for (const transport of TRANSPORTS) {
  describe(`scripts (${transport})`, () => {
    const k = (name: string): string => `${transport}:lua:${name}`;

    it("sends EVALSHA, falls back to EVAL once on NOSCRIPT, then EVALSHA hits", async () => {
      const c = redis.client(transport);
      await redis.server.admin(["SCRIPT", "FLUSH"]);
      await redis.server.admin(["CONFIG", "RESETSTAT"]);
      const incrBy = c.script(INCR_BY);
      expect(incrBy.sha1).toBe(createHash("sha1").update(INCR_BY).digest("hex"));
      expect(incrBy.source).toBe(INCR_BY);
      expect(await incrBy([k("n")], [5])).toBe(5);
      expect(await calls()).toEqual({ evalsha: 1, eval: 1 });
      expect(await incrBy([k("n")], [2])).toBe(7);
      expect(await calls()).toEqual({ evalsha: 2, eval: 1 });
      // Redis' own digest is the one we computed.
      expect(await redis.server.admin(["SCRIPT", "LOAD", INCR_BY])).toBe(incrBy.sha1);
    });

    it("falls back again after SCRIPT FLUSH; concurrent callers all succeed", async () => {
      const c = redis.client(transport);
      const incrBy = c.script(INCR_BY);
      await incrBy([k("f")], [1]);
      await redis.server.admin(["SCRIPT", "FLUSH"]);
      const results = await Promise.all(Array.from({ length: 20 }, () => incrBy([k("f")], [1])));
      expect([...results].sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    });

    it("passes keys and args, returns nested replies, errors without a second run", async () => {
      const c = redis.client(transport);
      const echo = c.script("return {KEYS[1], ARGV[1], ARGV[2], 42, redis.call('EXISTS', KEYS[1])}");
      expect(await echo([k("e")], ["a", Buffer.from("b")])).toEqual([k("e"), "a", "b", 42, 0]);
      const noArgs = c.script("return 'plain'");
      expect(await noArgs()).toBe("plain");
      expect(await c.script("return ARGV[1]")([], ["bin"], { returnBuffers: true })).toEqual(Buffer.from("bin"));

      const failing = c.script("return redis.error_reply('MYERR broken on purpose')");
      // The first call's EVAL fallback runs (and caches) it; it fails as designed.
      expect(((await failing().catch((e: unknown) => e)) as ReplyError).code).toBe("MYERR");
      await redis.server.admin(["CONFIG", "RESETSTAT"]);
      const err = await failing().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReplyError);
      expect((err as ReplyError).code).toBe("MYERR");
      expect(await calls()).toEqual({ evalsha: 1, eval: 0 });
    }, 10_000);

    it("rejects an empty source with a TypeError", () => {
      const c = redis.client(transport, { lazyConnect: true });
      expect(() => c.script("")).toThrow(TypeError);
    });
  });
}

describe("scripts across a server restart", () => {
  it("a restart empties the script cache: the next call re-sends the body (both transports)", async () => {
    const clients = TRANSPORTS.map((t) => redis.client(t, { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } }));
    const scripts = clients.map((c) => c.script("return redis.call('INCR', KEYS[1])"));
    for (const [i, s] of scripts.entries()) expect(await s([`restart:${i}`])).toBe(1);
    await redis.server.kill();
    await redis.server.restart();
    // The cache is empty now: EVALSHA gets NOSCRIPT, the callable falls back to EVAL.
    expect(await redis.server.admin(["SCRIPT", "EXISTS", scripts[0]?.sha1 ?? ""])).toEqual([0]);
    const after: Reply[] = [];
    for (const [i, s] of scripts.entries()) after.push(await s([`restart:${i}`]));
    expect(after).toEqual(scripts.map(() => 1));
  });
});
