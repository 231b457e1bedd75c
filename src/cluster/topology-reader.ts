// Reading the topology once: ask the nodes we are connected to (masters
// first, each time starting elsewhere), then every other known node and the
// root nodes on short-lived connections, until one answers CLUSTER SHARDS
// (Redis 7) or CLUSTER SLOTS.
import { createClient } from "../client.js";
import { ClientClosedError, ConnectionError, ReplyError } from "../errors.js";
import type { Reply } from "../protocol/decode.js";
import type { Command } from "../protocol/encode.js";
import type { NodeEntry, NodeRegistry } from "./node-registry.js";
import type { ResolvedClusterOptions } from "./options.js";
import type { ClusterCounters } from "./stats.js";
import { parseShards, parseSlots, splitAddress, type Address, type Topology } from "./topology.js";

/** Each node is asked within this deadline (or connectTimeoutMs when shorter). */
const REFRESH_TIMEOUT_MS = 2000;

export interface ReaderDeps {
  readonly nodes: NodeRegistry;
  readonly counters: ClusterCounters;
  nextTurn(): number;
  isClosed(): boolean;
  /** Takes the topology a node answered; a throw counts as that node failing. */
  install(topology: Topology): void;
}

export class TopologyReader {
  /** CLUSTER SHARDS is unknown to this server (Redis < 7): use CLUSTER SLOTS. */
  private noShards = false;
  private readonly timeoutMs: number;

  constructor(
    private readonly options: ResolvedClusterOptions,
    private readonly deps: ReaderDeps,
  ) {
    const connectTimeout = options.resolved.connectTimeoutMs;
    this.timeoutMs = connectTimeout > 0 ? Math.min(connectTimeout, REFRESH_TIMEOUT_MS) : REFRESH_TIMEOUT_MS;
  }

  /** Read and install a topology; rejects when no known node nor root node answered. */
  async load(): Promise<void> {
    const nodes = this.deps.nodes;
    let last: unknown;
    const tried = new Set<Address>();
    const ready = nodes.all().filter((e) => e.client.status === "ready");
    ready.sort((a, b) => (a.role === b.role ? 0 : a.role === "master" ? -1 : 1));
    const offset = ready.length > 0 ? this.deps.nextTurn() % ready.length : 0;
    for (let i = 0; i < ready.length; i++) {
      const e = ready[(offset + i) % ready.length] as NodeEntry;
      tried.add(e.address);
      try {
        this.deps.install(await this.fetch((c) => e.client.command(c, { timeoutMs: this.timeoutMs }), e.host));
        return;
      } catch (err) {
        if (this.deps.isClosed()) throw new ClientClosedError();
        last = err;
      }
    }
    const others: { host: string; port: number }[] = [];
    for (const addr of nodes.addresses()) if (!tried.has(addr)) others.push(splitAddress(addr));
    for (const r of this.options.rootNodes) {
      const addr = `${r.host}:${r.port}`;
      if (!tried.has(addr) && !nodes.has(addr)) others.push(r);
    }
    for (const { host, port } of others) {
      if (this.deps.isClosed()) throw new ClientClosedError();
      const probe = createClient({
        ...this.options.node,
        host,
        port,
        transport: "pipelined",
        reconnect: false,
        lazyConnect: false,
        connectTimeoutMs: this.timeoutMs,
        offlineQueue: { maxLength: 4 },
      });
      try {
        this.deps.install(await this.fetch((c) => probe.command(c, { timeoutMs: this.timeoutMs }), host));
        return;
      } catch (err) {
        last = err;
      } finally {
        probe.destroy();
      }
    }
    this.deps.counters.refreshFailures++;
    if (this.deps.isClosed()) throw new ClientClosedError();
    throw new ConnectionError("Could not read the cluster topology from any known node", "connect-failed", false, { cause: last });
  }

  private async fetch(exec: (c: Command) => Promise<Reply>, host: string): Promise<Topology> {
    let topo: Topology | undefined;
    if (!this.noShards) {
      try {
        topo = parseShards(await exec(["CLUSTER", "SHARDS"]), this.options.resolved.tls !== undefined, host);
      } catch (err) {
        if (!(err instanceof ReplyError && /unknown (sub)?command|SHARDS/i.test(err.message))) throw err;
        this.noShards = true;
      }
    }
    topo ??= parseSlots(await exec(["CLUSTER", "SLOTS"]), host);
    if (topo.shards.length === 0) throw new ConnectionError(`The node at ${host} knows no slots yet`, "connect-failed", false);
    return topo;
  }
}
