// For `npm run bench -- --cluster` (issue 10): a respite cluster client set
// up the way bench/clients.ts sets up single-node clients (timeouts raised so
// no cell fails on a production default, queues sized for C=1024, pools of 8
// sockets per node opened before measuring), behind the same tiny adapter:
// send(raw command array) -> reply, close(). Not exported from the package
// index; the bench imports it from here. The servers: startRedisCluster() in
// test/support/redis-cluster.ts (3 masters, 3 replicas, killed by pid at exit).
import type { Reply } from "../protocol/decode.js";
import type { Command } from "../protocol/encode.js";
import type { TransportKind } from "../options.js";
import { createCluster, type ClusterClient } from "./cluster-client.js";

export interface ClusterBenchClient {
  readonly cluster: ClusterClient;
  send(cmd: Command): Promise<Reply>;
  close(): Promise<void>;
}

const LONG_MS = 60_000;
const POOL_SIZE = 8;
const MAX_INFLIGHT = 16_384;

/** Create a cluster client, wait until every master's connection is up, and warm each pooled node's sockets. */
export async function openClusterBenchClient(rootNodes: readonly string[], transport: TransportKind): Promise<ClusterBenchClient> {
  const cluster = createCluster({
    rootNodes,
    transport,
    connectTimeoutMs: LONG_MS,
    maxPending: MAX_INFLIGHT * 4,
    offlineQueue: { maxLength: MAX_INFLIGHT },
    pool: { min: transport === "pooled" ? POOL_SIZE : 0, max: POOL_SIZE, acquireTimeoutMs: LONG_MS, maxWaiting: MAX_INFLIGHT },
  });
  cluster.on("error", () => undefined);
  await cluster.connect();
  return { cluster, send: (cmd) => cluster.command(cmd), close: () => cluster.close() };
}
