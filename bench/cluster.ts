// The Redis Cluster for `npm run bench -- --cluster`: the test harness's
// startRedisCluster() (3 masters + 3 replicas of redis-server from PATH on
// free ports, formed with redis-cli --cluster create, ready once every node
// says cluster_state:ok and every replica's link is up), reused as is. The
// bench adds what a measurement needs on top: every node pinned to the
// redis core when pinning is on, the data set preloaded on the right masters
// through the bench's own admin sockets (independent of the clients under
// test), and a synchronous kill of every node for exit paths (Ctrl-C, crash)
// that does not depend on the harness's own exit hooks.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { startRedisCluster, type RedisCluster } from "../test/support/redis-cluster.js";
import { keySlot } from "../src/index.js";
import { adminBatch, adminCommand, type AdminTarget } from "./admin.js";
import type { RawCommand } from "./workloads.js";

const HOST = "127.0.0.1";
const MASTERS = 3;
const REPLICAS_PER_MASTER = 1;

export interface ClusterTarget {
  /** redis://127.0.0.1:PORT of every node; the clients get the masters' as their seeds. */
  urls: string[];
  /** The master data ports (the seeds every client starts from). */
  seeds: { host: string; port: number }[];
  redisVersion: string;
  /** What was started and pinned, for the run header. */
  note: string;
}

let running: RedisCluster | undefined;

/** One [start, end, port] per slot range, from CLUSTER SLOTS on any node. */
async function slotMap(admin: AdminTarget): Promise<[number, number, number][]> {
  const reply = await adminCommand(admin, ["CLUSTER", "SLOTS"], 5_000);
  if (!Array.isArray(reply)) throw new Error("CLUSTER SLOTS: expected an array");
  return (reply as unknown[][]).map((r) => [Number(r[0]), Number(r[1]), Number((r[2] as unknown[])[1])]);
}

/** Start the cluster (pinning every node to `core` when given) and wait until it is whole. */
export async function startBenchCluster(core: number | undefined): Promise<ClusterTarget> {
  const cluster = await startRedisCluster({ masters: MASTERS, replicas: REPLICAS_PER_MASTER });
  running = cluster;
  let pinned = "not pinned";
  if (core !== undefined) {
    // Every thread of every node (taskset -a), after the fact: the harness spawns them unpinned.
    for (const n of cluster.nodes) execFileSync("taskset", ["-a", "-c", "-p", String(core), String(n.pid)], { stdio: "ignore" });
    pinned = `all pinned to core ${core} with taskset`;
  }
  const masters = await cluster.masters();
  const first = cluster.nodes[0]!;
  const info = await adminCommand({ host: HOST, port: first.port, prelude: [] }, ["INFO", "server"], 5_000);
  const redisVersion = /redis_version:([^\r\n]+)/.exec(String(info))?.[1] ?? "?";
  const seeds = masters.map((m) => ({ host: HOST, port: m.port }));
  const note =
    `started a Redis Cluster of ${cluster.nodes.length} redis-server processes (${masters.length} masters: ` +
    `${masters.map((m) => m.port).join(", ")}; ${cluster.nodes.length - masters.length} replicas), cluster-node-timeout ` +
    `${cluster.nodeTimeoutMs} ms, ${pinned}`;
  return { urls: cluster.urls, seeds, redisVersion, note };
}

/**
 * Write `commands` (single-key, key in position 1) on the masters owning
 * their keys, one pipelined admin socket per master. A slot computed wrong
 * would come back as a MOVED error and fail the preload loudly. Returns how
 * many commands went to each master port.
 */
export async function clusterBatch(target: ClusterTarget, commands: readonly RawCommand[], timeoutMs: number): Promise<Map<number, number>> {
  const ranges = await slotMap({ host: HOST, port: target.seeds[0]!.port, prelude: [] });
  const byPort = new Map<number, RawCommand[]>();
  for (const cmd of commands) {
    const slot = keySlot(cmd[1]!);
    const range = ranges.find(([a, b]) => slot >= a && slot <= b);
    if (range === undefined) throw new Error(`no master owns slot ${slot}`);
    const list = byPort.get(range[2]);
    if (list === undefined) byPort.set(range[2], [cmd]);
    else list.push(cmd);
  }
  await Promise.all([...byPort].map(([port, cmds]) => adminBatch({ host: HOST, port, prelude: [] }, cmds, timeoutMs)));
  return new Map([...byPort].map(([port, cmds]) => [port, cmds.length]));
}

/** Stop every node (by pid) and remove the cluster's temp dir. */
export async function stopBenchCluster(): Promise<void> {
  const cluster = running;
  running = undefined;
  if (cluster !== undefined) await cluster.stop();
}

/** For exit paths where nothing async runs any more: SIGKILL every node by its pid, remove the dir. */
export function killClusterSync(): void {
  const cluster = running;
  running = undefined;
  if (cluster === undefined) return;
  for (const n of cluster.nodes) {
    try {
      if (n.running) process.kill(n.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  try {
    rmSync(cluster.dir, { recursive: true, force: true });
  } catch {
    // best effort
  }
}
