// A real Redis Cluster for tests (issue 10): 3 masters and 3 replicas, every
// one a redis-server process from PATH on free ports of 127.0.0.1 (a data
// port and an explicit --cluster-port for the bus: port+10000 may be taken or
// past 65535), each with its own nodes.conf and dir in one temporary
// directory, formed with `redis-cli --cluster create ... --cluster-replicas 1`.
//
// Processes are tracked by processes.ts: killed by their pid by stop(), and
// synchronously on process exit or SIGINT/SIGTERM if a test file dies before
// its afterAll. Readiness is decided by deadline-bounded polls, never sleeps:
// every node reports cluster_state:ok and knows every other node, every
// replica reports master_link_status:up (a replica whose first sync never
// finished will not take over), and all nodes agree on who owns each slot.
//
// Faults on demand: kill -9 a master (its replica is promoted after
// cluster-node-timeout), CLUSTER FAILOVER on a replica, and a slot migration
// in its three steps (SETSLOT IMPORTING/MIGRATING, MIGRATE the keys, SETSLOT
// NODE), which produces ASK and then MOVED for clients using the slot.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Arg } from "../../src/protocol/encode.js";
import type { Reply } from "../../src/protocol/decode.js";
import { makeTempDir, removeTempDir, runToEnd } from "./processes.js";
import { ServerNode } from "./server-node.js";
import { freePort, parseInfo } from "./server-probe.js";
import { pollUntil } from "./wait.js";

export { parseInfo } from "./server-probe.js";

const HOST = "127.0.0.1";
const PROBE_TIMEOUT_MS = 1_000;
const READY_TIMEOUT_MS = 30_000;
const SLOTS = 16384;
/**
 * A replica drops a manual failover it could not finish within 5 s
 * (CLUSTER_MF_TIMEOUT: its MFSTART went out on a bus link being re-made, or
 * the votes did not come); past this, CLUSTER FAILOVER is sent again.
 */
const MANUAL_FAILOVER_RETRY_MS = 6_000;
/** Pause before asking a replica that refused CLUSTER FAILOVER again. */
const MANUAL_FAILOVER_REFUSED_PAUSE_MS = 100;

export interface RedisClusterOptions {
  /** Default 3. */
  masters?: number;
  /** Replicas per master. Default 1. */
  replicas?: number;
  /** cluster-node-timeout in ms. Default 1000. */
  nodeTimeoutMs?: number;
}

export interface RedisClusterNode {
  readonly port: number;
  /** "127.0.0.1:PORT" */
  readonly address: string;
  /** "redis://127.0.0.1:PORT" */
  readonly url: string;
  /** The cluster node id (40 hex chars), stable across restarts (nodes.conf is kept). */
  readonly id: string;
  /** Pid of the current process (changes after restart()). */
  readonly pid: number;
  readonly running: boolean;
  /** SIGKILL; resolves once the process has exited. */
  kill(): Promise<void>;
  /**
   * Start again on the same ports with the same nodes.conf; resolves when it
   * answers PING. A killed master whose slots a replica took over rejoins as
   * that replica's replica (waitHealthy() then waits for its sync).
   */
  restart(): Promise<void>;
  /** SIGSTOP: the process freezes, its sockets stay open (shorter than cluster-node-timeout: no failover). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** One command on a fresh socket. */
  admin(args: readonly Arg[], timeoutMs?: number): Promise<Reply>;
}

/** One line of CLUSTER NODES, as the harness needs it. */
export interface NodeView {
  id: string;
  port: number;
  role: "master" | "replica";
  /** The master's id, for a replica. */
  masterId: string | undefined;
  failed: boolean;
  /** Slot ranges owned, [start, end] inclusive. */
  slots: [number, number][];
}

export interface FailoverResult {
  /** The master that was killed (or demoted by CLUSTER FAILOVER). */
  old: RedisClusterNode;
  /** Its replica, now the master of its slots. */
  promoted: RedisClusterNode;
  /** Date.now() at the kill / at CLUSTER FAILOVER. */
  startedAt: number;
  /** Date.now() once the promoted replica said ROLE master and every running node agreed. */
  doneAt: number;
}

export interface MigrateOptions {
  /** Keys per MIGRATE. Default 10. */
  batch?: number;
  /** Keys to migrate first, in one MIGRATE of their own (e.g. half of a multi-key pair, to produce TRYAGAIN). */
  firstKeys?: string[];
  /** Called after IMPORTING/MIGRATING are set, and after each MIGRATE batch (to let load hit ASK). */
  onStep?: (step: "migrating" | "migrated-batch") => Promise<void> | void;
}

export interface RedisCluster {
  readonly dir: string;
  readonly nodes: readonly RedisClusterNode[];
  /** "redis://127.0.0.1:PORT" of every node (use a few as rootNodes). */
  readonly urls: string[];
  readonly nodeTimeoutMs: number;
  byPort(port: number): RedisClusterNode;
  byId(id: string): RedisClusterNode;
  /** CLUSTER NODES as seen by one running node (the first that answers). */
  view(): Promise<NodeView[]>;
  /** The running master that owns `slot`, according to the first node that answers. */
  masterOf(slot: number): Promise<RedisClusterNode>;
  /** The current masters (owning slots), according to the first node that answers. */
  masters(): Promise<RedisClusterNode[]>;
  /** The replicas of a master, according to the first node that answers. */
  replicasOf(master: RedisClusterNode): Promise<RedisClusterNode[]>;
  /** kill -9 the master of `slot`, then wait until its replica took over and every running node agrees. */
  killMaster(slot: number, timeoutMs?: number): Promise<FailoverResult>;
  /**
   * CLUSTER FAILOVER on a replica of the master of `slot`; resolves once the
   * roles have swapped. Asked again (within `timeoutMs`) when the replica
   * refuses it (its bus link to the master is down for a moment, e.g. after
   * a SIGSTOP) or drops it after 5 s without taking over.
   */
  manualFailover(slot: number, timeoutMs?: number): Promise<FailoverResult>;
  /** Move `slot` (and its keys) to `target` (a master): IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE everywhere. */
  migrateSlot(slot: number, target: RedisClusterNode, options?: MigrateOptions): Promise<void>;
  /**
   * Poll until the cluster is whole: every node runs and reports
   * cluster_state:ok and knows every node, no node is flagged failed,
   * replicas have their link up, and all agree on every slot's owner and on
   * every node's role and master (so replicasOf() is true from any node).
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Kill every process (by pid) and remove the temp dir. */
  stop(): Promise<void>;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** CLUSTER NODES text -> one entry per node (importing/migrating markers skipped). */
export function parseClusterNodes(reply: Reply): NodeView[] {
  if (typeof reply !== "string") throw new Error("CLUSTER NODES: expected text");
  const out: NodeView[] = [];
  for (const line of reply.split("\n")) {
    const f = line.trim().split(" ");
    if (f.length < 8) continue;
    const [id, addr, flags, master] = f as [string, string, string, string];
    const port = Number(addr.split("@")[0]?.split(":").pop());
    const flagSet = new Set(flags.split(","));
    const slots: [number, number][] = [];
    for (const s of f.slice(8)) {
      if (s.startsWith("[")) continue;
      const [a, b] = s.split("-");
      slots.push([Number(a), Number(b ?? a)]);
    }
    out.push({
      id,
      port,
      role: flagSet.has("master") ? "master" : "replica",
      masterId: master === "-" ? undefined : master,
      failed: flagSet.has("fail") || flagSet.has("fail?") || flagSet.has("noaddr"),
      slots,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------

class Node extends ServerNode implements RedisClusterNode {
  id = "";

  constructor(
    port: number,
    private readonly busPort: number,
    private readonly dir: string,
    private readonly nodeTimeoutMs: number,
  ) {
    super(port, undefined, PROBE_TIMEOUT_MS);
  }

  protected get label(): string {
    return `node ${this.address}`;
  }

  protected args(): string[] {
    return [
      "--port", String(this.port),
      "--bind", HOST,
      "--cluster-enabled", "yes",
      "--cluster-port", String(this.busPort),
      "--cluster-node-timeout", String(this.nodeTimeoutMs),
      "--cluster-replica-validity-factor", "0",
      "--cluster-config-file", join(this.dir, `nodes-${this.port}.conf`),
      "--save", "",
      "--appendonly", "no",
      "--dir", join(this.dir, String(this.port)),
      // A replica's first sync (and the resync after a failover) in milliseconds.
      "--repl-diskless-sync", "yes",
      "--repl-diskless-sync-delay", "0",
    ];
  }

  /** Ready as every ServerNode, and its cluster node id read. */
  override async waitReady(timeoutMs: number): Promise<void> {
    await super.waitReady(timeoutMs);
    const id = await this.admin(["CLUSTER", "MYID"]);
    if (typeof id !== "string") throw new Error("CLUSTER MYID: expected text");
    this.id = id;
  }

  restart(): Promise<void> {
    return this.respawn();
  }
}

/** Start the cluster and resolve once it is fully formed and healthy. */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const count = masters * (1 + replicas);
  const dir = makeTempDir("respite-cluster-");
  const nodes: Node[] = [];
  try {
    // Distinct free ports, two per node (data and bus).
    const ports: number[] = [];
    while (ports.length < count * 2) {
      const p = await freePort();
      if (!ports.includes(p) && p !== 6379 && p !== 16379) ports.push(p);
    }
    for (let i = 0; i < count; i++) {
      const port = ports[2 * i] as number;
      mkdirSync(join(dir, String(port)));
      nodes.push(new Node(port, ports[2 * i + 1] as number, dir, nodeTimeoutMs));
    }
    for (const n of nodes) n.spawnProcess();
    await Promise.all(nodes.map((n) => n.waitReady(READY_TIMEOUT_MS)));
    await runToEnd("redis-cli", ["--cluster", "create", ...nodes.map((n) => n.address), "--cluster-replicas", String(replicas), "--cluster-yes"], 60_000);
    const cluster = new Cluster(dir, nodes, nodeTimeoutMs);
    await cluster.waitHealthy(READY_TIMEOUT_MS);
    return cluster;
  } catch (err) {
    const logs = nodes.map((n) => `--- node ${n.address} ---\n${n.log}`).join("\n");
    await Promise.allSettled(nodes.map((n) => n.kill()));
    removeTempDir(dir);
    throw new Error(`${message(err)}\n${logs}`);
  }
}

class Cluster implements RedisCluster {
  constructor(
    readonly dir: string,
    readonly nodes: readonly Node[],
    readonly nodeTimeoutMs: number,
  ) {}

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  byPort(port: number): Node {
    const node = this.nodes.find((n) => n.port === port);
    if (node === undefined) throw new Error(`no node on port ${port}`);
    return node;
  }

  byId(id: string): Node {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node with id ${id}`);
    return node;
  }

  private async viewFrom(node: Node): Promise<NodeView[]> {
    return parseClusterNodes(await node.admin(["CLUSTER", "NODES"], PROBE_TIMEOUT_MS));
  }

  async view(): Promise<NodeView[]> {
    let last: unknown;
    for (const n of this.nodes) {
      if (!n.running) continue;
      try {
        return await this.viewFrom(n);
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no node answered CLUSTER NODES: ${message(last)}`);
  }

  async masterOf(slot: number): Promise<Node> {
    const v = (await this.view()).find((e) => e.role === "master" && e.slots.some(([a, b]) => slot >= a && slot <= b));
    if (v === undefined) throw new Error(`no master owns slot ${slot}`);
    return this.byId(v.id);
  }

  async masters(): Promise<Node[]> {
    return (await this.view()).filter((e) => e.role === "master" && e.slots.length > 0).map((e) => this.byId(e.id));
  }

  async replicasOf(master: RedisClusterNode): Promise<Node[]> {
    return (await this.view()).filter((e) => e.role === "replica" && e.masterId === master.id).map((e) => this.byId(e.id));
  }

  /** Every running node names `promoted` as the owner of `slot`, and `promoted` says ROLE master. */
  private async waitTakeover(slot: number, promoted: Node, timeoutMs: number): Promise<void> {
    await pollUntil(`node ${promoted.address} owning slot ${slot}`, timeoutMs, async () => {
      const role = await promoted.admin(["ROLE"], PROBE_TIMEOUT_MS);
      if (!Array.isArray(role) || role[0] !== "master") return undefined;
      for (const n of this.nodes) {
        if (!n.running) continue;
        const owner = (await this.viewFrom(n)).find((e) => e.role === "master" && e.slots.some(([a, b]) => slot >= a && slot <= b));
        if (owner?.id !== promoted.id) return undefined;
        const info = parseInfo(await n.admin(["CLUSTER", "INFO"], PROBE_TIMEOUT_MS));
        if (info.cluster_state !== "ok") return undefined;
      }
      return true;
    });
  }

  async killMaster(slot: number, timeoutMs = 20_000): Promise<FailoverResult> {
    const old = await this.masterOf(slot);
    const [replica] = await this.replicasOf(old);
    if (replica === undefined) throw new Error(`master ${old.address} has no replica`);
    const startedAt = Date.now();
    await old.kill();
    // With one replica, it is the one promoted.
    await this.waitTakeover(slot, replica, timeoutMs);
    return { old, promoted: replica, startedAt, doneAt: Date.now() };
  }

  async manualFailover(slot: number, timeoutMs = 20_000): Promise<FailoverResult> {
    const old = await this.masterOf(slot);
    const [replica] = await this.replicasOf(old);
    if (replica === undefined) throw new Error(`master ${old.address} has no replica`);
    const startedAt = Date.now();
    const deadline = startedAt + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const role = await replica.admin(["ROLE"], PROBE_TIMEOUT_MS);
        if (!Array.isArray(role) || role[0] !== "master") await replica.admin(["CLUSTER", "FAILOVER"]);
        await this.waitTakeover(slot, replica, Math.max(0, Math.min(MANUAL_FAILOVER_RETRY_MS, deadline - Date.now())));
        return { old, promoted: replica, startedAt, doneAt: Date.now() };
      } catch (err) {
        if (Date.now() >= deadline) throw new Error(`manual failover to ${replica.address} not done within ${timeoutMs} ms (${attempt} attempts): ${message(err)}`);
        await new Promise((r) => setTimeout(r, MANUAL_FAILOVER_REFUSED_PAUSE_MS));
      }
    }
  }

  async migrateSlot(slot: number, target: RedisClusterNode, options: MigrateOptions = {}): Promise<void> {
    const batch = options.batch ?? 10;
    const source = await this.masterOf(slot);
    if (source.id === target.id) return;
    const to = this.byId(target.id);
    // The documented order: importing on the target first, so a client sent
    // there by ASK is accepted as soon as the source starts redirecting.
    await to.admin(["CLUSTER", "SETSLOT", slot, "IMPORTING", source.id]);
    await source.admin(["CLUSTER", "SETSLOT", slot, "MIGRATING", to.id]);
    await options.onStep?.("migrating");
    if (options.firstKeys !== undefined && options.firstKeys.length > 0) {
      await source.admin(["MIGRATE", HOST, to.port, "", 0, 5000, "REPLACE", "KEYS", ...options.firstKeys], 10_000);
      await options.onStep?.("migrated-batch");
    }
    for (;;) {
      const keys = await source.admin(["CLUSTER", "GETKEYSINSLOT", slot, batch]);
      if (!Array.isArray(keys) || keys.length === 0) break;
      await source.admin(["MIGRATE", HOST, to.port, "", 0, 5000, "REPLACE", "KEYS", ...(keys as string[])], 10_000);
      await options.onStep?.("migrated-batch");
    }
    // Target first (it bumps its epoch and owns the slot), then the source
    // (it stops answering ASK and answers MOVED), then every other master.
    await to.admin(["CLUSTER", "SETSLOT", slot, "NODE", to.id]);
    await source.admin(["CLUSTER", "SETSLOT", slot, "NODE", to.id]);
    for (const m of await this.masters()) {
      if (m.id !== to.id && m.id !== source.id) await m.admin(["CLUSTER", "SETSLOT", slot, "NODE", to.id]);
    }
  }

  async waitHealthy(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    await pollUntil("a healthy cluster", timeoutMs, async () => {
      const down = this.nodes.find((n) => !n.running);
      if (down !== undefined) throw new Error(`node ${down.address} is not running`);
      let reference: string | undefined;
      for (const n of this.nodes) {
        const info = parseInfo(await n.admin(["CLUSTER", "INFO"], PROBE_TIMEOUT_MS));
        if (info.cluster_state !== "ok" || Number(info.cluster_known_nodes) !== this.nodes.length || Number(info.cluster_slots_ok) !== SLOTS) {
          return undefined;
        }
        const view = await this.viewFrom(n);
        if (view.some((e) => e.failed)) return undefined;
        // Slot owners by port, in one canonical string: every node must agree.
        const owners = view
          .filter((e) => e.role === "master")
          .flatMap((e) => e.slots.map(([a, b]) => `${a}-${b}@${e.port}`))
          .sort()
          .join(",");
        // Roles too: a demoted or rejoining master is seen as a replica by some
        // nodes before others (gossip), and replicasOf() asks the first one.
        const roles = view
          .map((e) => `${e.id}:${e.role}:${e.masterId ?? "-"}`)
          .sort()
          .join(",");
        const shape = `${owners}|${roles}`;
        if (reference !== undefined && shape !== reference) return undefined;
        reference = shape;
        const me = view.find((e) => e.id === n.id);
        if (me?.role === "replica") {
          const repl = parseInfo(await n.admin(["INFO", "replication"], PROBE_TIMEOUT_MS));
          if (repl.master_link_status !== "up") return undefined;
        }
      }
      // No migration left half done (an importing/migrating marker shows as "[slot-<-id]").
      for (const n of this.nodes) {
        const text = await n.admin(["CLUSTER", "NODES"], PROBE_TIMEOUT_MS);
        if (typeof text === "string" && text.includes("[")) return undefined;
      }
      return true;
    });
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.nodes.map((n) => n.kill()));
    removeTempDir(this.dir);
  }
}
