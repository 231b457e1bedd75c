// Client-side caching on a Redis Cluster: every node client keeps its own
// cache (tracking on its own connections), a node's cache is flushed when its
// slots move, and readers under a writer see no stale value across a slot
// migration and a failover (CLUSTER FAILOVER), on both transports.
import { describe, expect, it } from "vitest";
import { keySlot, type ClusterClient, type TransportKind } from "../../src/index.js";
import { useCluster } from "../support/cluster-suite.js";
import type { RedisClusterNode } from "../support/redis-cluster.js";
import { waitFor } from "../support/wait.js";
import { SKIP_DUPLICATE, STALE_BOUND_MS, startLoad } from "./client-cache-support.js";

const suite = useCluster();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Until every node client the reads go to can serve hits. */
async function serving(c: ClusterClient, keys: readonly string[]): Promise<void> {
  await waitFor(async () => {
    for (const k of keys) await c.command(["GET", k]);
    return c.nodes("master").every((n) => n.clientCacheStats()?.tracking === true);
  }, 10_000);
}

const RUNS: { transport: TransportKind; protocol: 2 | 3; mode: "default" | "broadcast" }[] = [
  { transport: "pipelined", protocol: 3, mode: "default" },
  { transport: "pooled", protocol: 2, mode: "default" },
  { transport: "pipelined", protocol: 2, mode: "broadcast" },
];

describe.skipIf(SKIP_DUPLICATE).each(RUNS)("client-side caching on a cluster, $transport, RESP$protocol, $mode", ({ transport, protocol, mode }) => {
  it("a cache per node: hits, another client's writes, and per-node stats summed", async () => {
    const cached = suite.connect(transport, { protocol, clientCache: { mode } });
    const writer = suite.connect("pipelined");
    const keys = Array.from({ length: 12 }, (_, i) => `csc:${transport}${protocol}${mode}:${i}`);
    for (const k of keys) await writer.command(["SET", k, "v1"]);
    await serving(cached, keys);
    for (const k of keys) expect(await cached.command(["GET", k])).toBe("v1");
    const hitsBefore = cached.clientCacheStats()?.hits ?? 0;
    for (const k of keys) expect(await cached.command(["GET", k])).toBe("v1");
    expect(cached.clientCacheStats()?.hits).toBeGreaterThan(hitsBefore);
    // Every master holds some of them, in its own cache.
    expect(cached.nodes("master").filter((n) => (n.clientCacheStats()?.entries ?? 0) > 0).length).toBeGreaterThan(1);
    for (const k of keys) await writer.command(["SET", k, "v2"]);
    await waitFor(async () => (await Promise.all(keys.map((k) => cached.command(["GET", k])))).every((v) => v === "v2"), 5000, 2);
  }, 30_000);

  it("no stale read across a slot migration and a failover; the nodes whose slots moved are flushed", async () => {
    const cached = suite.connect(transport, { protocol, clientCache: { mode }, clientName: "cache-reader" });
    const writer = suite.connect("pipelined");
    const tag = `mig-${transport}${protocol}${mode}`;
    const slot = keySlot(tag);
    const writerKeys = [...Array.from({ length: 4 }, (_, i) => `{${tag}}:w:${i}`), ...Array.from({ length: 4 }, (_, i) => `csc:w:${transport}${protocol}${mode}:${i}`)];
    const readerKey = (r: number): string => `csc:r:${transport}${protocol}${mode}:${r}`;
    await serving(cached, writerKeys);
    const load = startLoad(cached, writer, writerKeys, 4, readerKey);
    try {
      await waitFor(() => load.ops > 500, 10_000);
      const flushesBefore = cached.clientCacheStats()?.flushes ?? 0;

      // 1. The tagged slot moves to another master.
      const source = await suite.cluster.masterOf(slot);
      const target = (await suite.cluster.masters()).find((m) => m.id !== source.id) as RedisClusterNode;
      let at = performance.now();
      await suite.cluster.migrateSlot(slot, target, { batch: 2 });
      await cached.refresh();
      load.history.fault("slot migration", at, performance.now() + STALE_BOUND_MS);
      await waitFor(() => load.ops > 1000, 10_000);
      expect(cached.clientCacheStats()?.flushes).toBeGreaterThan(flushesBefore);

      // 2. CLUSTER FAILOVER of the master serving the writer's untagged keys' first slot.
      const other = keySlot(writerKeys[4] as string);
      at = performance.now();
      await suite.cluster.manualFailover(other);
      await cached.refresh();
      load.history.fault("CLUSTER FAILOVER", at, performance.now() + STALE_BOUND_MS);
      const opsAfter = load.ops;
      await waitFor(() => load.ops > opsAfter + 1000, 15_000);
      await sleep(200);
    } finally {
      await load.stop();
    }
    const report = load.history.report();
    console.log(
      `[cluster cache] ${transport} RESP${protocol} ${mode}: ${report.reads} reads, stale ${report.stale} (max ${report.maxMs.toFixed(2)} ms, p99.9 of stale ${report.p999Ms.toFixed(2)} ms) ${JSON.stringify(load.history.byFault())}; stats ${JSON.stringify(cached.clientCacheStats())}`,
    );
    expect(report.regressions).toEqual([]);
    expect(report.afterRecovery).toEqual([]);
    expect(report.maxMs).toBeLessThanOrEqual(STALE_BOUND_MS);
    expect(cached.clientCacheStats()?.hits).toBeGreaterThan(0);
    await suite.cluster.waitHealthy();
  }, 90_000);
});
