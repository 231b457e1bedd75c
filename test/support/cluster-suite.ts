// One real cluster per test file (test/support/redis-cluster.ts), started
// before its tests and stopped after them (also when one fails), and cluster
// clients that are destroyed after each test. The client options are the
// ones every cluster test wants (fast dials and reconnects); a test adds its own.
import { afterAll, afterEach, beforeAll } from "vitest";
import { createCluster, type ClusterClient, type ClusterOptions, type TransportKind } from "../../src/index.js";
import { startRedisCluster, type RedisCluster } from "./redis-cluster.js";

export interface ClusterSuite {
  /** The running cluster (set once beforeAll has run). */
  readonly cluster: RedisCluster;
  /** A cluster client on the first two nodes, destroyed after the test. */
  connect(transport: TransportKind, extra?: Partial<ClusterOptions>): ClusterClient;
}

export function useCluster(): ClusterSuite {
  let cluster: RedisCluster | undefined;
  const clients: ClusterClient[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });
  afterAll(async () => {
    await cluster?.stop();
  }, 30_000);
  const running = (): RedisCluster => {
    if (cluster === undefined) throw new Error("the cluster is not started yet (use it inside a test)");
    return cluster;
  };
  return {
    get cluster() {
      return running();
    },
    connect(transport, extra = {}) {
      const c = createCluster({
        rootNodes: running().urls.slice(0, 2),
        transport,
        connectTimeoutMs: 1000,
        reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
        ...extra,
      });
      clients.push(c);
      return c;
    },
  };
}
