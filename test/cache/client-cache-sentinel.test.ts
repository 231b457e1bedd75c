// Client-side caching behind Sentinel: a failover flushes the cache (the
// invalidation connection follows the master like every other connection),
// and readers under a writer see no stale value across it, on both
// transports and both protocols. The failover is SENTINEL FAILOVER (no write
// is lost: the writer waits for its replicas before it), so a value older than
// one already read can only come from a cache that was not flushed.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Client, type ClientOptions, type TransportKind } from "../../src/index.js";
import { startSentinelCluster, type SentinelCluster } from "../support/sentinel-cluster.js";
import { pollUntil, waitFor } from "../support/wait.js";
import { SKIP_DUPLICATE, STALE_BOUND_MS, startLoad } from "./client-cache-support.js";

let cluster: SentinelCluster;
const clients: Client[] = [];

beforeAll(async () => {
  if (SKIP_DUPLICATE) return;
  cluster = await startSentinelCluster();
}, 60_000);
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await cluster?.heal();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

function client(extra: Partial<ClientOptions>): Client {
  const c = createClient({
    connectTimeoutMs: 1000,
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    ...extra,
    sentinel: { nodes: cluster.sentinelUrls, name: cluster.name, timeoutMs: 500 },
  });
  c.on("error", () => undefined);
  clients.push(c);
  return c;
}

const RUNS: { transport: TransportKind; protocol: 2 | 3 }[] = [
  { transport: "pipelined", protocol: 2 },
  { transport: "pooled", protocol: 3 },
];

describe.skipIf(SKIP_DUPLICATE).each(RUNS)("client-side caching behind Sentinel, $transport, RESP$protocol", ({ transport, protocol }) => {
  it("a failover flushes the cache; no stale read across it", async () => {
    const cached = client({ transport, protocol, clientCache: true, clientName: "cache-reader" });
    const writer = client({ protocol: 2, clientName: "cache-writer" });
    await Promise.all([cached.connect(), writer.connect()]);
    const writerKeys = Array.from({ length: 6 }, (_, i) => `s:${transport}:w:${i}`);
    const load = startLoad(cached, writer, writerKeys, 4, (r) => `s:${transport}:r:${r}`);
    try {
      await waitFor(() => load.ops > 1000 && cached.clientCacheStats()?.tracking === true, 10_000);
      const flushes = cached.clientCacheStats()?.flushes ?? 0;
      // No write while two nodes may say "master" (writes to the deposed one
      // are lost, as Sentinel documents); every earlier one is on the replicas.
      await load.pauseWrites();
      expect(await writer.command(["WAIT", "2", "5000"])).toBe(2);
      const old = await cluster.currentMaster();
      const at = performance.now();
      // Sentinel refuses a failover within 2 x failover-timeout of the last one: ask until it starts.
      const promoted = await pollUntil("a failover", 30_000, async () => {
        await cluster.sentinels[0]?.admin(["SENTINEL", "FAILOVER", cluster.name]).catch(() => undefined);
        const m = await cluster.currentMaster();
        return m.port !== old.port ? cluster.waitForNewMaster(old.port, 20_000) : undefined;
      }, 500);
      // Both clients on the new master and none left on the old one, the cache flushed and tracking there.
      const onNew = async (): Promise<boolean> => {
        const list = String(await promoted.admin(["CLIENT", "LIST"]));
        const stale = String(await old.admin(["CLIENT", "LIST"]));
        return list.includes("name=cache-writer") && list.includes("name=cache-reader") && !/name=cache-(reader|writer)/.test(stale);
      };
      await waitFor(async () => (await onNew()) && cached.clientCacheStats()?.tracking === true && (cached.clientCacheStats()?.flushes ?? 0) > flushes, 20_000, 20);
      load.history.fault("Sentinel failover", at, performance.now());
      load.resumeWrites();
      const opsBack = load.ops;
      await waitFor(() => load.ops > opsBack + 1000, 10_000);
    } finally {
      await load.stop();
    }
    const report = load.history.report();
    console.log(
      `[sentinel cache] ${transport} RESP${protocol}: ${report.reads} reads, stale ${report.stale} (max ${report.maxMs.toFixed(2)} ms) ${JSON.stringify(load.history.byFault())}; stats ${JSON.stringify(cached.clientCacheStats())}`,
    );
    expect(report.regressions).toEqual([]);
    expect(report.afterRecovery).toEqual([]);
    expect(report.maxMs).toBeLessThanOrEqual(STALE_BOUND_MS);
    expect(cached.clientCacheStats()?.hits).toBeGreaterThan(0);
  }, 60_000);
});
