// What the compliance suite cannot see: what KeyvRespite leaves in Redis (key
// layout, PX expiry), that clear() touches only its namespace with SCAN +
// UNLINK, the iterator's paging, the error policy and who closes the client.
import Keyv from "keyv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectionError, TimeoutError, createClient, type Client, type RedisError } from "../../src/index.js";
import type { Command } from "../../src/protocol/encode.js";
import { KeyvRespite, type KeyvRespiteClient } from "../../src/keyv/index.js";
import { freePort, startRedis, type RedisServer } from "../support/redis-server.js";

const TRANSPORTS = ["pipelined", "pooled"] as const;

let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

/** A client that records the name of every command it sends (command() and close() only: the adapter SCANs through command()). */
function recording(client: Client): KeyvRespiteClient & { names: string[] } {
  const names: string[] = [];
  return {
    names,
    command(args: Command, options) {
      names.push(String(args[0]).toUpperCase());
      return client.command(args, options);
    },
    close: () => client.close(),
  };
}

async function keysMatching(pattern: string): Promise<string[]> {
  return ((await server.admin(["KEYS", pattern])) as string[]).sort();
}

/** A client on a port nobody listens on, failing fast. */
async function deadClient(transport: "pipelined" | "pooled"): Promise<Client> {
  return createClient({ port: await freePort(), transport, reconnect: false, offlineQueue: false, connectTimeoutMs: 1000, lazyConnect: true });
}

describe.each(TRANSPORTS)("KeyvRespite over the %s transport", (transport) => {
  describe("behaviour", () => {
    let client: Client;

    beforeAll(async () => {
      client = createClient({ url: server.url, transport });
      await client.connect();
    });
    afterAll(async () => {
      await client?.close();
    });

    it("stores Keyv's serialized value under namespace::key, with the TTL as PX", async () => {
      await server.admin(["FLUSHDB"]);
      const keyv = new Keyv({ store: new KeyvRespite(client) });
      const before = Date.now();
      expect(await keyv.set("user:1", { name: "ada", n: 1 }, 5_000)).toBe(true);
      const after = Date.now();
      expect(await keyv.set("forever", "v")).toBe(true);

      expect(await keysMatching("*")).toEqual(["keyv::keyv:forever", "keyv::keyv:user:1"]);
      const raw = JSON.parse((await server.admin(["GET", "keyv::keyv:user:1"])) as string) as { value: unknown; expires: number };
      expect(raw.value).toEqual({ name: "ada", n: 1 });
      expect(raw.expires).toBeGreaterThanOrEqual(before + 5_000);
      expect(raw.expires).toBeLessThanOrEqual(after + 5_000);
      const pttl = (await server.admin(["PTTL", "keyv::keyv:user:1"])) as number;
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(5_000);
      expect(await server.admin(["PTTL", "keyv::keyv:forever"])).toBe(-1);
      expect(await keyv.get("user:1")).toEqual({ name: "ada", n: 1 });
    });

    it("maps TTLs: fractions round up, 0 / negative / Infinity / none store without expiry", async () => {
      const store = new KeyvRespite(client, { namespace: "ttl" });
      expect(await store.set("frac", "v", 1000.2)).toBe(true);
      const pttl = (await server.admin(["PTTL", "ttl::frac"])) as number;
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(1001);
      for (const ttl of [0, -5, Infinity, Number.NaN, undefined]) {
        expect(await store.set("none", "v", ttl)).toBe(true);
        expect(await server.admin(["PTTL", "ttl::none"])).toBe(-1);
      }
      await store.clear();
    });

    it("getMany, hasMany, setMany and deleteMany address the namespaced keys", async () => {
      const store = new KeyvRespite(client, { namespace: "many" });
      await store.setMany([{ key: "a", value: "1" }, { key: "b", value: "2", ttl: 60_000 }]);
      expect(await server.admin(["PTTL", "many::a"])).toBe(-1);
      expect(await server.admin(["PTTL", "many::b"])).toBeGreaterThan(0);
      expect(await store.getMany(["a", "missing", "b"])).toEqual(["1", undefined, "2"]);
      expect(await store.getMany([])).toEqual([]);
      expect(await store.hasMany(["a", "missing"])).toEqual([true, false]);
      expect(await store.deleteMany(["a", "missing"])).toBe(true);
      expect(await store.deleteMany(["a", "missing"])).toBe(false);
      expect(await store.deleteMany([])).toBe(false);
      expect(await keysMatching("many::*")).toEqual(["many::b"]);
      await store.clear();
    });

    it("clear() deletes its namespace page by page with SCAN + UNLINK, and nothing else", async () => {
      await server.admin(["FLUSHDB"]);
      const rec = recording(client);
      const store = new KeyvRespite(rec, { namespace: "ns", clearBatchSize: 100 });
      await Promise.all(Array.from({ length: 2_500 }, (_, i) => client.command(["SET", `ns::k${i}`, "v"])));
      await client.command(["HSET", "ns::hash", "f", "v"]); // any type under the prefix is ours
      const foreign = ["ns:k", "ns", "nsx::k", "other::k", "keyv::ns::k", "plain"];
      for (const k of foreign) await client.command(["SET", k, "v"]);

      rec.names.length = 0;
      await store.clear();
      expect(new Set(rec.names)).toEqual(new Set(["SCAN", "UNLINK"]));
      expect(rec.names.filter((n) => n === "UNLINK").length).toBeGreaterThan(1); // paged, not one giant UNLINK
      expect(await keysMatching("*")).toEqual([...foreign].sort());
    });

    it("clear() treats glob characters in the namespace literally", async () => {
      await server.admin(["FLUSHDB"]);
      const store = new KeyvRespite(client, { namespace: "a*[b]?\\" });
      expect(await store.set("k", "v")).toBe(true);
      for (const k of ["aX[b]?\\::k", "a*b!\\::k", "a*[b]?\\X::k"]) await client.command(["SET", k, "v"]);
      await store.clear();
      expect(await keysMatching("*")).toEqual(["a*[b]?\\X::k", "a*b!\\::k", "aX[b]?\\::k"].sort());
    });

    it("clear() without a namespace refuses and deletes nothing", async () => {
      await server.admin(["FLUSHDB"]);
      await client.command(["SET", "plain", "v"]);
      const store = new KeyvRespite(client);
      store.namespace = undefined;
      await expect(store.clear()).rejects.toThrow("KeyvRespite.clear() needs a namespace");
      expect(await keysMatching("*")).toEqual(["plain"]);
    });

    it("iterator() pages through SCAN and yields every key of its namespace once, prefix removed", async () => {
      await server.admin(["FLUSHDB"]);
      const store = new KeyvRespite(client, { clearBatchSize: 50 });
      await Promise.all(Array.from({ length: 300 }, (_, i) => client.command(["SET", `it::k${i}`, `v${i}`])));
      await client.command(["SET", "other::k0", "x"]);
      await client.command(["HSET", "it::hash", "f", "v"]); // not a string: MGET answers nil, skipped
      const seen = new Map<string, string>();
      for await (const [k, v] of store.iterator("it")) {
        expect(seen.has(k)).toBe(false);
        seen.set(k, v);
      }
      expect(seen).toEqual(new Map(Array.from({ length: 300 }, (_, i) => [`k${i}`, `v${i}`])));

      // No namespace: the keys that hold no separator (as @keyv/redis).
      await client.command(["SET", "loose", "l"]);
      const loose: [string, string][] = [];
      for await (const entry of store.iterator()) loose.push(entry);
      expect(loose).toEqual([["loose", "l"]]);
    });

    it("disconnect() closes only a client the adapter created", async () => {
      const shared = new KeyvRespite(client);
      await shared.disconnect();
      expect(client.status).toBe("ready");

      const owned = new KeyvRespite(server.url);
      expect(await owned.set("k", "v")).toBe(true);
      await owned.disconnect();
      expect((owned.client as Client).status).toBe("closed");

      const fromOptions = new KeyvRespite({ url: server.url, transport });
      expect(await fromOptions.get("k")).toBe("v"); // what the first one wrote
      await new Keyv({ store: fromOptions }).disconnect();
      expect((fromOptions.client as Client).status).toBe("closed");

      const extra = createClient({ url: server.url, transport });
      await new KeyvRespite(extra, { closeClient: true }).disconnect();
      expect(extra.status).toBe("closed");
    });

    it("opts tells Keyv it is iterable, and never holds the password", () => {
      const store = new KeyvRespite({ url: "redis://user:s3cret@127.0.0.1:6390/2", lazyConnect: true });
      expect(store.opts.dialect).toBe("redis");
      expect(store.opts.url).toBe("redis://127.0.0.1:6390/2");
      expect(JSON.stringify(store.opts)).not.toContain("s3cret");
      expect(typeof new Keyv({ store }).iterator).toBe("function");
      void store.disconnect();
    });

    it("on a Redis failure: emits the error and answers a miss / false (default policy)", async () => {
      const dead = await deadClient(transport);
      const store = new KeyvRespite(dead, { namespace: "x" });
      const errors: unknown[] = [];
      store.on("error", (e) => errors.push(e));
      expect(await store.get("k")).toBe(undefined);
      expect(await store.getMany(["a", "b"])).toEqual([undefined, undefined]);
      expect(await store.set("k", "v")).toBe(false);
      expect(await store.delete("k")).toBe(false);
      expect(await store.deleteMany(["k"])).toBe(false);
      expect(await store.has("k")).toBe(false);
      expect(await store.clear()).toBe(undefined);
      expect(errors).toHaveLength(7);
      for (const e of errors) expect(e).toBeInstanceOf(ConnectionError);
      // iterator() always rejects: a cut-short listing is not an empty one.
      await expect(store.iterator("x").next()).rejects.toBeInstanceOf(ConnectionError);
      dead.destroy();
    });

    it("on a Redis failure without an error listener: still no throw, no crash", async () => {
      const dead = await deadClient(transport);
      const store = new KeyvRespite(dead);
      expect(await store.get("k")).toBe(undefined);
      expect(await store.set("k", "v")).toBe(false);
      dead.destroy();
    });

    it("through Keyv: the error reaches keyv's 'error' listeners and get() is a miss", async () => {
      const dead = await deadClient(transport);
      const keyv = new Keyv({ store: new KeyvRespite(dead) });
      const errors: unknown[] = [];
      keyv.on("error", (e: unknown) => errors.push(e));
      expect(await keyv.get("k")).toBe(undefined);
      expect(await keyv.set("k", "v")).toBe(false);
      expect(errors.length).toBeGreaterThanOrEqual(2);
      for (const e of errors) expect(e).toBeInstanceOf(ConnectionError);
      dead.destroy();
    });

    it("throwOnErrors: true rejects with the RedisError instead", async () => {
      const dead = await deadClient(transport);
      const store = new KeyvRespite(dead, { namespace: "x", throwOnErrors: true });
      await expect(store.get("k")).rejects.toBeInstanceOf(ConnectionError);
      await expect(store.set("k", "v")).rejects.toBeInstanceOf(ConnectionError);
      await expect(store.clear()).rejects.toBeInstanceOf(ConnectionError);
      dead.destroy();
    });

    it("timeoutMs bounds each command: a stalled server is a miss after the deadline", async () => {
      const store = new KeyvRespite(client, { timeoutMs: 150 });
      const errors: RedisError[] = [];
      store.on("error", (e: RedisError) => errors.push(e));
      server.pause();
      try {
        const started = Date.now();
        expect(await store.get("k")).toBe(undefined);
        const took = Date.now() - started;
        expect(took).toBeGreaterThanOrEqual(140);
        expect(took).toBeLessThan(2_000);
      } finally {
        server.resume();
      }
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(TimeoutError);
      expect(await client.command(["PING"])).toBe("PONG"); // the late reply did not desync the socket
    });
  });
});
