// The cluster clients under test (`--cluster`), behind the same adapter as
// the single-node ones (clients.ts): send(raw command array) -> reply,
// close(). Each library's own cluster client, routing by key slot itself,
// started from the same seeds (every master), configured as in clients.ts:
// timeouts raised so no cell fails on a production default, queues sized for
// C=1024, respite's pools of 8 sockets per node opened before measuring.
// respite is used through its public API only (createCluster from src/index).
import { Cluster as IoredisCluster } from "ioredis";
import { createCluster as createNodeRedisCluster } from "redis";
import { createCluster as createRespiteCluster } from "../src/index.js";
import { LONG_MS, MAX_INFLIGHT, POOL_SIZE, loadGlide, type BenchClient, type ClientName } from "./clients.js";
import type { ClusterTarget } from "./cluster.js";

/** What node-redis' raw sendCommand(firstKey, isReadonly, args) needs to be told about our commands. */
const READ_ONLY = new Set(["GET", "MGET", "EXISTS", "STRLEN"]);

export async function openClusterClient(name: ClientName, target: ClusterTarget): Promise<BenchClient> {
  const seeds = target.seeds;
  switch (name) {
    case "respite-pipelined":
    case "respite-pooled": {
      const pooled = name === "respite-pooled";
      const cluster = createRespiteCluster({
        rootNodes: seeds,
        transport: pooled ? "pooled" : "pipelined",
        connectTimeoutMs: LONG_MS,
        pool: { min: pooled ? POOL_SIZE : 0, max: POOL_SIZE, acquireTimeoutMs: LONG_MS },
        maxPending: MAX_INFLIGHT,
      });
      cluster.on("error", () => undefined);
      // Resolves once the topology is known and every master's client is connected.
      await cluster.connect();
      return { name, send: (cmd) => cluster.command(cmd), close: () => cluster.close() };
    }
    case "ioredis":
    case "ioredis-auto": {
      const cluster = new IoredisCluster(seeds, {
        lazyConnect: true,
        enableAutoPipelining: name === "ioredis-auto",
        // Its default 1 s slots refresh timeout could trip on a loaded machine.
        slotsRefreshTimeout: 10_000,
        redisOptions: { connectTimeout: LONG_MS },
        // No commandTimeout (ioredis' default: none); redirections and retries stay at the defaults.
      });
      cluster.on("error", () => undefined);
      await cluster.connect();
      const call = cluster.call as (...args: string[]) => Promise<unknown>;
      return {
        name,
        send: (cmd) => call.apply(cluster, cmd),
        close: async () => {
          await cluster.quit();
        },
      };
    }
    case "node-redis": {
      const cluster = createNodeRedisCluster({
        rootNodes: seeds.map((s) => ({ url: `redis://${s.host}:${s.port}` })),
        defaults: { socket: { connectTimeout: LONG_MS } },
      });
      cluster.on("error", () => undefined);
      await cluster.connect();
      // The raw API of node-redis' cluster wants the routing key and the read-only flag
      // spelled out; our commands all have their key at position 1.
      return {
        name,
        send: (cmd) => cluster.sendCommand(cmd[1], READ_ONLY.has(cmd[0]!), cmd),
        close: () => cluster.close(),
      };
    }
    case "glide": {
      const glide = await loadGlide();
      if (glide.GlideClusterClient === undefined) throw new Error("@valkey/valkey-glide has no GlideClusterClient export");
      const client = await glide.GlideClusterClient.createClient({
        addresses: seeds,
        requestTimeout: LONG_MS,
        inflightRequestsLimit: MAX_INFLIGHT,
      });
      // Without a route, customCommand goes where the command's key hashes.
      return {
        name,
        send: (cmd) => client.customCommand(cmd),
        close: async () => {
          client.close();
        },
      };
    }
    case "node-redis-pool":
      throw new Error("node-redis has no pool for its cluster client");
    case "respite-traced":
    case "respite-resp2":
    case "respite-cached":
    case "respite-pooled-cached":
    case "node-redis-cached":
      throw new Error(`${name} is a single-node variant (bench --clients=${name} without --cluster)`);
  }
}
