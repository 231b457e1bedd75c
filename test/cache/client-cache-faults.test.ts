// Stale reads under faults. Readers on one cached client (each also writes a
// key of its own), a separate writer bumping versioned values on the others,
// and a schedule of faults: CLIENT KILL of the data connections and of the
// invalidation connection, SIGSTOP, FLUSHALL, keys expiring, kill -9 and a
// restart, maxmemory eviction. Every read is checked against the history of
// its key (History in client-cache-support.ts):
//   - no reader sees a key go back past a value it read or wrote itself;
//   - no read returns a value overwritten more than STALE_BOUND_MS before it
//     was issued (the lease, tracking.ts, whatever the fault);
//   - no read issued after a fault's recovery returns a value overwritten
//     before the fault (zero stale reads after any reconnect).
// The stale window measured (max and p99.9, in ms) is printed per run.
//
// Synchronisation is by polls with deadlines (the fault acknowledged, the
// client back and tracking); the schedule's gaps are load, not waits for state.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Client, type ClientOptions } from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";
import { History, SKIP_DUPLICATE, STALE_BOUND_MS } from "./client-cache-support.js";


let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

const WRITER_KEYS = Array.from({ length: 6 }, (_, i) => `w:${i}`);
const READERS = 4;
const ownKey = (i: number): string => `r:${i}`;
const ALL_KEYS = [...WRITER_KEYS, ...Array.from({ length: READERS }, (_, i) => ownKey(i))];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Run {
  protocol: 2 | 3;
  transport: "pipelined" | "pooled";
  mode: "default" | "broadcast";
}

const RUNS: Run[] = [
  { protocol: 2, transport: "pipelined", mode: "default" },
  { protocol: 2, transport: "pooled", mode: "default" },
  { protocol: 3, transport: "pipelined", mode: "default" },
  { protocol: 3, transport: "pooled", mode: "default" },
  { protocol: 2, transport: "pooled", mode: "broadcast" },
  { protocol: 3, transport: "pipelined", mode: "broadcast" },
];

async function connections(name: string): Promise<{ id: string; pubsub: boolean }[]> {
  const list = String(await server.admin(["CLIENT", "LIST"]));
  return list
    .split("\n")
    .filter((l) => l.includes(` name=${name} `))
    .map((l) => ({ id: /\bid=(\d+)/.exec(l)?.[1] as string, pubsub: /\bflags=\S*P/.test(l) }));
}

describe.skipIf(SKIP_DUPLICATE)("no stale read under faults", () => {
  it.each(RUNS)("RESP$protocol, $transport, $mode mode", async ({ protocol, transport, mode }) => {
    await server.admin(["FLUSHALL"]);
    const history = new History();
    const base: ClientOptions = { port: server.port, connectTimeoutMs: 1000, reconnect: { initialDelayMs: 10, maxDelayMs: 100 } };
    const cached: Client = createClient({ ...base, protocol, transport, clientName: "cache-reader", clientCache: { mode }, pool: { max: 4 } });
    const writer: Client = createClient({ ...base, protocol: 2, clientName: "cache-writer" });
    const junk: Client = createClient({ ...base, protocol: 2 });
    for (const c of [cached, writer, junk]) c.on("error", () => undefined);
    let n = 0;
    let stop = false;
    let writerPaused = false;
    let ttlMs = 0;
    const write = async (client: Client, key: string, reader?: number): Promise<void> => {
      const value = `${key}#${++n}`;
      const sentAt = performance.now();
      const fact = history.writing(key, value);
      try {
        const args = ttlMs > 0 ? ["SET", key, value, "PX", String(ttlMs)] : ["SET", key, value];
        await client.command(args);
        const ackAt = performance.now();
        history.acked(fact, ackAt, key, reader);
        if (ttlMs > 0) history.emptied([key], sentAt + ttlMs, ackAt + ttlMs);
      } catch {
        // Its fate is unknown: the fact stays without a time.
      }
    };
    try {
      await Promise.all([cached.connect(), writer.connect(), junk.connect()]);
      for (const k of ALL_KEYS) await write(writer, k);
      const writerLoop = (async () => {
        for (let i = 0; !stop; i++) {
          if (writerPaused) {
            await sleep(5);
            continue;
          }
          await write(writer, WRITER_KEYS[i % WRITER_KEYS.length] as string);
          await new Promise(setImmediate);
        }
      })();
      const readers = Array.from({ length: READERS }, async (_, r) => {
        for (let i = 0; !stop; i++) {
          if (i % 10 === 0) {
            await write(cached, ownKey(r), r);
          } else {
            const key = ALL_KEYS[(i * 7 + r) % ALL_KEYS.length] as string;
            const issuedAt = performance.now();
            try {
              const value = (await cached.command(["GET", key])) as string | null;
              history.read({ reader: r, key, value, issuedAt, doneAt: performance.now() });
            } catch {
              // A fault: reads fail or time out; only answers are checked.
            }
          }
          if (i % 4 === 0) await new Promise(setImmediate);
        }
      });
      const recovered = async (): Promise<number> => {
        await waitFor(() => cached.status === "ready" && cached.clientCacheStats()?.tracking === true, 10_000, 2);
        return performance.now();
      };
      const fault = async (name: string, act: () => Promise<void>, after?: () => Promise<number>): Promise<void> => {
        await sleep(150); // load between faults
        const at = performance.now();
        await act();
        const back = after !== undefined ? await after() : await recovered();
        history.fault(name, at, back);
      };

      await recovered();
      await fault("CLIENT KILL of the data connections", async () => {
        for (const c of await connections("cache-reader")) if (!c.pubsub) await server.admin(["CLIENT", "KILL", "ID", c.id]);
      });
      await fault("CLIENT KILL of the invalidation connection", async () => {
        const all = await connections("cache-reader");
        const victims = all.filter((c) => c.pubsub);
        for (const c of victims.length > 0 ? victims : all) await server.admin(["CLIENT", "KILL", "ID", c.id]);
      });
      await fault("SIGSTOP", async () => {
        server.pause();
        await sleep(300);
        server.resume();
      });
      await fault(
        "FLUSHALL",
        async () => {
          const sentAt = performance.now();
          await server.admin(["FLUSHALL"]);
          history.emptied(ALL_KEYS, sentAt, performance.now());
        },
        async () => performance.now() + STALE_BOUND_MS,
      );
      await fault(
        "key expiry",
        async () => {
          writerPaused = true;
          ttlMs = 100;
          for (const k of WRITER_KEYS) await write(writer, k);
          ttlMs = 0;
          await sleep(250); // they expire while readers read
          writerPaused = false;
        },
        async () => performance.now() + STALE_BOUND_MS,
      );
      await fault("kill -9 and restart", async () => {
        const at = performance.now();
        await server.kill();
        history.emptied(ALL_KEYS, at, performance.now());
        await server.restart();
      });
      await fault(
        "maxmemory eviction",
        async () => {
          // Only the writer's keys may be evicted (volatile-random, and only they
          // have a TTL), and nobody writes them meanwhile: the keys found gone
          // afterwards were evicted while the junk was written.
          writerPaused = true;
          ttlMs = 600_000;
          for (const k of WRITER_KEYS) await write(writer, k);
          ttlMs = 0;
          const used = Number(/used_memory:(\d+)/.exec(String(await server.admin(["INFO", "memory"])))?.[1]);
          await server.admin(["CONFIG", "SET", "maxmemory-policy", "volatile-random"]);
          await server.admin(["CONFIG", "SET", "maxmemory", String(used + 256 * 1024)]);
          const from = performance.now();
          const blob = "x".repeat(8 * 1024);
          for (let i = 0; i < 64; i++) await junk.command(["SET", `junk:${i}`, blob]).catch(() => undefined);
          const evicted = Number(/evicted_keys:(\d+)/.exec(String(await server.admin(["INFO", "stats"])))?.[1]);
          const gone: string[] = [];
          for (const k of ALL_KEYS) if ((await server.admin(["EXISTS", k])) === 0) gone.push(k);
          history.emptied(gone, from, performance.now());
          await server.admin(["CONFIG", "SET", "maxmemory", "0"]);
          await junk.command(["DEL", ...Array.from({ length: 64 }, (_, i) => `junk:${i}`)]);
          writerPaused = false;
          expect(evicted).toBeGreaterThan(0);
          expect(gone.length).toBeGreaterThan(0);
        },
        async () => performance.now() + STALE_BOUND_MS,
      );
      await sleep(300);
      stop = true;
      await Promise.all([writerLoop, ...readers]);
      const report = history.report();
      const stats = cached.clientCacheStats();
      console.log(
        `RESP${protocol} ${transport} ${mode}: ${report.reads} reads, ${stats?.hits} hits, ${stats?.flushes} flushes, ${stats?.invalidations} invalidations; ` +
          `stale ${report.stale} (window max ${report.maxMs.toFixed(2)} ms, p99.9 of stale reads ${report.p999Ms.toFixed(2)} ms, p99.9 of all reads ${report.allP999Ms.toFixed(2)} ms)`,
      );
      console.log(JSON.stringify(history.byFault()));
      if (report.maxMs > STALE_BOUND_MS) console.log(history.explain(STALE_BOUND_MS / 4).join("\n"));
      expect(report.reads).toBeGreaterThan(500);
      expect(stats?.hits).toBeGreaterThan(100);
      expect(report.regressions).toEqual([]);
      expect(report.afterRecovery).toEqual([]);
      expect(report.maxMs).toBeLessThanOrEqual(STALE_BOUND_MS);
    } finally {
      stop = true;
      cached.destroy();
      writer.destroy();
      junk.destroy();
      await server.admin(["CONFIG", "SET", "maxmemory", "0"]).catch(() => undefined);
    }
  }, 30_000);
});
