// A real Sentinel deployment for tests (issue 11): 1 master, 2 replicas and 3
// sentinels, every one a redis-server process from PATH on a free port of
// 127.0.0.1, each with its own config file in one temporary directory
// (sentinels rewrite theirs, so a restarted sentinel remembers the topology).
//
// Processes are tracked by processes.ts: killed by their pid by stop(), and
// synchronously on process exit or SIGINT/SIGTERM if a test file dies before
// its afterAll. Readiness is
// decided by deadline-bounded polls, never by sleeps: a data node answers PING
// with our pid in INFO, replicas report master_link_status:up, and every
// sentinel knows both replicas and the two other sentinels.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Arg } from "../../src/protocol/encode.js";
import type { Reply } from "../../src/protocol/decode.js";
import { makeTempDir, removeTempDir } from "./processes.js";
import { ServerNode } from "./server-node.js";
import { freePort, parseInfo } from "./server-probe.js";
import { pollUntil } from "./wait.js";

export { parseInfo } from "./server-probe.js";

const HOST = "127.0.0.1";
const PROBE_TIMEOUT_MS = 500;
const READY_TIMEOUT_MS = 15_000;

export interface SentinelClusterOptions {
  /** The master's name in the sentinels' configuration. Default "mymaster". */
  name?: string;
  /** Default 1000. */
  downAfterMs?: number;
  /** Default 3000. */
  failoverTimeoutMs?: number;
  /** requirepass of the data nodes (masterauth and the sentinels' auth-pass follow). */
  dataPassword?: string;
  /** requirepass of the sentinels (they use it among themselves too). */
  sentinelPassword?: string;
}

export interface ClusterNode {
  readonly kind: "data" | "sentinel";
  readonly host: string;
  readonly port: number;
  /** "host:port" */
  readonly address: string;
  /** "redis://127.0.0.1:PORT" (no credentials). */
  readonly url: string;
  /** Pid of the current process (changes after restart()). */
  readonly pid: number;
  readonly running: boolean;
  /** SIGKILL; resolves once the process has exited. */
  kill(): Promise<void>;
  /**
   * Start again on the same port; resolves when it answers PING. A sentinel
   * keeps its (self-rewritten) config file; a data node gets a fresh one, a
   * replica of `replicaOf` when given (a killed master comes back as a
   * replica at once instead of waiting for the sentinels to convert it).
   */
  restart(options?: { replicaOf?: number }): Promise<void>;
  /** SIGSTOP */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /** One command on a fresh socket (after AUTH with the node's password). */
  admin(args: readonly Arg[], timeoutMs?: number): Promise<Reply>;
}

export interface SentinelCluster {
  readonly name: string;
  readonly dir: string;
  /** The data nodes; dataNodes[0] is the master at start. */
  readonly dataNodes: readonly ClusterNode[];
  readonly sentinels: readonly ClusterNode[];
  /** "redis://127.0.0.1:PORT" of each sentinel. */
  readonly sentinelUrls: string[];
  readonly downAfterMs: number;
  readonly failoverTimeoutMs: number;
  /** The data node the (first answering) sentinel names as master. */
  currentMaster(): Promise<ClusterNode>;
  /** Poll until every running sentinel names a master other than `notPort`, and that node says ROLE master. */
  waitForNewMaster(notPort: number, timeoutMs?: number): Promise<ClusterNode>;
  /**
   * Poll until the deployment is whole again: every data node runs, one is a
   * master the running sentinels agree on, the others are its replicas with
   * their link up, and the sentinels see them all. Used between tests.
   */
  waitHealthy(timeoutMs?: number): Promise<ClusterNode>;
  /**
   * Make the deployment whole after a test, whatever it did: continue paused
   * processes, restart dead sentinels, restart dead data nodes as replicas of
   * the current master, demote a stray master, then waitHealthy().
   */
  heal(timeoutMs?: number): Promise<ClusterNode>;
  /** Kill every process (by pid) and remove the temp dir. */
  stop(): Promise<void>;
}

/** A flat [k1, v1, k2, v2, ...] reply (SENTINEL REPLICAS entries) as an object. */
function pairs(reply: Reply): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

// ---------------------------------------------------------------------------

class Node extends ServerNode implements ClusterNode {
  constructor(
    readonly kind: "data" | "sentinel",
    port: number,
    private readonly configPath: string,
    password: string | undefined,
    /** Data nodes: the config without any replicaof line. */
    private readonly baseConfig: readonly string[] = [],
  ) {
    super(port, password, PROBE_TIMEOUT_MS);
  }

  protected get label(): string {
    return `${this.kind} ${this.address}`;
  }

  protected args(): string[] {
    return this.kind === "sentinel" ? [this.configPath, "--sentinel"] : [this.configPath];
  }

  async restart(options: { replicaOf?: number } = {}): Promise<void> {
    await this.kill();
    if (this.kind === "data") {
      const lines = [...this.baseConfig];
      if (options.replicaOf !== undefined) lines.push(`replicaof ${HOST} ${options.replicaOf}`);
      writeFileSync(this.configPath, lines.join("\n") + "\n");
    }
    await this.respawn();
  }
}

/** Start the deployment and resolve once it is fully formed. */
export async function startSentinelCluster(options: SentinelClusterOptions = {}): Promise<SentinelCluster> {
  const name = options.name ?? "mymaster";
  const downAfterMs = options.downAfterMs ?? 1000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 3000;
  const dir = makeTempDir("respite-sentinel-");
  const dataNodes: Node[] = [];
  const sentinels: Node[] = [];
  const all = (): Node[] => [...dataNodes, ...sentinels];
  try {
    const ports: number[] = [];
    // Distinct free ports (the kernel may hand the same one out twice in a row).
    while (ports.length < 6) {
      const p = await freePort();
      if (!ports.includes(p) && p !== 6379 && p !== 26379) ports.push(p);
    }
    const [masterPort] = ports as [number];
    for (let i = 0; i < 3; i++) {
      const port = ports[i] as number;
      const nodeDir = join(dir, `data-${port}`);
      mkdirSync(nodeDir);
      const lines = [
        `port ${port}`,
        `bind ${HOST}`,
        `save ""`,
        `appendonly no`,
        `dir ${nodeDir}`,
        // Replicas promoted by a failover must accept writes at once, and a
        // replica must serve reads while resyncing (the default).
        `replica-serve-stale-data yes`,
        `repl-diskless-sync yes`,
        `repl-diskless-sync-delay 0`,
      ];
      if (options.dataPassword !== undefined) {
        lines.push(`requirepass ${options.dataPassword}`, `masterauth ${options.dataPassword}`);
      }
      const base = [...lines];
      if (i > 0) lines.push(`replicaof ${HOST} ${masterPort}`);
      const configPath = join(dir, `data-${port}.conf`);
      writeFileSync(configPath, lines.join("\n") + "\n");
      dataNodes.push(new Node("data", port, configPath, options.dataPassword, base));
    }
    for (let i = 3; i < 6; i++) {
      const port = ports[i] as number;
      const lines = [
        `port ${port}`,
        `bind ${HOST}`,
        `dir ${dir}`,
        `sentinel monitor ${name} ${HOST} ${masterPort} 2`,
        `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
        `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
        `sentinel parallel-syncs ${name} 1`,
      ];
      if (options.dataPassword !== undefined) lines.push(`sentinel auth-pass ${name} ${options.dataPassword}`);
      // Sentinels authenticate to each other with their own requirepass.
      if (options.sentinelPassword !== undefined) lines.push(`requirepass ${options.sentinelPassword}`);
      const configPath = join(dir, `sentinel-${port}.conf`);
      writeFileSync(configPath, lines.join("\n") + "\n");
      sentinels.push(new Node("sentinel", port, configPath, options.sentinelPassword));
    }
    for (const n of dataNodes) n.spawnProcess();
    await Promise.all(dataNodes.map((n) => n.waitReady(READY_TIMEOUT_MS)));
    for (const n of sentinels) n.spawnProcess();
    await Promise.all(sentinels.map((n) => n.waitReady(READY_TIMEOUT_MS)));
    const cluster = new Cluster(name, dir, dataNodes, sentinels, downAfterMs, failoverTimeoutMs);
    await cluster.waitHealthy(READY_TIMEOUT_MS * 2);
    return cluster;
  } catch (err) {
    const logs = all()
      .map((n) => `--- ${n.kind} ${n.address} ---\n${n.log}`)
      .join("\n");
    await Promise.allSettled(all().map((n) => n.kill()));
    removeTempDir(dir);
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logs}`);
  }
}

class Cluster implements SentinelCluster {
  constructor(
    readonly name: string,
    readonly dir: string,
    readonly dataNodes: readonly Node[],
    readonly sentinels: readonly Node[],
    readonly downAfterMs: number,
    readonly failoverTimeoutMs: number,
  ) {}

  get sentinelUrls(): string[] {
    return this.sentinels.map((s) => s.url);
  }

  private byPort(port: number): Node {
    const node = this.dataNodes.find((n) => n.port === port);
    if (node === undefined) throw new Error(`no data node on port ${port}`);
    return node;
  }

  private async masterPortFrom(sentinel: Node): Promise<number> {
    const reply = await sentinel.admin(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", this.name], PROBE_TIMEOUT_MS * 2);
    if (!Array.isArray(reply)) throw new Error(`sentinel ${sentinel.address} does not know ${this.name}`);
    return Number(reply[1]);
  }

  async currentMaster(): Promise<ClusterNode> {
    let last: unknown;
    for (const s of this.sentinels) {
      if (!s.running) continue;
      try {
        return this.byPort(await this.masterPortFrom(s));
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no sentinel named a master: ${String(last)}`);
  }

  async waitForNewMaster(notPort: number, timeoutMs = 20_000): Promise<ClusterNode> {
    return pollUntil(`a master other than ${notPort}`, timeoutMs, async () => {
      const running = this.sentinels.filter((s) => s.running);
      const ports = await Promise.all(running.map((s) => this.masterPortFrom(s)));
      const port = ports[0];
      if (port === undefined || port === notPort || ports.some((p) => p !== port)) return undefined;
      const node = this.byPort(port);
      const role = await node.admin(["ROLE"], PROBE_TIMEOUT_MS);
      return Array.isArray(role) && role[0] === "master" ? node : undefined;
    });
  }

  async waitHealthy(timeoutMs = 30_000): Promise<ClusterNode> {
    return pollUntil("a healthy sentinel deployment", timeoutMs, async () => {
      if (this.dataNodes.some((n) => !n.running) || this.sentinels.some((n) => !n.running)) {
        throw new Error("a process is not running");
      }
      // Each check throws its reason: a timeout says what was missing.
      const ports = await Promise.all(this.sentinels.map((s) => this.masterPortFrom(s)));
      const port = ports[0] as number;
      if (ports.some((p) => p !== port)) throw new Error(`sentinels disagree on the master: ${ports.join(", ")}`);
      const master = this.byPort(port);
      const role = await master.admin(["ROLE"], PROBE_TIMEOUT_MS);
      if (!Array.isArray(role) || role[0] !== "master") throw new Error(`${master.address} is not a master yet`);
      for (const n of this.dataNodes) {
        if (n === master) continue;
        const info = parseInfo(await n.admin(["INFO", "replication"], PROBE_TIMEOUT_MS));
        if (info.role !== "slave" || Number(info.master_port) !== port || info.master_link_status !== "up") {
          throw new Error(`${n.address}: role ${info.role}, master_port ${info.master_port}, link ${info.master_link_status}`);
        }
      }
      for (const s of this.sentinels) {
        const replicas = await s.admin(["SENTINEL", "REPLICAS", this.name], PROBE_TIMEOUT_MS);
        const all = (Array.isArray(replicas) ? replicas : []).map(pairs);
        // Not master-link-status: a sentinel refreshes a replica's INFO only every
        // 10 s; the data nodes' own INFO above is the fresh truth.
        const healthy = all.filter((r) => !/s_down|o_down|disconnected/.test(r.flags ?? ""));
        if (healthy.length !== this.dataNodes.length - 1) {
          throw new Error(`sentinel ${s.address} sees replicas ${all.map((r) => `${r.name} ${r.flags} ${r["master-link-status"]}`).join(", ")}`);
        }
        const others = await s.admin(["SENTINEL", "SENTINELS", this.name], PROBE_TIMEOUT_MS);
        const up = (Array.isArray(others) ? others : []).map(pairs).filter((r) => !/s_down|o_down|disconnected/.test(r.flags ?? ""));
        if (up.length !== this.sentinels.length - 1) throw new Error(`sentinel ${s.address} sees ${up.length} other sentinels up`);
        const masterState = pairs(await s.admin(["SENTINEL", "MASTER", this.name], PROBE_TIMEOUT_MS));
        // No failover in progress (its leftovers would move the master under the next test).
        if (/s_down|o_down|failover/.test(masterState.flags ?? "")) throw new Error(`sentinel ${s.address}: master flags ${masterState.flags}`);
      }
      return master;
    });
  }

  async heal(timeoutMs = 30_000): Promise<ClusterNode> {
    for (const n of [...this.dataNodes, ...this.sentinels]) if (n.running) n.resume();
    await Promise.all(this.sentinels.filter((s) => !s.running).map((s) => s.restart()));
    // Wait out a failover in progress: the sentinels must agree on a live master.
    const master = await pollUntil("a master the sentinels agree on", timeoutMs, async () => {
      const ports = await Promise.all(this.sentinels.map((s) => this.masterPortFrom(s)));
      const port = ports[0] as number;
      if (ports.some((p) => p !== port)) throw new Error(`sentinels disagree: ${ports.join(", ")}`);
      const node = this.byPort(port);
      if (!node.running) throw new Error(`the sentinels' master ${node.address} is down (failover pending)`);
      const role = await node.admin(["ROLE"], PROBE_TIMEOUT_MS);
      if (!Array.isArray(role) || role[0] !== "master") throw new Error(`${node.address} is not a master yet`);
      return node;
    });
    for (const n of this.dataNodes) {
      if (n === master) continue;
      if (!n.running) {
        await n.restart({ replicaOf: master.port });
        continue;
      }
      const info = parseInfo(await n.admin(["INFO", "replication"]));
      if (info.role !== "slave" || Number(info.master_port) !== master.port) await n.admin(["REPLICAOF", HOST, String(master.port)]);
    }
    return this.waitHealthy(timeoutMs);
  }

  async stop(): Promise<void> {
    for (const n of [...this.dataNodes, ...this.sentinels]) {
      if (n.running) n.resume();
    }
    await Promise.allSettled([...this.dataNodes, ...this.sentinels].map((n) => n.kill()));
    removeTempDir(this.dir);
  }
}
