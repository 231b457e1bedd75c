// The cluster client (issue 10): the same command() API, typed helpers,
// batch() and scan() as a single-node Client, over a Redis Cluster. It is a
// router, the way undici's Agent holds Pools: each command goes, by the hash
// slot of its keys, to one node client (a respite Client per node, with its
// own transport, reconnect, queue and deadlines). Nothing below this file
// knows about slots.
//
// What the router adds on top of a node client:
// - the slot table, from CLUSTER SHARDS (Redis 7) or CLUSTER SLOTS, refreshed
//   on MOVED, when a node's connection is lost (and then every 100 ms, backing
//   off, until the lost node is back or has left the topology), and
//   periodically; one refresh at a time, shared by every trigger;
// - redirections: MOVED patches the slot at once and resends to the new
//   owner; ASK sends ASKING and the command back to back to the target;
//   TRYAGAIN and CLUSTERDOWN wait a backoff and resend. All within the
//   command's deadline and at most maxRedirections times. A command answered
//   MOVED/ASK/TRYAGAIN/CLUSTERDOWN did not run, so resending it is safe even
//   for a write;
// - re-routing after a node is lost: commands still queued (never written) at
//   a node that left the topology (a failed master, replaced by its replica)
//   are failed by that node client's close() with maybeExecuted false, and
//   sent again to the slot's new owner. Commands written to a node that died
//   keep the node client's semantics: writes reject with maybeExecuted true,
//   reads are retried.
import { commandFlags, commandName } from "../commands.js";
import { createClient, type Client } from "../client.js";
import { toResult, validateBatch, type BatchOptions, type BatchResult } from "../batch.js";
import { AbortError, ClientClosedError, ConnectionError, RedisError, ReplyError, TimeoutError } from "../errors.js";
import { TypedCommands } from "../helpers/typed-commands.js";
import type { RedisKey, RedisValue } from "../helpers/base.js";
import type { Reply } from "../protocol/decode.js";
import type { Arg, Command } from "../protocol/encode.js";
import type { CommandOptions } from "../request.js";
import { scanKeys, type KeyScanOptions } from "../scan.js";
import type { ClientStatus, DedicatedConnection } from "../transport.js";
import { CrossSlotError, RedirectionLimitError } from "./errors.js";
import { resolveClusterOptions, type ClusterOptions, type ResolvedClusterOptions } from "./options.js";
import { commandSlot, groupBySlot, keySlot, SLOT_COUNT } from "./slots.js";
import { addressesOf, parseRedirect, parseShards, parseSlots, splitAddress, type Address, type Shard, type Topology } from "./topology.js";

/** TRYAGAIN / CLUSTERDOWN / lost node: wait BASE * 2^n ms (capped, jittered 50-100 %) before resending. */
const RETRY_BASE_MS = 25;
const RETRY_MAX_MS = 1000;
/** While a node serving slots is unreachable, refresh this often (doubling on failed refreshes, to 2 s). */
const DOWN_REFRESH_MS = 100;
const DOWN_REFRESH_MAX_MS = 2000;
/** A refresh asks one node at a time, each within this deadline (or connectTimeoutMs when shorter). */
const REFRESH_TIMEOUT_MS = 2000;

/** Background refreshes (MOVED, CLUSTERDOWN, lost nodes) start at most this often; triggers in between share one. */
const MIN_REFRESH_GAP_MS = 100;

const ASKING: Command = ["ASKING"];
/** Connection failures that say the node is gone (not: offline queue disabled, bad credentials). */
const LOST = new Set(["connect-failed", "socket-closed", "reconnect-exhausted"]);
const noop = (): void => undefined;

export interface ClusterEvents {
  /** The first topology is known (commands no longer wait for it). */
  ready: [];
  /** Reported only when someone listens (as on Client): node errors and failed refreshes. */
  error: [error: RedisError];
  close: [];
  /** A refresh installed a topology. */
  refresh: [info: { masters: Address[]; replicas: Address[] }];
  /** A node client was created (the node appeared, or a MOVED named it). */
  "node-added": [info: { address: Address; role: "master" | "replica" }];
  /** A node left the topology: its client is closed. */
  "node-removed": [info: { address: Address }];
  /** A node client lost its connection (it reconnects on its own; a refresh follows). */
  "node-disconnect": [info: { address: Address; error: Error | undefined }];
  /** A command was redirected. */
  redirect: [info: { kind: "moved" | "ask"; slot: number; from: Address; to: Address }];
}

/** Counters since the cluster client was created. */
export interface ClusterStats {
  moved: number;
  ask: number;
  tryAgain: number;
  clusterDown: number;
  /** Commands sent again after their node was lost (never written, or a read). */
  rerouted: number;
  refreshes: number;
  refreshFailures: number;
  /** Node clients open now. */
  nodes: number;
}

interface NodeEntry {
  readonly address: Address;
  readonly host: string;
  readonly client: Client;
  role: "master" | "replica";
  /** Lost its connection and has not been ready since. */
  down: boolean;
}

/** One command's journey across redirections. */
interface Journey {
  redirections: number;
  /** Backoff exponent for TRYAGAIN / CLUSTERDOWN / lost nodes. */
  waits: number;
}

export class ClusterClient extends TypedCommands<ClusterEvents> {
  readonly options: ResolvedClusterOptions;
  private topology: Topology | undefined;
  private readonly nodeMap = new Map<Address, NodeEntry>();
  /** Clients of nodes that left, still closing (close() waits for them). */
  private readonly leaving = new Set<Client>();
  private refreshing: Promise<void> | undefined;
  /** CLUSTER SHARDS is unknown to this server (Redis < 7): use CLUSTER SLOTS. */
  private noShards = false;
  private periodicTimer: NodeJS.Timeout | undefined;
  private downTimer: NodeJS.Timeout | undefined;
  private gapTimer: NodeJS.Timeout | undefined;
  private lastRefreshAt = 0;
  /** Refreshes in a row that failed: background refreshes back off while it grows. */
  private failStreak = 0;
  private readonly sleepers = new Set<() => void>();
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private closeEmitted = false;
  private rr = 0;
  private readonly counters = { moved: 0, ask: 0, tryAgain: 0, clusterDown: 0, rerouted: 0, refreshes: 0, refreshFailures: 0 };
  private readonly refreshTimeoutMs: number;

  constructor(options: ClusterOptions) {
    super();
    this.options = resolveClusterOptions(options);
    const connectTimeout = this.options.resolved.connectTimeoutMs;
    this.refreshTimeoutMs = connectTimeout > 0 ? Math.min(connectTimeout, REFRESH_TIMEOUT_MS) : REFRESH_TIMEOUT_MS;
    if (this.options.refreshIntervalMs > 0) {
      this.periodicTimer = setInterval(() => this.refreshInBackground(), this.options.refreshIntervalMs);
      this.periodicTimer.unref();
    }
    if (!this.options.resolved.lazyConnect) this.refreshInBackground();
  }

  /** "connecting" until the first topology is known, then "ready"; "closing" / "closed" after close(). */
  get status(): ClientStatus {
    if (this.closed) return this.closeEmitted ? "closed" : "closing";
    return this.topology === undefined ? (this.refreshing === undefined ? "idle" : "connecting") : "ready";
  }

  /** Resolves once the topology is known and every master's client has connected. */
  async connect(): Promise<void> {
    if (this.closed) throw new ClientClosedError();
    if (this.topology === undefined) await this.refresh();
    const masters = [...this.nodeMap.values()].filter((e) => e.role === "master");
    await Promise.all(masters.map((e) => e.client.connect()));
  }

  /**
   * Send any command, routed by the slot of its keys (a command with no key
   * goes to any master). A multi-key command whose keys span slots rejects
   * with CrossSlotError before anything is sent.
   */
  command(args: Command, options?: CommandOptions): Promise<Reply> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    let slot: number | undefined;
    try {
      slot = commandSlot(args);
    } catch (err) {
      return Promise.reject(err);
    }
    const started = Date.now();
    if (this.topology === undefined) {
      // The time spent waiting for the first topology counts against the deadline.
      return this.refresh().then(() => this.dispatch(args, options, slot, started, undefined, false, { redirections: 0, waits: 0 }));
    }
    return this.dispatch(args, options, slot, started, undefined, false, undefined);
  }

  /** Counters: redirections, retries, refreshes. */
  stats(): ClusterStats {
    return { ...this.counters, nodes: this.nodeMap.size };
  }

  /** The node clients open now (masters, replicas, or both). Use them for per-node commands (FLUSHALL, INFO); do not close them. */
  nodes(role: "master" | "replica" | "all" = "all"): Client[] {
    return [...this.nodeMap.values()].filter((e) => role === "all" || e.role === role).map((e) => e.client);
  }

  /** "host:port" of the master serving `slot` now (undefined before the first topology or for an uncovered slot). */
  masterOf(slot: number): Address | undefined {
    return this.topology?.slots[slot]?.master;
  }

  /**
   * Read the topology again now (shared with any refresh under way). Rejects
   * when no known node nor root node answered.
   */
  refresh(): Promise<void> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    this.refreshing ??= this.loadTopology().then(
      () => {
        this.refreshing = undefined;
        this.lastRefreshAt = Date.now();
        this.failStreak = 0;
      },
      (err: unknown) => {
        this.refreshing = undefined;
        this.lastRefreshAt = Date.now();
        this.failStreak++;
        throw err;
      },
    );
    return this.refreshing;
  }

  // ---- routing -------------------------------------------------------------------

  private dispatch(
    args: Command,
    options: CommandOptions | undefined,
    slot: number | undefined,
    started: number,
    target: Address | undefined,
    asking: boolean,
    journey: Journey | undefined,
  ): Promise<Reply> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    const entry = target !== undefined ? this.nodeAt(target, "master") : this.route(slot, args);
    if (entry === undefined) {
      // No node serves the slot in the topology we have: as CLUSTERDOWN.
      const cause = new ReplyError(`CLUSTERDOWN Hash slot ${String(slot)} not served`, commandName(args));
      return this.retryLater(args, options, slot, started, journey ?? { redirections: 0, waits: 0 }, cause, true);
    }
    let opts = options;
    if (journey !== undefined) {
      try {
        opts = this.remainingOptions(args, options, started);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const sent = asking ? this.sendAsking(entry, args, opts) : entry.client.command(args, opts);
    return sent.catch((err: unknown) => this.onFailure(err, entry, args, options, slot, started, journey ?? { redirections: 0, waits: 0 }, journey !== undefined));
  }

  /** The node client for a slot (keyless: any master, round-robin), honouring readFrom for reads. */
  private route(slot: number | undefined, args: Command | undefined): NodeEntry | undefined {
    const topo = this.topology;
    if (topo === undefined) return undefined;
    let shard: Shard | undefined;
    if (slot === undefined) {
      if (topo.shards.length === 0) return undefined;
      shard = topo.shards[this.rr++ % topo.shards.length];
    } else {
      shard = topo.slots[slot];
    }
    if (shard === undefined) return undefined;
    if (this.options.readFrom !== "master" && args !== undefined && shard.replicas.length > 0 && commandFlags(args).readOnly) {
      const replica = this.replicaOf(shard);
      if (replica !== undefined) return replica;
    }
    return this.nodeAt(shard.master, "master");
  }

  private replicaOf(shard: Shard): NodeEntry | undefined {
    const n = shard.replicas.length;
    const start = this.rr++;
    for (let i = 0; i < n; i++) {
      const entry = this.nodeAt(shard.replicas[(start + i) % n] as Address, "replica");
      // "replica": any replica (its client queues while it reconnects);
      // "preferReplica": only one that is connected now, else the master.
      if (this.options.readFrom === "replica" || entry.client.status === "ready") return entry;
    }
    return undefined;
  }

  /** The client of a node, created on first need (or again, if it closed itself: reconnect attempts exhausted). */
  private nodeAt(address: Address, role: "master" | "replica"): NodeEntry {
    const entry = this.nodeMap.get(address);
    if (entry !== undefined && entry.client.status !== "closed") return entry;
    if (entry !== undefined) this.nodeMap.delete(address);
    return this.createNode(address, role);
  }

  /** ASKING and the command, written back to back on one connection of the target. */
  private sendAsking(entry: NodeEntry, args: Command, options: CommandOptions | undefined): Promise<Reply> {
    if (commandFlags(args).blocking) {
      // A blocking command leaves the shared pipe for a connection of its
      // own; ASKING must precede it there.
      return entry.client.withConnection((conn: DedicatedConnection) => {
        const asking = conn.command(ASKING);
        const reply = conn.command(args, options);
        asking.catch(noop);
        return reply;
      });
    }
    // Client.batch (not atomic) queues both in one synchronous step: on the
    // pipelined transport they leave in the same write with nothing between
    // them; on the pooled one they share one lent socket.
    return entry.client
      .batch([ASKING, args], { returnBuffers: options?.returnBuffers, timeoutMs: options?.timeoutMs, signal: options?.signal })
      .then((results) => {
        const r = results[1] as BatchResult;
        if (r instanceof RedisError) throw r;
        return r;
      });
  }

  private totalTimeoutMs(options: CommandOptions | undefined): number {
    const t = options?.timeoutMs ?? this.options.resolved.commandTimeoutMs;
    return t > 0 && Number.isFinite(t) ? t : 0;
  }

  /** A resend gets what is left of the command's deadline. */
  private remainingOptions(args: Command, options: CommandOptions | undefined, started: number): CommandOptions | undefined {
    const total = this.totalTimeoutMs(options);
    if (total === 0) return options;
    // A blocking command's own timeout is added by the node client when none is given.
    if (options?.timeoutMs === undefined && commandFlags(args).blocking) return options;
    const left = total - (Date.now() - started);
    if (left <= 0) throw new TimeoutError(commandName(args), total, false);
    return { ...options, timeoutMs: left };
  }

  private onFailure(
    err: unknown,
    entry: NodeEntry,
    args: Command,
    options: CommandOptions | undefined,
    slot: number | undefined,
    started: number,
    journey: Journey,
    resent: boolean,
  ): Promise<Reply> {
    if (this.closed || !(err instanceof RedisError)) return Promise.reject(err);
    if (err instanceof ReplyError) {
      switch (err.code) {
        case "MOVED":
        case "ASK": {
          const r = parseRedirect(err.message, entry.host);
          if (r === undefined) return Promise.reject(err);
          if (journey.redirections >= this.options.maxRedirections) {
            return Promise.reject(new RedirectionLimitError(commandName(args), journey.redirections, { cause: err }));
          }
          journey.redirections++;
          const moved = err.code === "MOVED";
          if (moved) {
            this.counters.moved++;
            this.patchSlot(r.slot, r.to);
            this.refreshInBackground();
          } else {
            this.counters.ask++;
          }
          this.emit("redirect", { kind: moved ? "moved" : "ask", slot: r.slot, from: entry.address, to: r.to });
          return this.dispatch(args, options, slot, started, r.to, !moved, journey);
        }
        case "TRYAGAIN":
          this.counters.tryAgain++;
          return this.retryLater(args, options, slot, started, journey, err, false);
        case "CLUSTERDOWN":
          this.counters.clusterDown++;
          return this.retryLater(args, options, slot, started, journey, err, true);
        default:
          return Promise.reject(err);
      }
    }
    if (!err.maybeExecuted) {
      if (err instanceof ClientClosedError) {
        // Its node left the topology (a refresh closed the client) before
        // the command was written: send it to the slot's new owner now.
        this.counters.rerouted++;
        if (journey.redirections >= this.options.maxRedirections) {
          return Promise.reject(new RedirectionLimitError(commandName(args), journey.redirections, { cause: err }));
        }
        journey.redirections++;
        return this.dispatch(args, options, slot, started, undefined, false, journey);
      }
      if (err instanceof ConnectionError && LOST.has(err.reason)) {
        // The node could not be reached (pooled: the next dial failed). A
        // refresh may name another owner; wait a little and route again.
        this.counters.rerouted++;
        return this.retryLater(args, options, slot, started, journey, err, true);
      }
    } else if ((err instanceof ClientClosedError || (err instanceof ConnectionError && LOST.has(err.reason))) && commandFlags(args).readOnly) {
      // A read written to a node that died (the node client retried it once
      // already): running it again is harmless, so it goes to the slot's
      // owner once a refresh has found it. Writes keep maybeExecuted.
      this.counters.rerouted++;
      return this.retryLater(args, options, slot, started, journey, err, true);
    }
    if (resent && err instanceof TimeoutError) {
      // A resend ran on what was left of the deadline: report the whole of it.
      return Promise.reject(new TimeoutError(err.command, this.totalTimeoutMs(options), err.maybeExecuted));
    }
    return Promise.reject(err);
  }

  /** Wait a backoff (within the deadline), then route the command again. */
  private retryLater(
    args: Command,
    options: CommandOptions | undefined,
    slot: number | undefined,
    started: number,
    journey: Journey,
    cause: RedisError,
    refresh: boolean,
  ): Promise<Reply> {
    const name = commandName(args);
    if (journey.redirections >= this.options.maxRedirections) {
      return Promise.reject(new RedirectionLimitError(name, journey.redirections, { cause }));
    }
    journey.redirections++;
    const cap = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** journey.waits++);
    const delayMs = Math.round(cap / 2 + (Math.random() * cap) / 2);
    const total = this.totalTimeoutMs(options);
    if (total > 0 && Date.now() - started + delayMs >= total) return Promise.reject(new TimeoutError(name, total, false));
    if (refresh) this.refreshInBackground();
    return this.sleep(delayMs, options?.signal, name).then(() => this.dispatch(args, options, slot, started, undefined, false, journey));
  }

  /** A timer that close()/destroy() cut short (the command then rejects) and the caller's signal aborts. */
  private sleep(ms: number, signal: AbortSignal | undefined, name: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(new AbortError(name, false, { cause: signal.reason }));
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        signal?.removeEventListener("abort", onAbort);
      };
      const wake = (): void => {
        done();
        if (this.closed) reject(new ClientClosedError());
        else resolve();
      };
      const onAbort = (): void => {
        done();
        reject(new AbortError(name, false, { cause: signal?.reason }));
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** MOVED: this slot is served by `to` from now on (until the next refresh says otherwise). */
  private patchSlot(slot: number, to: Address): void {
    const topo = this.topology;
    if (topo === undefined || slot < 0 || slot >= SLOT_COUNT) return;
    let shard = topo.shards.find((s) => s.master === to);
    if (shard === undefined) {
      shard = { master: to, replicas: [] };
      topo.shards.push(shard);
    }
    topo.slots[slot] = shard;
  }

  // ---- topology --------------------------------------------------------------------

  /** MIN_REFRESH_GAP_MS, doubling with each refresh in a row that failed (every node down), to DOWN_REFRESH_MAX_MS. */
  private refreshGapMs(): number {
    return Math.min(DOWN_REFRESH_MAX_MS, MIN_REFRESH_GAP_MS * 2 ** this.failStreak);
  }

  /** A refresh soon: now, or (rate limited) a gap after the last one; joins one under way. */
  private refreshInBackground(): void {
    if (this.closed || this.refreshing !== undefined || this.gapTimer !== undefined) return;
    const wait = this.lastRefreshAt + this.refreshGapMs() - Date.now();
    if (wait > 0) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = undefined;
        this.refreshInBackground();
      }, wait);
      this.gapTimer.unref();
      return;
    }
    this.refresh().catch((err: unknown) => this.reportError(err));
  }

  private async loadTopology(): Promise<void> {
    let last: unknown;
    const tried = new Set<Address>();
    // Ask the nodes we are connected to first, masters first, each time starting elsewhere.
    const ready = [...this.nodeMap.values()].filter((e) => e.client.status === "ready");
    ready.sort((a, b) => (a.role === b.role ? 0 : a.role === "master" ? -1 : 1));
    const offset = ready.length > 0 ? this.rr++ % ready.length : 0;
    for (let i = 0; i < ready.length; i++) {
      const e = ready[(offset + i) % ready.length] as NodeEntry;
      tried.add(e.address);
      try {
        this.apply(await this.fetchTopology((c) => e.client.command(c, { timeoutMs: this.refreshTimeoutMs }), e.host));
        return;
      } catch (err) {
        if (this.closed) throw new ClientClosedError();
        last = err;
      }
    }
    // Then every other known node and the root nodes, each on a short-lived connection.
    const others: { host: string; port: number }[] = [];
    for (const addr of this.nodeMap.keys()) if (!tried.has(addr)) others.push(splitAddress(addr));
    for (const r of this.options.rootNodes) {
      const addr = `${r.host}:${r.port}`;
      if (!tried.has(addr) && !this.nodeMap.has(addr)) others.push(r);
    }
    for (const { host, port } of others) {
      if (this.closed) throw new ClientClosedError();
      const probe = createClient({
        ...this.options.node,
        host,
        port,
        transport: "pipelined",
        reconnect: false,
        lazyConnect: false,
        connectTimeoutMs: this.refreshTimeoutMs,
        offlineQueue: { maxLength: 4 },
      });
      try {
        this.apply(await this.fetchTopology((c) => probe.command(c, { timeoutMs: this.refreshTimeoutMs }), host));
        return;
      } catch (err) {
        last = err;
      } finally {
        probe.destroy();
      }
    }
    this.counters.refreshFailures++;
    if (this.closed) throw new ClientClosedError();
    throw new ConnectionError("Could not read the cluster topology from any known node", "connect-failed", false, { cause: last });
  }

  private async fetchTopology(exec: (c: Command) => Promise<Reply>, host: string): Promise<Topology> {
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

  /** Install a topology: create clients for new nodes, close those of nodes that left. */
  private apply(topo: Topology): void {
    if (this.closed) return;
    const previous = this.topology;
    this.topology = topo;
    const { masters, replicas } = addressesOf(topo);
    const wanted = new Map<Address, "master" | "replica">();
    for (const m of masters) wanted.set(m, "master");
    if (this.options.readFrom !== "master") for (const r of replicas) wanted.set(r, "replica");
    for (const [addr, role] of wanted) {
      const e = this.nodeMap.get(addr);
      if (e === undefined || e.client.status === "closed") {
        if (e !== undefined) this.nodeMap.delete(addr);
        this.createNode(addr, role);
      } else {
        e.role = role;
      }
    }
    // After the new table is in place: commands these clients still hold
    // unsent fail with ClientClosedError and are routed by the new table.
    for (const e of [...this.nodeMap.values()]) if (!wanted.has(e.address)) this.removeNode(e);
    this.counters.refreshes++;
    this.emit("refresh", { masters: [...masters], replicas: [...replicas] });
    if (previous === undefined) this.emit("ready");
    else if (mastersChanged(previous, topo)) {
      // Commands backing off (CLUSTERDOWN, a lost node) may have a new owner now: go at once.
      for (const wake of [...this.sleepers]) wake();
    }
  }

  private createNode(address: Address, role: "master" | "replica"): NodeEntry {
    const { host, port } = splitAddress(address);
    const client = createClient({ ...this.options.node, host, port, lazyConnect: true });
    if (this.options.readFrom !== "master") {
      // Every connection of this node (re)connects with READONLY, so it serves
      // reads while a replica (harmless on a master: a failover may swap them).
      client.options.verifyConnection = (exec) => exec(["READONLY"]).then(() => undefined);
    }
    const entry: NodeEntry = { address, host, client, role, down: false };
    client.on("ready", () => {
      entry.down = false;
    });
    client.on("disconnect", (info) => {
      if (this.nodeMap.get(address) !== entry) return;
      entry.down = true;
      this.emit("node-disconnect", { address, error: info.error });
      this.onNodeLost();
    });
    client.on("reconnecting", () => {
      if (this.nodeMap.get(address) !== entry) return;
      entry.down = true;
      this.onNodeLost();
    });
    client.on("error", (error) => this.reportError(error));
    this.nodeMap.set(address, entry);
    this.emit("node-added", { address, role });
    if (!this.options.resolved.lazyConnect) client.connect().catch(noop);
    return entry;
  }

  private removeNode(entry: NodeEntry): void {
    this.nodeMap.delete(entry.address);
    const client = entry.client;
    this.leaving.add(client);
    void client
      .close()
      .catch(noop)
      .finally(() => this.leaving.delete(client));
    this.emit("node-removed", { address: entry.address });
  }

  /** A node lost its connection: refresh now, and keep refreshing while a serving node stays down. */
  private onNodeLost(): void {
    if (this.closed) return;
    this.refreshInBackground();
    this.scheduleDownCheck();
  }

  private scheduleDownCheck(): void {
    if (this.downTimer !== undefined || this.closed) return;
    const delayMs = Math.min(DOWN_REFRESH_MAX_MS, DOWN_REFRESH_MS * 2 ** this.failStreak);
    this.downTimer = setTimeout(() => {
      this.downTimer = undefined;
      if (!this.servingNodeDown()) return;
      this.refresh().then(
        () => this.scheduleDownCheck(),
        (err: unknown) => {
          this.reportError(err);
          this.scheduleDownCheck();
        },
      );
    }, delayMs);
    this.downTimer.unref();
  }

  /** Is a node we route to still without a connection? */
  private servingNodeDown(): boolean {
    let down = false;
    for (const e of this.nodeMap.values()) {
      if (!e.down) continue;
      if (e.client.status === "ready") e.down = false;
      else down = true;
    }
    return down;
  }

  private reportError(err: unknown): void {
    if (this.listenerCount("error") === 0) return;
    const error = err instanceof RedisError ? err : new RedisError("Cluster error", "EUNKNOWN", false, { cause: err });
    this.emit("error", error);
  }

  // ---- work across slots -------------------------------------------------------------

  /**
   * Many commands, one result per command in the caller's order (its reply,
   * or its error as a value). Split by node: each node's part goes in one
   * round trip; a redirected command is redirected alone. `atomic: true`
   * (MULTI/EXEC) needs every key in one slot (else CrossSlotError, nothing
   * sent); MOVED retries the whole transaction on the new owner (nothing
   * ran), ASK / TRYAGAIN / CLUSTERDOWN retry it after a backoff.
   */
  batch(commands: readonly Command[], options?: BatchOptions): Promise<BatchResult[]> {
    try {
      validateBatch(commands);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closed) return Promise.reject(new ClientClosedError());
    const started = Date.now();
    if (options?.atomic === true) return this.atomicBatch(commands, options, started);
    if (commands.length === 0) return Promise.resolve([]);
    if (this.topology === undefined) {
      return this.refresh().then(
        () => this.splitBatch(commands, options, started),
        (err: unknown) => commands.map(() => toResult({ status: "rejected", reason: err })),
      );
    }
    return this.splitBatch(commands, options, started);
  }

  private async splitBatch(commands: readonly Command[], options: BatchOptions | undefined, started: number): Promise<BatchResult[]> {
    const perCommand: CommandOptions = { returnBuffers: options?.returnBuffers, timeoutMs: options?.timeoutMs, signal: options?.signal };
    const outcomes = new Array<Promise<Reply>>(commands.length);
    const slots = new Array<number | undefined>(commands.length);
    const groups = new Map<NodeEntry, number[]>();
    for (let i = 0; i < commands.length; i++) {
      const c = commands[i] as Command;
      try {
        slots[i] = commandSlot(c);
      } catch (err) {
        outcomes[i] = settledLater(Promise.reject(err));
        continue;
      }
      const entry = this.route(slots[i], c);
      if (entry === undefined) {
        outcomes[i] = settledLater(this.dispatch(c, perCommand, slots[i], started, undefined, false, undefined));
        continue;
      }
      const g = groups.get(entry);
      if (g === undefined) groups.set(entry, [i]);
      else g.push(i);
    }
    const parts: Promise<void>[] = [];
    for (const [entry, idx] of groups) {
      const part = entry.client.batch(
        idx.map((i) => commands[i] as Command),
        options?.returnBuffers === undefined && options?.timeoutMs === undefined && options?.signal === undefined ? undefined : perCommand,
      );
      parts.push(
        part.then((results) => {
          idx.forEach((i, j) => {
            const r = results[j] as BatchResult;
            const c = commands[i] as Command;
            // An error goes through the same redirection handling as command()'s.
            outcomes[i] = r instanceof RedisError ? settledLater(this.onFailure(r, entry, c, perCommand, slots[i], started, { redirections: 0, waits: 0 }, false)) : Promise.resolve(r);
          });
        }),
      );
    }
    await Promise.all(parts);
    return (await Promise.allSettled(outcomes)).map(toResult);
  }

  private async atomicBatch(commands: readonly Command[], options: BatchOptions, started: number): Promise<BatchResult[]> {
    let slot: number | undefined;
    const all: number[] = [];
    for (const c of commands) {
      const s = commandSlot(c); // a command spanning slots throws CrossSlotError
      if (s !== undefined && !all.includes(s)) all.push(s);
    }
    if (all.length > 1) throw new CrossSlotError("EXEC", all);
    slot = all[0];
    const journey: Journey = { redirections: 0, waits: 0 };
    let target: Address | undefined;
    for (;;) {
      if (this.closed) throw new ClientClosedError();
      if (this.topology === undefined) await this.refresh();
      const entry = target !== undefined ? this.nodeAt(target, "master") : this.route(slot, undefined);
      target = undefined;
      let retry: { error: RedisError; wait: boolean; moved?: { slot: number; to: Address } } | undefined;
      if (entry === undefined) {
        retry = { error: new ReplyError(`CLUSTERDOWN Hash slot ${String(slot)} not served`, "EXEC"), wait: true };
      } else {
        const total = this.totalTimeoutMs(options);
        const left = total > 0 ? total - (Date.now() - started) : 0;
        if (total > 0 && left <= 0) throw new TimeoutError("EXEC", total, false);
        let results: BatchResult[];
        try {
          results = await entry.client.batch(commands, total > 0 ? { ...options, timeoutMs: left } : options);
        } catch (err) {
          if (this.closed || !(err instanceof RedisError) || err.maybeExecuted) throw err;
          if (!(err instanceof ClientClosedError || err instanceof ConnectionError) || (err instanceof ConnectionError && err.reason === "offline")) throw err;
          this.counters.rerouted++;
          retry = { error: err, wait: !(err instanceof ClientClosedError) };
          results = [];
        }
        if (retry === undefined) {
          // Nothing ran when every result is an error and one is a redirection.
          const redirect = results.find((r): r is ReplyError => r instanceof ReplyError && ["MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"].includes(r.code));
          if (redirect === undefined || !results.every((r) => r instanceof ReplyError)) return results;
          if (redirect.code === "MOVED") {
            const r = parseRedirect(redirect.message, entry.host);
            if (r === undefined) return results;
            retry = { error: redirect, wait: false, moved: r };
          } else {
            retry = { error: redirect, wait: true };
          }
          if (redirect.code === "MOVED") this.counters.moved++;
          else if (redirect.code === "ASK") this.counters.ask++;
          else if (redirect.code === "TRYAGAIN") this.counters.tryAgain++;
          else this.counters.clusterDown++;
        }
      }
      if (journey.redirections >= this.options.maxRedirections) {
        throw new RedirectionLimitError("EXEC", journey.redirections, { cause: retry.error });
      }
      journey.redirections++;
      if (retry.moved !== undefined) {
        this.patchSlot(retry.moved.slot, retry.moved.to);
        this.refreshInBackground();
        this.emit("redirect", { kind: "moved", slot: retry.moved.slot, from: entry?.address ?? "", to: retry.moved.to });
        target = retry.moved.to;
        continue;
      }
      if (retry.wait) {
        const cap = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** journey.waits++);
        const delayMs = Math.round(cap / 2 + (Math.random() * cap) / 2);
        const total = this.totalTimeoutMs(options);
        if (total > 0 && Date.now() - started + delayMs >= total) throw new TimeoutError("EXEC", total, false);
        this.refreshInBackground();
        await this.sleep(delayMs, options.signal, "EXEC");
      }
    }
  }

  /**
   * SCAN every master: for each shard, a SCAN loop on its master (routed by
   * one of its slots, so a failover mid-walk continues on the new master).
   * Keys added or removed meanwhile may or may not be seen, as with SCAN.
   */
  override async *scan(options?: KeyScanOptions): AsyncGenerator<string, void, undefined> {
    if (this.topology === undefined) await this.refresh();
    const topo = this.topology as Topology;
    const firstSlots: number[] = [];
    const seen = new Set<Address>();
    for (let s = 0; s < SLOT_COUNT; s++) {
      const shard = topo.slots[s];
      if (shard !== undefined && !seen.has(shard.master)) {
        seen.add(shard.master);
        firstSlots.push(s);
      }
    }
    for (const slot of firstSlots) {
      const sender = {
        command: (args: Command, o?: CommandOptions): Promise<Reply> => {
          if (this.closed) return Promise.reject(new ClientClosedError());
          return this.dispatch(args, o, slot, Date.now(), undefined, false, undefined);
        },
      };
      yield* scanKeys(sender, options);
    }
  }

  /** MGET across slots: one MGET per slot, in parallel, values in the order of `keys`. */
  override mget(...keys: RedisKey[]): Promise<(string | null)[]> {
    const groups = groupBySlot(keys);
    if (groups.size <= 1) return super.mget(...keys);
    const parts = [...groups.values()];
    return Promise.all(parts.map((idx) => super.mget(...idx.map((i) => keys[i] as RedisKey)))).then((replies) => {
      const out = new Array<string | null>(keys.length).fill(null);
      replies.forEach((values, p) => (parts[p] as number[]).forEach((i, j) => (out[i] = values[j] ?? null)));
      return out;
    });
  }

  /**
   * MSET across slots: one MSET per slot, in parallel. Each slot's part is
   * atomic; the whole is not (a failure may leave other slots' parts set).
   */
  override mset(entries: Record<string, RedisValue> | Iterable<readonly [RedisKey, RedisValue]>): Promise<"OK"> {
    const pairs: (readonly [RedisKey, RedisValue])[] =
      Symbol.iterator in entries ? [...(entries as Iterable<readonly [RedisKey, RedisValue]>)] : Object.entries(entries as Record<string, RedisValue>);
    const groups = groupBySlot(pairs.map((p) => p[0]));
    if (groups.size <= 1) return super.mset(pairs);
    return Promise.all([...groups.values()].map((idx) => super.mset(idx.map((i) => pairs[i] as readonly [RedisKey, RedisValue])))).then(() => "OK" as const);
  }

  /** DEL across slots: the sum of one DEL per slot. */
  override del(...keys: RedisKey[]): Promise<number> {
    return this.sumBySlot(keys, (part) => super.del(...part));
  }

  /** EXISTS across slots: the sum of one EXISTS per slot (a key named twice counts twice). */
  override exists(...keys: RedisKey[]): Promise<number> {
    return this.sumBySlot(keys, (part) => super.exists(...part));
  }

  /** UNLINK across slots: the sum of one UNLINK per slot. */
  override unlink(...keys: RedisKey[]): Promise<number> {
    return this.sumBySlot(keys, (part) => super.unlink(...part));
  }

  private sumBySlot(keys: RedisKey[], run: (part: RedisKey[]) => Promise<number>): Promise<number> {
    const groups = groupBySlot(keys);
    if (groups.size <= 1) return run(keys);
    return Promise.all([...groups.values()].map((idx) => run(idx.map((i) => keys[i] as RedisKey)))).then((counts) => counts.reduce((a, b) => a + b, 0));
  }

  /**
   * One socket of the master serving `key`'s slot, for several commands in a
   * row (WATCH/MULTI/EXEC, blocking pops). No redirection handling inside:
   * keep every key of the callback in that slot.
   */
  async withConnection<T>(key: RedisKey, fn: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    if (this.closed) throw new ClientClosedError();
    if (this.topology === undefined) await this.refresh();
    const entry = this.route(keySlot(key as Arg), undefined);
    if (entry === undefined) throw new ConnectionError(`No node serves the slot of the key`, "connect-failed", false);
    return entry.client.withConnection(fn);
  }

  // ---- lifecycle ---------------------------------------------------------------------

  /** Graceful: commands already sent get their replies, then every node client closes. */
  close(): Promise<void> {
    if (this.closePromise !== undefined) return this.closePromise;
    this.shutDown();
    const closing = [...this.nodeMap.values()].map((e) => e.client.close());
    for (const c of this.leaving) closing.push(c.close());
    this.closePromise = Promise.allSettled(closing).then(() => this.emitClose());
    return this.closePromise;
  }

  /** Now: every pending command rejects with ClientClosedError. */
  destroy(): void {
    this.shutDown();
    for (const e of this.nodeMap.values()) e.client.destroy();
    for (const c of this.leaving) c.destroy();
    this.closePromise ??= Promise.resolve();
    this.emitClose();
  }

  private shutDown(): void {
    this.closed = true;
    if (this.periodicTimer !== undefined) clearInterval(this.periodicTimer);
    if (this.downTimer !== undefined) clearTimeout(this.downTimer);
    if (this.gapTimer !== undefined) clearTimeout(this.gapTimer);
    this.periodicTimer = undefined;
    this.downTimer = undefined;
    this.gapTimer = undefined;
    for (const wake of [...this.sleepers]) wake();
  }

  private emitClose(): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit("close");
  }
}

/** Does any slot have another master (or none) in `next`? */
function mastersChanged(prev: Topology, next: Topology): boolean {
  for (let s = 0; s < SLOT_COUNT; s++) if (prev.slots[s]?.master !== next.slots[s]?.master) return true;
  return false;
}

/** A promise whose rejection is collected later (Promise.allSettled): never reported as unhandled meanwhile. */
function settledLater<T>(p: Promise<T>): Promise<T> {
  p.catch(noop);
  return p;
}

/** A client for a Redis Cluster: `createCluster({ rootNodes: ["redis://127.0.0.1:7000"] })`. */
export function createCluster(options: ClusterOptions): ClusterClient {
  return new ClusterClient(options);
}
