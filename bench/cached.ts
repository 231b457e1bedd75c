// The "cached" workload: client-side caching, measured against itself and
// node-redis 6's. GETs over a hot set with about 90% hits, and 1% writes made
// by another client (each one invalidates a hot key in every cache).
//
// The client measured sends only GETs (bench/workloads.ts buildCached):
//   92%  of one of HOT_KEYS hot keys (bench:k:0 ... preloaded);
//   8%   of a cold key never read before in the step (bench:cold:i, a missing
//        key: nil), so it misses in every cache whatever its policy.
// After every WRITE_EVERY of its ops, the writer (a plain respite client on
// its own connection) SETs a hot key to the value it already holds (every
// expected reply stays true, and the key is still invalidated in every
// cache). The callers measured never wait for those writes (another client
// makes them); at most MAX_WRITES_IN_FLIGHT are out at once.
// So about 1 op in 100 is a write, 1 in 100 a miss it caused, 8 in 100 a cold
// miss: ~90% hits. The list is longer than any step (warm-up + measurement)
// and the measurement continues where the warm-up stopped, so a cold key is
// never read twice in a step. Every cache holds CACHE_ENTRIES entries: the
// hot set and some room; respite's is given in bytes (maxBytes:
// CACHE_ENTRIES times what one entry of this workload counts), node-redis's
// in entries.
//
// Clients: respite-cached (pipelined) and respite-pooled-cached (pooled, 8)
// with clientCache, node-redis-cached (RESP3, clientSideCache, its typed
// get(): its cache does not see sendCommand()). The uncached clients run the
// workload too (respite-pipelined is the "without the cache" figure); the
// cached ones run no other workload.
import { createClient as createNodeRedis } from "redis";
import { ENTRY_OVERHEAD_BYTES } from "../src/cache/client-cache.js";
import { createClient as createRespite, type Client } from "../src/index.js";
import type { BenchClient, ClientName, Target } from "./clients.js";
import type { RawCommand } from "./workloads.js";

export const CACHED_WORKLOAD = "cached";
export const HOT_KEYS = 1000;
/** One write by the writer per this many ops of the client measured. */
export const WRITE_EVERY = 99;
export const MAX_WRITES_IN_FLIGHT = 64;
export const CACHE_ENTRIES = 2000;
/** What one entry of this workload counts against maxBytes (measured: a 16-byte value under an 11-byte key). */
export const BYTES_PER_ENTRY = ENTRY_OVERHEAD_BYTES + 120;

export const CACHED_CLIENTS: readonly ClientName[] = ["respite-cached", "respite-pooled-cached", "node-redis-cached"];

export function isCachedClient(name: ClientName): boolean {
  return CACHED_CLIENTS.includes(name);
}

export function coldKey(i: number): string {
  return "bench:cold:" + i;
}

/** The clients with a cache; undefined for the others. */
export async function openCachedClient(name: ClientName, target: Target, protocol: 2 | 3, poolSize: number, longMs: number, maxInflight: number): Promise<BenchClient | undefined> {
  switch (name) {
    case "respite-cached":
    case "respite-pooled-cached": {
      const pooled = name === "respite-pooled-cached";
      const client = createRespite({
        url: target.url,
        protocol,
        transport: pooled ? "pooled" : "pipelined",
        connectTimeoutMs: longMs,
        pool: { min: pooled ? poolSize : 0, max: poolSize, acquireTimeoutMs: longMs },
        maxPending: maxInflight,
        clientCache: { maxBytes: CACHE_ENTRIES * BYTES_PER_ENTRY },
      });
      client.on("error", () => undefined);
      await client.connect();
      return { name, send: (cmd) => client.command(cmd), close: () => client.close(), cacheStats: () => respiteStats(client) };
    }
    case "node-redis-cached": {
      const client = createNodeRedis({
        url: target.url,
        RESP: 3,
        socket: { connectTimeout: longMs },
        clientSideCache: { ttl: 0, maxEntries: CACHE_ENTRIES, evictPolicy: "LRU" },
      });
      client.on("error", () => undefined);
      await client.connect();
      return {
        name,
        // Its cache serves the typed commands only.
        send: (cmd) => (cmd[0] === "GET" && cmd.length === 2 ? client.get(cmd[1] as string) : client.sendCommand(cmd)),
        close: () => client.close(),
        cacheStats: () => {
          const s = client.clientSideCache?.stats();
          return s === undefined ? undefined : { hits: s.hitCount, misses: s.missCount };
        },
      };
    }
    default:
      return undefined;
  }
}

function respiteStats(client: Client): { hits: number; misses: number } | undefined {
  const s = client.clientCacheStats();
  return s === undefined ? undefined : { hits: s.hits, misses: s.misses };
}

/** The writer of the cached workload: its own connection, no cache. */
export async function openWriter(target: Target, longMs: number): Promise<Client> {
  const writer = createRespite({ url: target.url, connectTimeoutMs: longMs });
  writer.on("error", () => undefined);
  await writer.connect();
  return writer;
}

/** `client` for the cached workload: after every WRITE_EVERY of its ops, the writer sets one of `writes` (not awaited). */
export function withWriter(client: BenchClient, writer: Client, writes: readonly RawCommand[]): BenchClient {
  const send = client.send;
  let ops = 0;
  let next = 0;
  let inFlight = 0;
  const done = (): void => {
    inFlight--;
  };
  return {
    ...client,
    send: (cmd) => {
      if (++ops % WRITE_EVERY === 0 && inFlight < MAX_WRITES_IN_FLIGHT && writes.length > 0) {
        inFlight++;
        writer.command(writes[next++ % writes.length] as RawCommand).then(done, done);
      }
      return send(cmd);
    },
  };
}
