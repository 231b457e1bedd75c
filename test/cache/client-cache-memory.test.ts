// The client-side cache's memory, measured: filled far past maxBytes with
// replies of every shape (short and long strings, hashes, lists, Buffers,
// nil) read from a real server, it never counts more than maxBytes, and what
// the heap holds for it (measured with gc(), cache full minus cache flushed)
// stays within maxBytes plus the documented overhead: the tables' spare
// capacity, MEMORY_SLACK_BYTES.
//
// A Buffer handed out from the cache is a copy (a caller writing into it
// changes nothing for the next one); what that copy costs is measured here
// too and printed beside the cost of a string hit.
import v8 from "node:v8";
import vm from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Client } from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { cacheServing, SKIP_DUPLICATE } from "./client-cache-support.js";

/** What the heap may hold beyond maxBytes: the Maps' spare slots and the LRU/index bookkeeping not counted per entry. */
const MEMORY_SLACK_BYTES = 1024 * 1024;

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

function heap(): number {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

describe.skipIf(SKIP_DUPLICATE)("client-side cache memory", () => {
  it("never counts more than maxBytes, and the heap it holds stays within maxBytes plus the documented slack", async () => {
    const maxBytes = 4 * 1024 * 1024;
    const keys = 12_000;
    const loader = createClient({ port: server.port, protocol: 2 });
    await loader.connect();
    // Values: strings of 16 B to 2 KiB (some not Latin-1), hashes of 5 fields, lists of 8, binary.
    const pipeline: Promise<unknown>[] = [];
    for (let i = 0; i < keys; i++) {
      if (pipeline.length > 5000) await Promise.all(pipeline.splice(0));
      const size = 16 << i % 8;
      pipeline.push(loader.command(["SET", `m:s:${i}`, (i % 5 === 0 ? "é✓" : "x").repeat(size / 2)]));
      if (i % 4 === 0) pipeline.push(loader.command(["HSET", `m:h:${i}`, "a", `${i}`, "b", "bb", "c", "ccc", "d", "dddd", "e", "x".repeat(40)]));
      if (i % 4 === 1) pipeline.push(loader.command(["RPUSH", `m:l:${i}`, ...Array.from({ length: 8 }, (_, j) => `item-${j}-${i}`)]));
    }
    await Promise.all(pipeline);
    await loader.close();

    const client: Client = createClient({ port: server.port, clientCache: { maxBytes } });
    try {
      await client.connect();
      await cacheServing(client);
      const before = heap();
      let maxSeen = 0;
      for (let round = 0; round < 2; round++) {
        for (let start = 0; start < keys; start += 500) {
          const reads = [];
          for (let i = start; i < start + 500; i++) {
            reads.push(client.command(["GET", `m:s:${i}`]));
            if (i % 4 === 0) reads.push(client.command(["HGETALL", `m:h:${i}`]));
            if (i % 4 === 1) reads.push(client.command(["LRANGE", `m:l:${i}`, "0", "-1"]));
            if (i % 4 === 2) reads.push(client.command(["GET", `m:s:${i}`], { returnBuffers: true }));
            if (i % 4 === 3) reads.push(client.command(["GET", `m:nokey:${i}`]));
          }
          await Promise.all(reads);
          const s = client.clientCacheStats();
          maxSeen = Math.max(maxSeen, s?.bytes ?? 0);
          expect(s?.bytes).toBeLessThanOrEqual(maxBytes);
        }
      }
      const stats = client.clientCacheStats();
      const full = heap();
      client.flushClientCache();
      const empty = heap();
      const held = full - empty;
      console.log(
        `cache memory: maxBytes ${maxBytes}, counted at most ${maxSeen}, ${stats?.entries} entries, ${stats?.evictions} evictions; ` +
          `heap held ${held} (${((held / maxBytes) * 100).toFixed(1)}% of maxBytes); client heap before filling ${before}`,
      );
      expect(stats?.evictions).toBeGreaterThan(0);
      expect(maxSeen).toBeGreaterThan(maxBytes * 0.9);
      expect(held).toBeLessThanOrEqual(maxBytes + MEMORY_SLACK_BYTES);
    } finally {
      client.destroy();
    }
  }, 60_000);

  it("a Buffer hit is a copy: what it costs beside a string hit", async () => {
    const client: Client = createClient({ port: server.port, clientCache: true });
    try {
      await client.connect();
      await cacheServing(client);
      const rows: string[] = [];
      for (const size of [16, 1024, 100 * 1024]) {
        await client.command(["SET", "m:copy", "v".repeat(size)]);
        const timeHits = async (returnBuffers: boolean): Promise<number> => {
          const o = returnBuffers ? { returnBuffers } : undefined;
          await client.command(["GET", "m:copy"], o);
          let n = 0;
          let spent = 0;
          while (n < 20_000) {
            await cacheServing(client);
            const t0 = performance.now();
            for (let i = 0; i < 1000; i++) await client.command(["GET", "m:copy"], o);
            spent += performance.now() - t0;
            n += 1000;
          }
          return (spent * 1e6) / n;
        };
        const str = await timeHits(false);
        const buf = await timeHits(true);
        rows.push(`${size} B: string hit ${str.toFixed(0)} ns, Buffer hit (a copy) ${buf.toFixed(0)} ns`);
        const a = (await client.command(["GET", "m:copy"], { returnBuffers: true })) as Buffer;
        a.fill(0);
        expect(((await client.command(["GET", "m:copy"], { returnBuffers: true })) as Buffer).toString()).toBe("v".repeat(size));
      }
      console.log(`hit cost: ${rows.join("; ")}`);
    } finally {
      client.destroy();
    }
  }, 60_000);
});
