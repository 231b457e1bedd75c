// cache-manager v7 on top of KeyvRespite through Keyv, against a real
// redis-server: wrap() (read-through, coalesced), expiry done by Redis
// itself (PX), delete, and clear() confined to the namespace.
import { createCache, type Cache } from "cache-manager";
import Keyv from "keyv";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createClient, type Client } from "../../src/index.js";
import { KeyvRespite } from "../../src/keyv/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";

const TRANSPORTS = ["pipelined", "pooled"] as const;

let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

/** Keyv's default namespace is "keyv": Keyv makes it "keyv:<key>", the adapter "keyv::keyv:<key>". */
const redisKey = (key: string): string => `keyv::keyv:${key}`;

describe.each(TRANSPORTS)("cache-manager over the %s transport", (transport) => {
  describe("cache", () => {
    let client: Client;
    let cache: Cache;

    beforeAll(async () => {
      client = createClient({ url: server.url, transport });
      await client.connect();
      cache = createCache({ stores: [new Keyv({ store: new KeyvRespite(client) })] });
    });
    beforeEach(async () => {
      await server.admin(["FLUSHDB"]);
    });
    afterAll(async () => {
      await cache?.disconnect(); // the adapter was handed the client: it leaves it open
      expect(client.status).toBe("ready");
      await client?.close();
    });

    it("wrap() runs the function once, then serves the cached value from Redis", async () => {
      let calls = 0;
      const load = async (): Promise<{ id: number; name: string }> => {
        calls++;
        return { id: 7, name: "seven" };
      };
      // Concurrent callers of one key share one load (cache-manager coalesces).
      const first = await Promise.all([cache.wrap("item:7", load, 60_000), cache.wrap("item:7", load, 60_000)]);
      expect(first).toEqual([{ id: 7, name: "seven" }, { id: 7, name: "seven" }]);
      expect(calls).toBe(1);
      expect(await cache.wrap("item:7", load, 60_000)).toEqual({ id: 7, name: "seven" });
      expect(calls).toBe(1);

      // It really is in Redis, with Redis' own expiry.
      const stored = JSON.parse((await server.admin(["GET", redisKey("item:7")])) as string) as { value: unknown };
      expect(stored.value).toEqual({ id: 7, name: "seven" });
      const pttl = (await server.admin(["PTTL", redisKey("item:7")])) as number;
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(60_000);
      // A second cache over a fresh adapter (another process, say) sees it too.
      const other = createCache({ stores: [new Keyv({ store: new KeyvRespite(client) })] });
      expect(await other.get("item:7")).toEqual({ id: 7, name: "seven" });
    });

    it("a TTL expires in Redis: the value is gone and wrap() loads again", async () => {
      let calls = 0;
      const load = async (): Promise<string> => `v${++calls}`;
      expect(await cache.wrap("short", load, 300)).toBe("v1");
      expect(await cache.wrap("short", load, 300)).toBe("v1");
      const pttl = (await server.admin(["PTTL", redisKey("short")])) as number;
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(300);
      const expires = await cache.ttl("short");
      expect(typeof expires).toBe("number");

      // Redis itself drops the key (not only Keyv's client-side `expires` check).
      await waitFor(async () => (await server.admin(["EXISTS", redisKey("short")])) === 0, 5_000, 20);
      expect(await cache.get("short")).toBe(undefined);
      expect(await cache.wrap("short", load, 300)).toBe("v2");
      expect(calls).toBe(2);
    });

    it("set / get / del / mset / mget", async () => {
      expect(await cache.set("a", { n: 1 })).toEqual({ n: 1 });
      expect(await cache.get("a")).toEqual({ n: 1 });
      expect(await server.admin(["PTTL", redisKey("a")])).toBe(-1); // no TTL given, none stored

      expect(await cache.del("a")).toBe(true);
      expect(await cache.get("a")).toBe(undefined);
      expect(await server.admin(["EXISTS", redisKey("a")])).toBe(0);

      await cache.mset([
        { key: "m1", value: "one" },
        { key: "m2", value: "two", ttl: 60_000 },
      ]);
      expect(await cache.mget(["m1", "missing", "m2"])).toEqual(["one", undefined, "two"]);
      expect(await cache.mdel(["m1", "m2"])).toBe(true);
      expect(await cache.mget(["m1", "m2"])).toEqual([undefined, undefined]);
    });

    it("clear() empties the cache's namespace and leaves other keys alone", async () => {
      await cache.set("x", 1);
      await cache.set("y", 2);
      await client.command(["SET", "not-the-cache", "stays"]);
      await client.command(["SET", "keyv:also-not", "stays"]);
      expect(await cache.clear()).toBe(true);
      expect(await cache.get("x")).toBe(undefined);
      expect(((await server.admin(["KEYS", "*"])) as string[]).sort()).toEqual(["keyv:also-not", "not-the-cache"]);
    });
  });
});
