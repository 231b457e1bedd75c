// The cluster client: the same command() API, typed helpers,
// batch() and scan() as a single-node Client, over a Redis Cluster. It is a
// router, the way undici's Agent holds Pools: each command goes, by the hash
// slot of its keys, to one node client (a respite Client per node, with its
// own transport, reconnect, queue and deadlines). Nothing below the cluster
// folder knows about slots.
//
// This file is the facade: it wires the parts together and owns the
// lifecycle. The parts:
// - node-registry.ts: one Client per node, created on need, closed when the node leaves;
// - router.ts: the slot table and which node a command goes to (readFrom);
// - topology-reader.ts / refresh-scheduler.ts: reading CLUSTER SHARDS / SLOTS,
//   and when (on MOVED, lost nodes, periodically; one read at a time);
// - dispatcher.ts: MOVED / ASK / TRYAGAIN / CLUSTERDOWN and re-routing after a lost node;
// - batch.ts, fan-out.ts: batches and multi-key helpers across slots;
// - pubsub.ts, shard-subscribers.ts: subscriptions, which follow failovers and slot moves.
import { ClientClosedError, ConnectionError, RedisError } from "../errors.js";
import type { BatchOptions, BatchResult } from "../batch.js";
import type { Client, CloseOptions } from "../client.js";
import type { RespiteClient } from "../respite-client.js";
import { publish } from "../observability/channels.js";
import type { AnyListener, Kind } from "../pubsub/listeners.js";
import { PubSubCommands } from "../pubsub/pubsub-commands.js";
import { refusal } from "../commands.js";
import type { SubscribeOptions } from "../pubsub/subscriber.js";
import { flatKeys, type OneOrMany, type RedisKey, type RedisValue } from "../helpers/base.js";
import { checkCloseOptions, checkSubscribeOptions } from "../option-keys.js";
import type { Reply } from "../protocol/decode.js";
import type { Arg, Command } from "../protocol/encode.js";
import { checkCommandOptions, type CommandOptions } from "../request.js";
import { scanKeys, type KeyScanOptions } from "../scan.js";
import type { ClientStatus, DedicatedConnection } from "../transport.js";
import { clusterBatch } from "./batch.js";
import type { ClusterContext } from "./context.js";
import { Dispatcher } from "./dispatcher.js";
import type { ClusterEvents } from "./events.js";
import { mgetBySlot, msetBySlot, sumBySlot } from "./fan-out.js";
import { newJourney } from "./journey.js";
import { NodeRegistry, type NodeRole } from "./node-registry.js";
import { resolveClusterOptions, type ClusterOptions, type ResolvedClusterOptions } from "./options.js";
import { RefreshScheduler } from "./refresh-scheduler.js";
import { SlotRouter } from "./router.js";
import { Sleeps } from "./sleeps.js";
import { commandSlot, keySlot } from "./slots.js";
import { ClusterPubSub } from "./pubsub.js";
import { newCounters, type ClusterStats } from "./stats.js";
import { TopologyReader } from "./topology-reader.js";
import { addressesOf, mastersChanged, oneSlotPerMaster, type Address, type Shard, type Topology } from "./topology.js";
import type { ClientCacheStats } from "../cache/client-cache.js";

/** Nodes (masters and their replicas) on either side of a slot whose master changed between two topologies. */
function slotsMoved(before: Topology, after: Topology): Set<Address> {
  const out = new Set<Address>();
  const add = (shard: Shard | undefined): void => {
    if (shard === undefined) return;
    out.add(shard.master);
    for (const r of shard.replicas) out.add(r);
  };
  for (let s = 0; s < after.slots.length; s++) {
    const a = before.slots[s];
    const b = after.slots[s];
    if (a?.master === b?.master) continue;
    add(a);
    add(b);
  }
  return out;
}

export type { ClusterEvents } from "./events.js";
export type { ClusterStats } from "./stats.js";

/**
 * open -> closing (close(): sent commands get their replies, node clients
 * close) -> closed ("close" emitted). destroy() goes straight to closed.
 */
type Lifecycle = { kind: "open" } | { kind: "closing"; done: Promise<void> } | { kind: "closed"; done: Promise<void> };

export class ClusterClient extends PubSubCommands<ClusterEvents> implements RespiteClient {
  readonly options: ResolvedClusterOptions;
  private life: Lifecycle = { kind: "open" };
  private readonly counters = newCounters();
  private readonly registry: NodeRegistry;
  private readonly router: SlotRouter;
  private readonly refresher: RefreshScheduler;
  private readonly sleeps: Sleeps;
  private readonly ctx: ClusterContext;
  private readonly dispatcher: Dispatcher;
  private pubsub: ClusterPubSub | undefined;

  constructor(options: ClusterOptions) {
    super();
    this.options = resolveClusterOptions(options);
    const isClosed = (): boolean => this.life.kind !== "open";
    this.registry = new NodeRegistry(this.options, {
      added: (address, role) => this.emit("node-added", { address, role }),
      removed: (address) => this.emit("node-removed", { address }),
      disconnected: (address, error) => this.emit("node-disconnect", { address, error }),
      lost: () => this.refresher.nodeLost(),
      error: (error) => this.reportError(error),
    });
    this.router = new SlotRouter(this.options.readFrom, this.registry);
    const reader = new TopologyReader(this.options, {
      nodes: this.registry,
      counters: this.counters,
      nextTurn: () => this.router.nextTurn(),
      isClosed,
      install: (topology) => this.install(topology),
    });
    this.refresher = new RefreshScheduler(
      { load: () => reader.load(), isClosed, anyNodeDown: () => this.registry.anyDown() || (this.pubsub?.anyDown() ?? false), reportError: (err) => this.reportError(err) },
      this.options.refreshIntervalMs,
    );
    this.sleeps = new Sleeps(isClosed, this.options.resolved.offlineQueueLength);
    this.ctx = {
      options: this.options,
      counters: this.counters,
      nodes: this.registry,
      router: this.router,
      refresher: this.refresher,
      sleeps: this.sleeps,
      // EventEmitter's emit types its arguments through a conditional TypeScript cannot match to K here.
      emit: (event, ...args) => {
        // Redirections are also told to diagnostics observers (respite:cluster:redirect).
        if (event === "redirect") publish("redirect", () => ({ ...(args[0] as object) }));
        this.emit(event, ...(args as never));
      },
      isClosed,
    };
    this.dispatcher = new Dispatcher(this.ctx);
    if (!this.options.resolved.lazyConnect) this.refresher.inBackground();
  }

  /** "connecting" until the first topology is known, then "ready"; "closing" / "closed" after close(). */
  get status(): ClientStatus {
    if (this.life.kind !== "open") return this.life.kind;
    return this.router.topology === undefined ? (this.refresher.running ? "connecting" : "idle") : "ready";
  }

  /** Resolves once the topology is known and every master's client has connected. */
  async connect(): Promise<void> {
    if (this.life.kind !== "open") throw new ClientClosedError();
    if (this.router.topology === undefined) await this.refresh();
    await Promise.all(this.registry.clients("master").map((c) => c.connect()));
  }

  /**
   * Send any command, routed by the slot of its keys (a command with no key
   * goes to any master). A multi-key command whose keys span slots rejects
   * with CrossSlotError before anything is sent.
   */
  command(args: Command, options?: CommandOptions): Promise<Reply> {
    if (this.life.kind !== "open") return Promise.reject(new ClientClosedError());
    let slot: number | undefined;
    try {
      if (options != null) checkCommandOptions(options);
      const why = refusal(args, "any-node");
      if (why !== undefined) throw new TypeError(why);
      slot = commandSlot(args);
    } catch (err) {
      return Promise.reject(err);
    }
    const cmd = { args, options, slot, started: Date.now() };
    if (this.router.topology === undefined) {
      // The time spent waiting for the first topology counts against the deadline.
      return this.refresh().then(() => this.dispatcher.send(cmd, undefined, false, newJourney()));
    }
    return this.dispatcher.send(cmd, undefined, false, undefined);
  }

  /** The client-side caches of every node client, summed (undefined when the clientCache option is off). */
  clientCacheStats(): ClientCacheStats | undefined {
    if (this.options.resolved.clientCache === undefined) return undefined;
    const sum: ClientCacheStats = { hits: 0, misses: 0, evictions: 0, invalidations: 0, flushes: 0, entries: 0, bytes: 0, maxBytes: 0, tracking: true };
    for (const c of this.registry.clients("all")) {
      const s = c.clientCacheStats();
      if (s === undefined) continue;
      sum.hits += s.hits;
      sum.misses += s.misses;
      sum.evictions += s.evictions;
      sum.invalidations += s.invalidations;
      sum.flushes += s.flushes;
      sum.entries += s.entries;
      sum.bytes += s.bytes;
      sum.maxBytes += s.maxBytes;
      sum.tracking &&= s.tracking;
    }
    return sum;
  }

  /** Counters: redirections, retries, refreshes. */
  stats(): ClusterStats {
    return { ...this.counters, nodes: this.registry.size };
  }

  /** The node clients open now (masters, replicas, or both). Use them for per-node commands (FLUSHALL, INFO); do not close them. */
  nodes(role: "master" | "replica" | "all" = "all"): Client[] {
    return this.registry.clients(role);
  }

  /** "host:port" of the master serving `slot` now (undefined before the first topology or for an uncovered slot). */
  masterOf(slot: number): Address | undefined {
    return this.router.masterOf(slot);
  }

  /**
   * Read the topology again now (shared with any refresh under way). Rejects
   * when no known node nor root node answered.
   */
  refresh(): Promise<void> {
    return this.refresher.refresh();
  }

  /**
   * Many commands, one result per command in the caller's order (its reply,
   * or its error as a value). Split by node: each node's part goes in one
   * round trip; a redirected command is redirected alone. `atomic: true`
   * (MULTI/EXEC) needs every key in one slot (else CrossSlotError, nothing
   * sent); MOVED retries the whole transaction on the new owner (nothing
   * ran), ASK / TRYAGAIN / CLUSTERDOWN retry it after a backoff.
   */
  batch(commands: readonly Command[], options?: BatchOptions): Promise<BatchResult[]> {
    return clusterBatch(this.ctx, this.dispatcher, commands, options);
  }

  /**
   * SCAN every master: for each shard, a SCAN loop on its master (routed by
   * one of its slots, so a failover mid-walk continues on the new master).
   * Keys added or removed meanwhile may or may not be seen, as with SCAN.
   */
  override async *scan(options?: KeyScanOptions): AsyncGenerator<string, void, undefined> {
    if (this.router.topology === undefined) await this.refresh();
    for (const slot of oneSlotPerMaster(this.router.topology as Topology)) {
      const sender = {
        command: (args: Command, o?: CommandOptions): Promise<Reply> => {
          if (this.life.kind !== "open") return Promise.reject(new ClientClosedError());
          return this.dispatcher.send({ args, options: o, slot, started: Date.now() }, undefined, false, undefined);
        },
      };
      yield* scanKeys(sender, options);
    }
  }

  /** MGET across slots: one MGET per slot, in parallel, values in the order of `keys`. */
  override mget(...keys: OneOrMany<RedisKey>[]): Promise<(string | null)[]> {
    return mgetBySlot(flatKeys(keys), (part) => super.mget(part));
  }

  /**
   * MSET across slots: one MSET per slot, in parallel. Each slot's part is
   * atomic; the whole is not (a failure may leave other slots' parts set).
   */
  override mset(entries: Record<string, RedisValue> | Iterable<readonly [RedisKey, RedisValue]>): Promise<"OK"> {
    return msetBySlot(entries, (part) => super.mset(part));
  }

  /** DEL across slots: the sum of one DEL per slot. */
  override del(...keys: OneOrMany<RedisKey>[]): Promise<number> {
    return sumBySlot(flatKeys(keys), (part) => super.del(part));
  }

  /** EXISTS across slots: the sum of one EXISTS per slot (a key named twice counts twice). */
  override exists(...keys: OneOrMany<RedisKey>[]): Promise<number> {
    return sumBySlot(flatKeys(keys), (part) => super.exists(part));
  }

  /** UNLINK across slots: the sum of one UNLINK per slot. */
  override unlink(...keys: OneOrMany<RedisKey>[]): Promise<number> {
    return sumBySlot(flatKeys(keys), (part) => super.unlink(part));
  }

  /**
   * One socket of the master serving `key`'s slot (without a key: any
   * master), for several commands in a row (WATCH/MULTI/EXEC, blocking pops).
   * No redirection handling inside: keep every key of the callback in that slot.
   */
  withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T>;
  withConnection<T>(key: RedisKey, fn: (conn: DedicatedConnection) => Promise<T>): Promise<T>;
  async withConnection<T>(keyOrFn: RedisKey | ((conn: DedicatedConnection) => Promise<T>), maybeFn?: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    const key = typeof keyOrFn === "function" ? undefined : keyOrFn;
    const fn = typeof keyOrFn === "function" ? keyOrFn : maybeFn;
    if (typeof fn !== "function") throw new TypeError("withConnection(fn) or withConnection(key, fn): fn must be a function");
    if (this.life.kind !== "open") throw new ClientClosedError();
    if (this.router.topology === undefined) await this.refresh();
    const entry = this.router.route(key === undefined ? undefined : keySlot(key as Arg), undefined);
    if (entry === undefined) throw new ConnectionError(`No node serves the slot of the key`, "connect-failed", false);
    return entry.client.withConnection(fn);
  }

  // ---- pub/sub: the API is PubSubCommands'; where subscriptions live is pubsub.ts' ----

  protected subscribeTo(kind: Kind, names: string | readonly string[], listener: AnyListener, options: SubscribeOptions | undefined): Promise<void> {
    if (this.life.kind !== "open") return Promise.reject(new ClientClosedError());
    try {
      checkSubscribeOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    this.pubsub ??= new ClusterPubSub(this.ctx, {
      disconnect: (error) => this.emit("subscriber-disconnect", { error }),
      reconnecting: (info) => this.emit("subscriber-reconnecting", info),
      resubscribed: (info) => this.emit("resubscribed", info),
      error: (error) => this.reportError(error),
    });
    return this.pubsub.subscribe(kind, names, listener, options);
  }

  protected unsubscribeFrom(kind: Kind, names: string | readonly string[] | undefined, listener: AnyListener | undefined): Promise<void> {
    return this.pubsub?.unsubscribe(kind, names, listener) ?? Promise.resolve();
  }

  protected subscribed(kind: Kind): string[] {
    return this.pubsub?.subscriptions(kind) ?? [];
  }

  /** Graceful: commands already sent get their replies, then every node client closes. */
  /** Graceful, as Client.close(): `timeoutMs` bounds the wait on every node, then what is left is destroyed. */
  close(options?: CloseOptions): Promise<void> {
    try {
      checkCloseOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.life.kind !== "open") return this.life.done;
    const closing: Lifecycle = { kind: "closing", done: Promise.resolve() };
    this.life = closing;
    this.stopWork();
    closing.done = Promise.allSettled(this.registry.closeAll(options)).then(() => this.finishClose());
    return closing.done;
  }

  /** Now: every pending command rejects with ClientClosedError. */
  destroy(): void {
    if (this.life.kind === "open") this.life = { kind: "closing", done: Promise.resolve() };
    this.stopWork();
    this.registry.destroyAll();
    this.finishClose();
  }

  /** Install a topology: create clients for new nodes, close those of nodes that left. */
  private install(topo: Topology): void {
    if (this.life.kind !== "open") return;
    const previous = this.router.topology;
    this.router.topology = topo;
    const { masters, replicas } = addressesOf(topo);
    const wanted = new Map<Address, NodeRole>();
    for (const m of masters) wanted.set(m, "master");
    if (this.options.readFrom !== "master") for (const r of replicas) wanted.set(r, "replica");
    this.registry.sync(wanted);
    // Client-side caches: a node whose slots moved may hold entries for keys it no longer serves.
    if (previous !== undefined && this.options.resolved.clientCache !== undefined) {
      for (const addr of slotsMoved(previous, topo)) this.registry.peek(addr)?.client.flushClientCache();
    }
    this.counters.refreshes++;
    this.emit("refresh", { masters: [...masters], replicas: [...replicas] });
    this.pubsub?.topologyChanged();
    if (previous === undefined) this.emit("ready");
    // Commands backing off (CLUSTERDOWN, a lost node) may have a new owner now: go at once.
    else if (mastersChanged(previous, topo)) this.sleeps.wakeAll();
  }

  /** Timers off; commands backing off reject now (the lifecycle already says closed). */
  private stopWork(): void {
    this.refresher.stop();
    this.sleeps.wakeAll();
    this.pubsub?.close();
  }

  private finishClose(): void {
    if (this.life.kind !== "closing") return;
    this.life = { kind: "closed", done: this.life.done };
    this.emit("close");
  }

  private reportError(err: unknown): void {
    if (this.listenerCount("error") === 0) return;
    const error = err instanceof RedisError ? err : new RedisError("Cluster error", "ERR_RESPITE_UNKNOWN", false, { cause: err });
    this.emit("error", error);
  }
}

/** A client for a Redis Cluster: `createCluster({ rootNodes: ["redis://127.0.0.1:7000"] })`. */
export function createCluster(options: ClusterOptions): ClusterClient {
  return new ClusterClient(options);
}
