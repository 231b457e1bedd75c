// Client-side caching, correctness on a real server, over RESP2 and RESP3 and
// both transports: every cacheable command answers from the cache exactly what
// Redis answers (nil, empty, binary, both reply forms), another client's write
// reaches the cache, a write of this client is never followed by a stale read
// of its own, an invalidation that comes while a read is in flight keeps its
// reply out, and the list of cacheable commands agrees with the semantics table.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CACHEABLE_COMMANDS, createClient, type Client, type ClientOptions } from "../../src/index.js";
import { keyIndexes, semantics } from "../../src/commands.js";
import { ClientCache, ENTRY_OVERHEAD_BYTES } from "../../src/cache/client-cache.js";
import { resolveClientCacheOptions } from "../../src/cache/options.js";
import type { Command } from "../../src/protocol/encode.js";
import Keyv from "keyv";
import { KeyvRespite } from "../../src/keyv/index.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";
import { cacheServing, MATRIX, readHit, sameReply, SKIP_DUPLICATE } from "./client-cache-support.js";

let server: RedisServer;
const clients: Client[] = [];

beforeAll(async () => {
  server = await startRedis();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});
afterAll(async () => {
  await server?.stop();
});

function client(options: ClientOptions): Client {
  const c = createClient({ port: server.port, connectTimeoutMs: 2000, reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
  c.on("error", () => undefined);
  clients.push(c);
  return c;
}

const BIN = Buffer.from([0, 255, 128, 10, 13, 0xc3, 0x28, 7]);

/** Data of every type, with empty, missing and binary values. */
async function fixtures(): Promise<void> {
  const w = client({ protocol: 2 });
  await w.command(["FLUSHALL"]);
  const cmds: Command[] = [
    ["SET", "s", "hello world"],
    ["SET", "bin", BIN],
    ["SET", "empty", ""],
    ["SET", "utf", "héllo ✓ 𝄞"],
    ["HSET", "h", "f1", "v1", "f2", "", "bin", BIN],
    ["SADD", "st", "a", "b", "c"],
    ["ZADD", "z", "1", "a", "2.5", "b", "3", "c"],
    ["RPUSH", "l", "x", "y", "z", ""],
    ["XADD", "x", "1-1", "f", "v"],
    ["XADD", "x", "2-1", "g", BIN],
    ["GEOADD", "g", "13.361389", "38.115556", "m1", "15.087269", "37.502669", "m2"],
  ];
  for (const c of cmds) await w.command(c);
}

/** At least one read of every cacheable command, with present, missing and empty answers. */
const READS: Command[] = [
  ["GET", "s"],
  ["GET", "bin"],
  ["GET", "empty"],
  ["GET", "utf"],
  ["GET", "nokey"],
  ["GETRANGE", "s", "0", "4"],
  ["SUBSTR", "s", "1", "3"],
  ["STRLEN", "s"],
  ["STRLEN", "nokey"],
  ["GETBIT", "s", "3"],
  ["BITCOUNT", "s"],
  ["BITPOS", "s", "1"],
  ["BITFIELD_RO", "s", "GET", "u8", "0"],
  ["EXISTS", "s"],
  ["EXISTS", "nokey"],
  ["TYPE", "h"],
  ["TYPE", "nokey"],
  ["HGET", "h", "f1"],
  ["HGET", "h", "f2"],
  ["HGET", "h", "bin"],
  ["HGET", "h", "nofield"],
  ["HGETALL", "h"],
  ["HGETALL", "nokey"],
  ["HMGET", "h", "f1", "nofield", "bin"],
  ["HEXISTS", "h", "f1"],
  ["HLEN", "h"],
  ["HSTRLEN", "h", "f1"],
  ["HKEYS", "h"],
  ["HVALS", "h"],
  ["SMEMBERS", "st"],
  ["SMEMBERS", "nokey"],
  ["SISMEMBER", "st", "a"],
  ["SMISMEMBER", "st", "a", "q"],
  ["SCARD", "st"],
  ["ZSCORE", "z", "b"],
  ["ZSCORE", "z", "nomember"],
  ["ZMSCORE", "z", "a", "q"],
  ["ZRANK", "z", "c"],
  ["ZREVRANK", "z", "c"],
  ["ZCARD", "z"],
  ["ZCOUNT", "z", "1", "2"],
  ["ZLEXCOUNT", "z", "-", "+"],
  ["ZRANGE", "z", "0", "-1"],
  ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
  ["ZRANGEBYSCORE", "z", "1", "3", "WITHSCORES"],
  ["ZRANGEBYLEX", "z", "-", "+"],
  ["ZREVRANGE", "z", "0", "-1", "WITHSCORES"],
  ["ZREVRANGEBYSCORE", "z", "3", "1"],
  ["ZREVRANGEBYLEX", "z", "+", "-"],
  ["LRANGE", "l", "0", "-1"],
  ["LRANGE", "nokey", "0", "-1"],
  ["LINDEX", "l", "3"],
  ["LLEN", "l"],
  ["LPOS", "l", "y"],
  ["XLEN", "x"],
  ["XRANGE", "x", "-", "+"],
  ["XREVRANGE", "x", "+", "-"],
  ["GEOPOS", "g", "m1", "nomember"],
  ["GEODIST", "g", "m1", "m2"],
  ["GEOHASH", "g", "m1"],
  // Binary key names, and a key given as a Buffer.
  ["GET", Buffer.from("s")],
];

describe("the list of cacheable commands", () => {
  it("is covered by the reads below, one key at argument 1, read-only and plain in the semantics table", () => {
    const covered = new Set(READS.map((c) => String(c[0]).toLowerCase()));
    for (const name of Object.keys(CACHEABLE_COMMANDS)) expect(covered, name).toContain(name);
    for (const cmd of READS) {
      const sem = semantics(cmd);
      expect(sem.readOnly, String(cmd[0])).toBe(true);
      expect(sem.effect, String(cmd[0])).toBe("plain");
      expect(keyIndexes(cmd), String(cmd[0])).toEqual([1]);
    }
  });

  it("can be narrowed, never widened; option names are checked", () => {
    expect(resolveClientCacheOptions({ commands: ["get", "HGET"] }, "x")?.commands.has("hget")).toBe(true);
    expect(() => resolveClientCacheOptions({ commands: ["GET", "TTL"] }, "x")).toThrow(/TTL cannot be cached/);
    expect(() => createClient({ lazyConnect: true, clientCache: { maxbytes: 1 } as never })).toThrow(/did you mean "clientCache.maxBytes"/);
    expect(() => createClient({ lazyConnect: true, clientCache: { mode: "bcast" as never } })).toThrow(/mode/);
  });
});

describe("the store", () => {
  it("keeps a reply only if neither an invalidation of its key nor a flush came while it was in flight", () => {
    const cache = new ClientCache(1 << 20, 0);
    cache.setStoring(true);
    const a = cache.begin("get\0sa", "a");
    cache.invalidate("a");
    cache.end(a, "old", 0);
    expect(cache.get("get\0sa", 0)).toBeUndefined();
    const b = cache.begin("get\0sb", "b");
    cache.flush();
    cache.end(b, "old", 0);
    expect(cache.get("get\0sb", 0)).toBeUndefined();
    const c = cache.begin("get\0sc", "c");
    cache.end(c, "new", 0);
    expect(cache.get("get\0sc", 0)).toBe("new");
    // A ticket taken while tracking was not established never stores.
    cache.setStoring(false);
    const d = cache.begin("get\0sd", "d");
    cache.setStoring(true);
    cache.end(d, "x", 0);
    expect(cache.get("get\0sd", 0)).toBeUndefined();
  });

  it("evicts the least recently used entries to stay within maxBytes, drops entries past their TTL, and shares no Buffer", () => {
    const per = ENTRY_OVERHEAD_BYTES + 200;
    const cache = new ClientCache(per * 10, 1000);
    cache.setStoring(true);
    for (let i = 0; i < 30; i++) {
      cache.end(cache.begin(`k${i}`, `k${i}`), "x".repeat(50), 0);
      expect(cache.byteCount).toBeLessThanOrEqual(per * 10);
      if (i === 5) expect(cache.get("k0", 0)).toBe("x".repeat(50)); // k0 is now the most recent
    }
    expect(cache.counters.evictions).toBeGreaterThan(0);
    expect(cache.get("k29", 999)).toBeDefined();
    expect(cache.get("k29", 1000)).toBeUndefined(); // its TTL ran out
    const buf = cache.begin("b", "b");
    const original = Buffer.from("abc");
    cache.end(buf, original, 0);
    original[0] = 0x7a; // the caller that got the reply writes into it
    const first = cache.get("b", 0) as Buffer;
    expect(first.toString()).toBe("abc");
    first[1] = 0x7a;
    expect((cache.get("b", 0) as Buffer).toString()).toBe("abc");
    cache.end(cache.begin("arr", "arr"), ["a", ["b"]], 0);
    expect(Object.isFrozen(cache.get("arr", 0))).toBe(true);
  });
});

describe.skipIf(SKIP_DUPLICATE).each(MATRIX)("client-side caching, RESP$protocol, $transport", ({ protocol, transport }) => {
  const opts = (extra: ClientOptions = {}): ClientOptions => ({ protocol, transport, clientCache: true, ...extra });

  it("every cached command answers what Redis answers, from the server and from the cache, as strings and as Buffers", async () => {
    await fixtures();
    const plain = client({ protocol, transport });
    const cached = client(opts());
    await cached.connect();
    await cacheServing(cached);
    for (const returnBuffers of [false, true]) {
      for (const cmd of READS) {
        const o = returnBuffers ? { returnBuffers } : undefined;
        const want = await plain.command(cmd, o);
        const miss = await cached.command(cmd, o);
        expect(sameReply(miss, want), `${cmd.map(String).join(" ")} (miss, buffers ${returnBuffers})`).toBe(true);
        const hit = await readHit(cached, [...cmd] as (string | Buffer)[], returnBuffers);
        expect(sameReply(hit, want), `${cmd.map(String).join(" ")} (hit, buffers ${returnBuffers}): ${JSON.stringify(hit)} vs ${JSON.stringify(want)}`).toBe(true);
      }
    }
    const stats = cached.clientCacheStats();
    expect(stats?.hits).toBeGreaterThanOrEqual(READS.length * 2);
    expect(stats?.entries).toBeGreaterThan(0);
  });

  it("another client's write, a DEL and a FLUSHALL reach the cache", async () => {
    await fixtures();
    const cached = client(opts());
    const writer = client({ protocol: 2 });
    await cached.connect();
    await cacheServing(cached);
    expect(await cached.command(["GET", "s"])).toBe("hello world");
    expect(await readHit(cached, ["GET", "s"])).toBe("hello world");
    expect(await readHit(cached, ["HGET", "h", "f1"])).toBe("v1");
    await writer.command(["SET", "s", "changed"]);
    await waitFor(async () => (await cached.command(["GET", "s"])) === "changed", 2000, 1);
    await writer.command(["HDEL", "h", "f1"]);
    await waitFor(async () => (await cached.command(["HGET", "h", "f1"])) === null, 2000, 1);
    expect(await readHit(cached, ["GET", "s"])).toBe("changed");
    const flushesBefore = cached.clientCacheStats()?.flushes ?? 0;
    await writer.command(["FLUSHALL"]);
    await waitFor(async () => (await cached.command(["GET", "s"])) === null, 2000, 1);
    expect(cached.clientCacheStats()?.flushes).toBeGreaterThan(flushesBefore);
  });

  it("a write of this client is never followed by a stale read of its own, with other callers reading the key all along", async () => {
    const cached = client(opts({ pool: { max: 8 } }));
    await cached.connect();
    await cacheServing(cached);
    const keys = ["rw:0", "rw:1", "rw:2"];
    let stop = false;
    // Readers keep the keys in the cache (and racing the writes on other sockets);
    // they let the event loop turn between reads, as a service's callers do.
    const readers = Array.from({ length: 6 }, async (_, i) => {
      while (!stop) {
        await cached.command(["GET", keys[i % keys.length] as string]);
        await new Promise(setImmediate);
      }
    });
    let n = 0;
    for (let round = 0; round < 300; round++) {
      const k = keys[round % keys.length] as string;
      const v = `v${++n}`;
      await cached.command(["SET", k, v]);
      const got = await cached.command(["GET", k]);
      expect(got, `round ${round}`).toBe(v);
      // Also through a batch and a lent connection.
      if (round % 50 === 0) {
        const w = `b${++n}`;
        await cached.batch([["SET", k, w]]);
        expect(await cached.command(["GET", k])).toBe(w);
        const u = `c${++n}`;
        await cached.withConnection((conn) => conn.command(["SET", k, u]));
        expect(await cached.command(["GET", k])).toBe(u);
      }
    }
    stop = true;
    await Promise.all(readers);
    expect(cached.clientCacheStats()?.hits).toBeGreaterThan(0);
  });

  it("a read in flight when its key is invalidated is not cached", async () => {
    // The data connection goes through a proxy that holds every chunk 300 ms:
    // the GET is answered by the server before the writer's SET, and its
    // reply reaches the client after the invalidation does.
    await server.admin(["SET", "inflight", "old"]);
    const proxy: FaultProxy = await startFaultProxy({ target: { port: server.port } });
    try {
      const cached = createClient({ port: proxy.port, protocol, transport, clientCache: true, connectTimeoutMs: 5000, pool: { min: 1, max: 1 } });
      cached.on("error", () => undefined);
      clients.push(cached);
      await cached.connect();
      await cacheServing(cached);
      const writer = client({ protocol: 2 });
      // RESP3: the invalidation comes in-band on the socket that read, after
      // the reply; a write of this client races the read instead (it drops
      // the key's entries and in-flight reads the same way).
      const local = protocol === 3;
      const ids = await dataClientIds(proxy);
      for (const c of proxy.connections) if (ids.has(c.upstreamLocalPort ?? -1)) c.setFault({ type: "delay", ms: 300 });
      const gets = await getCalls();
      const read = cached.command(["GET", "inflight"]);
      await waitFor(async () => (await getCalls()) > gets, 2000, 2); // the server answered it
      if (local) await cached.command(["SET", "inflight", "new"]);
      else await writer.command(["SET", "inflight", "new"]);
      const stale = await read;
      expect(stale).toBe("old"); // the server's answer at the time
      for (const c of proxy.connections) c.setFault({ type: "pass" });
      const entriesAfter = cached.clientCacheStats()?.entries ?? 0;
      expect(await cached.command(["GET", "inflight"])).toBe("new");
      expect(entriesAfter).toBe(0); // "old" was never stored
    } finally {
      for (const c of clients.splice(0)) c.destroy();
      await proxy.close();
    }
  });

  it("keys are namespaced by database: a client on db 1 never sees db 0's entries", async () => {
    await server.admin(["SET", "ns", "db0"]);
    await server.admin(["SELECT", "0"]);
    const c0 = client(opts());
    const c1 = client(opts({ db: 1 }));
    const w1 = client({ protocol: 2, db: 1 });
    await w1.command(["SET", "ns", "db1"]);
    await c0.connect();
    await c1.connect();
    await cacheServing(c0);
    await cacheServing(c1);
    expect(await c0.command(["GET", "ns"])).toBe("db0");
    expect(await c1.command(["GET", "ns"])).toBe("db1");
    expect(await readHit(c1, ["GET", "ns"])).toBe("db1");
    expect(await readHit(c0, ["GET", "ns"])).toBe("db0");
  });

  it("the Keyv adapter benefits without changes: its gets are hits, its sets invalidate", async () => {
    const c = client(opts());
    await c.connect();
    await cacheServing(c);
    const keyv = new Keyv({ store: new KeyvRespite(c) });
    await keyv.set("user", { n: 1 });
    expect(await keyv.get("user")).toEqual({ n: 1 });
    const before = c.clientCacheStats()?.hits ?? 0;
    for (let i = 0; i < 5 && (c.clientCacheStats()?.hits ?? 0) === before; i++) {
      await cacheServing(c);
      expect(await keyv.get("user")).toEqual({ n: 1 });
    }
    expect(c.clientCacheStats()?.hits).toBeGreaterThan(before);
    await keyv.set("user", { n: 2 });
    expect(await keyv.get("user")).toEqual({ n: 2 });
  });

  it("clientCache.commands narrows what is cached, prefixes narrow the keys", async () => {
    await fixtures();
    const c = client(opts({ clientCache: { commands: ["HGET"], prefixes: ["h"] } }));
    await c.connect();
    await cacheServing(c);
    await c.command(["GET", "s"]);
    await c.command(["GET", "s"]);
    await c.command(["HGET", "h", "f1"]);
    expect(await readHit(c, ["HGET", "h", "f1"])).toBe("v1");
    expect(c.clientCacheStats()?.entries).toBe(1);
  });
});

/** Local ports of the proxied data connections (those not subscribed: the RESP2 invalidation connection is). */
async function dataClientIds(proxy: FaultProxy): Promise<Set<number>> {
  const list = String(await server.admin(["CLIENT", "LIST"]));
  const ports = new Set<number>();
  for (const line of list.split("\n")) {
    const addr = /addr=[^ ]*:(\d+) /.exec(line);
    if (addr === null || /flags=\S*P/.test(line) || /cmd=client\|list/.test(line)) continue;
    ports.add(Number(addr[1]));
  }
  const proxied = new Set(proxy.connections.map((c) => c.upstreamLocalPort));
  return new Set([...ports].filter((p) => proxied.has(p)));
}

async function getCalls(): Promise<number> {
  const info = String(await server.admin(["INFO", "commandstats"]));
  const m = /cmdstat_get:calls=(\d+)/.exec(info);
  return m === null ? 0 : Number(m[1]);
}
