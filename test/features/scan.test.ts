// The SCAN family as async iterators (issue 7): MATCH, COUNT, TYPE; leaving early sends nothing more.
import { describe, expect, it } from "vitest";
import { TRANSPORTS, useRedis } from "./support.js";

const redis = useRedis();

async function scanCalls(): Promise<number> {
  const info = String(await redis.server.admin(["INFO", "commandstats"]));
  return Number(/cmdstat_scan:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

for (const transport of TRANSPORTS) {
  describe(`scan iterators (${transport})`, () => {
    const p = `${transport}:scan`;

    it("scan visits every key matching MATCH, and TYPE filters by type", async () => {
      const c = redis.client(transport);
      const strings = Array.from({ length: 150 }, (_, i) => `${p}:s:${i}`);
      await c.mset(strings.map((key) => [key, "v"] as const));
      await c.hset(`${p}:h:1`, "f", "v");
      await c.sadd(`${p}:set:1`, "m");
      await c.set("unrelated:key", "v");
      const seen = new Set(await collect(c.scan({ match: `${p}:s:*`, count: 20 })));
      expect([...seen].sort()).toEqual([...strings].sort());
      expect(await collect(c.scan({ match: `${p}:*`, type: "hash" }))).toEqual([`${p}:h:1`]);
      expect(await collect(c.scan({ match: `${p}:*`, type: "set", count: 1000 }))).toEqual([`${p}:set:1`]);
      expect(await collect(c.scan({ match: `${p}:none:*` }))).toEqual([]);
    });

    it("hscan, sscan and zscan yield fields with values, members, members with scores", async () => {
      const c = redis.client(transport);
      // Large enough to leave the compact encodings, so the server really pages.
      const fields = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}`, `v${i}`]));
      await c.hset(`${p}:hash`, fields);
      const pairs = await collect(c.hscan(`${p}:hash`, { count: 50 }));
      expect(pairs).toHaveLength(300);
      expect(Object.fromEntries(pairs)).toEqual(fields);
      expect(await collect(c.hscan(`${p}:hash`, { match: "f29?" }))).toEqual(
        expect.arrayContaining([["f290", "v290"], ["f299", "v299"]]),
      );
      expect(await collect(c.hscan(`${p}:hash`, { match: "f29?", count: 1000 }))).toHaveLength(10);

      const members = Array.from({ length: 200 }, (_, i) => `m${i}`);
      await c.sadd(`${p}:set`, ...members);
      expect(new Set(await collect(c.sscan(`${p}:set`, { count: 30 })))).toEqual(new Set(members));

      await c.zadd(`${p}:z`, Array.from({ length: 200 }, (_, i) => ({ score: i / 2, member: `z${i}` })));
      await c.zadd(`${p}:z`, -Infinity, "bottom");
      const scored = await collect(c.zscan(`${p}:z`, { count: 40 }));
      const byMember = new Map(scored.map((s) => [s.member, s.score]));
      expect(byMember.size).toBe(201);
      expect(byMember.get("z7")).toBe(3.5);
      expect(byMember.get("bottom")).toBe(-Infinity);
      expect(await collect(c.zscan(`${p}:missing`))).toEqual([]);
    });

    it("breaking out early sends no further SCAN", async () => {
      const c = redis.client(transport);
      await c.mset(Array.from({ length: 100 }, (_, i) => [`${p}:early:${i}`, "v"] as const));
      await redis.server.admin(["CONFIG", "RESETSTAT"]);
      let n = 0;
      for await (const key of c.scan({ count: 5 })) {
        expect(typeof key).toBe("string");
        if (++n === 3) break;
      }
      expect(n).toBe(3);
      expect(await scanCalls()).toBe(1);
    });

    it("rejects a bad COUNT with a TypeError before sending", async () => {
      const c = redis.client(transport);
      await expect(collect(c.scan({ count: 0 }))).rejects.toThrow(new TypeError("SCAN option count must be a positive integer, got 0"));
    });
  });
}
