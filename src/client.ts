// The Client: one command() API over either transport, with events and a
// lifecycle. Typed helpers are thin wrappers over command() (src/helpers);
// batches and pub/sub need more than command() and live here.
import { checkBatchOptions, checkSubscribeOptions, timeoutOption } from "./option-keys.js";
import { atomicResults, EXEC, MULTI, toResult, validateBatch, type BatchOptions, type BatchResult } from "./batch.js";
import { needsOwnConnection, refusal, type Placement } from "./commands.js";
import { ClientClosedError, ConnectionError, type RedisError } from "./errors.js";
import { resolveOptions, type ClientOptions, type ResolvedOptions } from "./options.js";
import type { Reply } from "./protocol/decode.js";
import type { Command } from "./protocol/encode.js";
import { PipelinedTransport } from "./pipelined/pipelined-transport.js";
import { PooledTransport } from "./blocking/pooled-transport.js";
import type { AnyListener, Kind } from "./pubsub/listeners.js";
import { PubSubCommands, type PubSubEvents } from "./pubsub/pubsub-commands.js";
import { Subscriber, type SubscribeOptions } from "./pubsub/subscriber.js";
import { Request, type CommandOptions } from "./request.js";
import { RequestGroup } from "./request-group.js";
import { SentinelTransport } from "./sentinel/sentinel-transport.js";
import { createConnector, type Connector } from "./connection/connector.js";
import type { ConnectionRoute } from "./connection/handshake.js";
import type { RedisKey } from "./helpers/base.js";
import type { RespiteClient } from "./respite-client.js";
import { batchChannel, commandChannel, identity, observing, publish, type ClientIdentity } from "./observability/channels.js";
import { traceBatch, traceRequest } from "./observability/trace.js";
import type { ClientStatus, DedicatedConnection, DisconnectReason, PoolStats, Transport, TransportEvents } from "./transport.js";
import { CacheController } from "./cache/tracking.js";
import type { ClientCacheStats } from "./cache/client-cache.js";

export interface CloseOptions {
  /** Bound on the graceful wait, in ms; what is left then is destroyed. 0 (default) = wait for everything accepted. */
  timeoutMs?: number;
}

export interface ClientEvents extends PubSubEvents {
  ready: [];
  /** protocol 3 was asked for and the server does not know HELLO (Redis < 6): RESP2 from now on. Once. */
  "protocol-fallback": [info: { protocol: 2 }];
  disconnect: [info: { reason: DisconnectReason; error: Error | undefined }];
  reconnecting: [info: { attempt: number; delayMs: number }];
  error: [error: RedisError];
  close: [];
}

export class Client extends PubSubCommands<ClientEvents> implements RespiteClient {
  readonly options: ResolvedOptions;
  private readonly transport: Transport;
  /** Where command() runs a command: the shared pipe, or any pooled socket (the semantics table's rules differ). */
  private readonly placement: Placement;
  private subscriber: Subscriber | undefined;
  private readonly connector: Connector;
  /** Unsubscribes from the credentials provider's pushes (at close or destroy). */
  private stopCredentials: (() => void) | undefined;
  /** Who this client is in every diagnostics payload. */
  private readonly identity: ClientIdentity;
  private readonly reportError: (error: RedisError) => void;
  private closedByUser = false;
  /** The client-side cache (clientCache option), if on. */
  private readonly cache: CacheController | undefined;

  /**
   * `route`: how a router above the client (a cluster) reaches this node: an
   * address asked on every dial, a check after each handshake (READONLY).
   */
  constructor(options: string | ClientOptions = {}, route?: ConnectionRoute) {
    super();
    this.options = resolveOptions(options);
    const id = identity(this.options, this.options.protocol);
    this.identity = id;
    const events: TransportEvents = {
      ready: () => {
        this.cache?.transportReady();
        publish("ready", () => ({ ...id }));
        this.emit("ready");
      },
      disconnect: (info) => {
        this.cache?.transportDown();
        publish("disconnect", () => ({ ...id, reason: info.reason, error: info.error }));
        this.emit("disconnect", info);
      },
      reconnecting: (info) => {
        publish("reconnecting", () => ({ ...id, ...info }));
        this.emit("reconnecting", info);
      },
      // An 'error' event with no listener would crash the process; a client
      // that must never take a service down only reports to those who listen.
      error: (error) => {
        publish("error", () => ({ ...id, error }));
        if (this.listenerCount("error") > 0) this.emit("error", error);
      },
      close: () => this.emit("close"),
      observed: observing,
      poolWait: (info) => publish("poolWait", () => ({ ...id, ...info })),
      offlineQueue: (info) => publish("offlineQueue", () => ({ ...id, ...info })),
    };
    this.reportError = events.error;
    // Behind Sentinel every connection dials through the sentinels' route.
    const sentinel =
      this.options.sentinel !== undefined
        ? new SentinelTransport(this.options, events, () => {
            this.subscriber?.invalidate();
            this.cache?.serverChanged();
          })
        : undefined;
    const base = sentinel?.route ?? route;
    const connector = createConnector(this.options, base, id, () => this.emit("protocol-fallback", { protocol: 2 }));
    this.connector = connector;
    // With the cache, data connections track in their handshake (the dedicated ones for blocking commands need not).
    const cacheOptions = this.options.clientCache;
    this.cache = cacheOptions === undefined ? undefined : new CacheController(this.options, cacheOptions, base, (r) => createConnector(this.options, r, id), events.error);
    const data = this.cache?.dataConnector ?? connector;
    if (this.options.transport === "pooled") {
      this.transport = new PooledTransport(this.options, data, events);
      this.placement = "any-socket";
    } else {
      this.transport = new PipelinedTransport(this.options, data, events, () => new PooledTransport(this.options, connector, silentEvents(), true));
      this.placement = "shared";
    }
    this.cache?.attach(this.transport);
    if (sentinel !== undefined) this.transport = sentinel.wrap(this.transport);
    // Pushed rotations: every connection takes the new credentials on (the subscriber by resubscribing on a fresh dial).
    const creds = this.options.credentials;
    if (creds !== undefined && typeof creds !== "function" && creds.subscribe !== undefined) {
      this.stopCredentials = creds.subscribe((next) => {
        this.cache?.credentialsChanged();
        this.transport.reauthenticate?.(next);
        this.subscriber?.invalidate();
      });
    }
    if (!this.options.lazyConnect) {
      // Connection failures are reported through events and command results.
      this.transport.connect().catch(() => undefined);
    }
  }

  /** "idle" (lazy, not dialed) | "connecting" | "ready" | "reconnecting" | "closing" | "closed". */
  get status(): ClientStatus {
    return this.transport.status;
  }

  /**
   * Resolves once a connection is ready (optional: commands queue until
   * then). `timeoutMs` bounds the wait: past it, a ConnectionError
   * ("connect-failed") rejects this call, while the client goes on
   * reconnecting in the background (close() it if you give up on it).
   */
  connect(options?: { timeoutMs?: number }): Promise<void> {
    let timeoutMs: number;
    try {
      timeoutMs = timeoutOption("connect", options);
    } catch (err) {
      return Promise.reject(err);
    }
    const ready = this.transport.connect();
    if (timeoutMs === 0) return ready;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectionError(`Not connected within ${timeoutMs} ms; still trying in the background`, "connect-failed", false)), timeoutMs);
    });
    ready.catch(() => undefined);
    return Promise.race([ready, late]).finally(() => clearTimeout(timer));
  }

  /**
   * Send any command: `await client.command(["SET", "k", "v"])`.
   *
   * Blocking commands (BLPOP, BRPOP, BLMOVE, BZPOPMIN, XREAD BLOCK, ...) on
   * the pipelined client run on a dedicated connection of their own, so they
   * never stall the shared pipe; their deadline is commandTimeoutMs plus their
   * own server-side timeout (or `timeoutMs` for this call alone). A command
   * that changes its connection's state (SELECT, MULTI, CLIENT REPLY, ...) is
   * refused with a TypeError naming the route that works (the semantics
   * table, src/commands.ts).
   */
  command(args: Command, options?: CommandOptions): Promise<Reply> {
    if (this.cache !== undefined && !this.closedByUser) return this.cache.command(args, options, this.direct);
    return this.direct(args, options);
  }

  /** command() without the client-side cache. */
  private readonly direct = (args: Command, options: CommandOptions | undefined): Promise<Reply> => {
    let req: Request;
    try {
      req = new Request(args, options, this.options.commandTimeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    if (req.settled) return req.promise; // an already-aborted signal
    const why = req.sem.effect === "plain" ? undefined : refusal(args, this.placement);
    if (why !== undefined) req.fail(new TypeError(why));
    else if (this.closedByUser) req.fail(new ClientClosedError());
    else {
      this.transport.send(req);
      if (commandChannel.hasSubscribers) return traceRequest(this.identity, req);
    }
    return req.promise;
  };

  /** The client-side cache's counters (undefined when the clientCache option is off). */
  clientCacheStats(): ClientCacheStats | undefined {
    return this.cache?.stats();
  }

  /** Drop every entry of the client-side cache (the cluster client calls it when a node's slots move). */
  flushClientCache(): void {
    this.cache?.store.flush();
  }

  /**
   * Sockets of the pool right now: the pooled transport's, or the pipelined
   * client's dedicated ones for blocking commands and withConnection.
   */
  poolStats(): PoolStats {
    return this.transport.poolStats();
  }

  /**
   * One socket for several commands in a row; released afterwards, also on
   * throw. A key may be given, as on a cluster (one node: it changes nothing).
   */
  withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T>;
  withConnection<T>(key: RedisKey, fn: (conn: DedicatedConnection) => Promise<T>): Promise<T>;
  withConnection<T>(keyOrFn: RedisKey | ((conn: DedicatedConnection) => Promise<T>), maybeFn?: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    const fn = typeof keyOrFn === "function" ? keyOrFn : maybeFn;
    if (typeof fn !== "function") return Promise.reject(new TypeError("withConnection(fn) or withConnection(key, fn): fn must be a function"));
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
    const cache = this.cache;
    return this.transport.withConnection(cache === undefined ? fn : (conn) => fn(cache.wrapDedicated(conn)));
  }

  /**
   * Many commands in one round trip; one result per command, in order: its
   * reply, or the error it got (returned, not thrown, so one failure never
   * hides the others). `atomic: true` wraps them in MULTI/EXEC, written back
   * to back on one socket with nothing interleaved, never retried one by one
   * after a reconnect; a transaction whose fate is unknown rejects as a whole
   * (ConnectionError with maybeExecuted, TimeoutError). A batch that changes
   * connection state (SELECT, CLIENT SETNAME ...) runs on a connection of its
   * own, closed afterwards: the state never reaches other callers. To WATCH,
   * use withConnection and runBatch on the lent connection.
   */
  batch(commands: readonly Command[], options?: BatchOptions): Promise<BatchResult[]> {
    const atomic = options?.atomic === true;
    let own: boolean;
    try {
      checkBatchOptions(options);
      validateBatch(commands);
      own = needsOwnConnection(commands, atomic ? "transaction" : "lent");
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
    if (commands.length === 0 && !atomic) return Promise.resolve([]);
    const timeoutMs = options?.timeoutMs ?? this.options.commandTimeoutMs;
    const signal = options?.signal;
    // Its writes drop their keys' entries, before and after (its reads are neither served nor stored).
    const written = this.cache?.beforeBatch(commands);
    if (!atomic && !own && this.placement === "shared") {
      // Independent commands on the shared pipe, sent in one synchronous loop:
      // they share the send queue's next write (blocking ones go to their own
      // connection). Checked above as a whole: a leading ASKING is consumed by
      // the command written right after it.
      const perCommand: CommandOptions = { returnBuffers: options?.returnBuffers, timeoutMs: options?.timeoutMs, signal };
      const reqs = commands.map((c) => new Request(c, perCommand, this.options.commandTimeoutMs));
      for (const r of reqs) if (!r.settled) this.transport.send(r);
      const results = Promise.allSettled(reqs.map((r) => r.promise)).then((s) => s.map(toResult));
      if (written !== undefined) void results.then(written, written);
      return batchChannel.hasSubscribers ? traceBatch(this.identity, false, commands.length, results) : results;
    }
    const members = atomic ? [MULTI, ...commands, EXEC] : commands;
    const last = members.length - 1;
    const group = new RequestGroup(members, {
      timeoutMs,
      signal,
      // Atomic: the results come in EXEC's reply.
      returnBuffers: (i) => options?.returnBuffers === true && (!atomic || i === last),
    });
    this.transport.sendGroup(group, own);
    const results = Promise.allSettled(group.requests.map((r) => r.promise)).then((settled) => (atomic ? atomicResults(commands, settled) : settled.map(toResult)));
    if (written !== undefined) void results.then(written, written);
    return batchChannel.hasSubscribers ? traceBatch(this.identity, atomic, commands.length, results) : results;
  }

  // ---- pub/sub ---------------------------------------------------------------
  // The API is PubSubCommands'; it lives on one dedicated connection (the
  // Subscriber), opened on first use.

  protected subscribeTo(kind: Kind, names: string | readonly string[], listener: AnyListener, options: SubscribeOptions | undefined): Promise<void> {
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
    try {
      checkSubscribeOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.pubsub().subscribe(kind, names, listener, options);
  }

  protected unsubscribeFrom(kind: Kind, names: string | readonly string[] | undefined, listener: AnyListener | undefined): Promise<void> {
    if (this.subscriber === undefined) return Promise.resolve();
    return this.subscriber.unsubscribe(kind, names, listener);
  }

  protected subscribed(kind: Kind): string[] {
    return this.subscriber?.subscriptions(kind) ?? [];
  }

  private pubsub(): Subscriber {
    this.subscriber ??= new Subscriber(this.options, this.connector, {
      disconnect: (error) => this.emit("subscriber-disconnect", { error }),
      reconnecting: (info) => this.emit("subscriber-reconnecting", info),
      resubscribed: (info) => this.emit("resubscribed", info),
      error: (error) => this.reportError(error),
    });
    return this.subscriber;
  }

  // ---- lifecycle -----------------------------------------------------------------

  /**
   * Graceful: commands already accepted settle (a reply, an error, or their
   * own deadline), then every socket closes. `timeoutMs` bounds the wait:
   * what is left then is destroyed, rejecting with ClientClosedError
   * (maybeExecuted: true for what was already written).
   */
  close(options?: CloseOptions): Promise<void> {
    let timeoutMs: number;
    try {
      timeoutMs = timeoutOption("close", options);
    } catch (err) {
      return Promise.reject(err);
    }
    this.closedByUser = true;
    this.stopCredentials?.();
    this.cache?.close();
    const subscriber = this.subscriber?.close() ?? Promise.resolve();
    const graceful = Promise.all([this.transport.close(), subscriber]).then(() => undefined);
    if (timeoutMs === 0) return graceful;
    const timer = setTimeout(() => this.destroy(), timeoutMs);
    return graceful.finally(() => clearTimeout(timer));
  }

  /** Now: every pending command rejects with ClientClosedError. */
  destroy(): void {
    this.closedByUser = true;
    this.stopCredentials?.();
    this.cache?.close();
    this.subscriber?.destroy();
    this.transport.destroy();
  }
}

/**
 * The pipelined client's dedicated connections (blocking commands,
 * withConnection) report nothing of their own: their failures reach callers
 * through command results, and the main connection already reports the
 * outage (so every dial failure is reported once, not twice).
 */
function silentEvents(): TransportEvents {
  const none = (): void => undefined;
  return { ready: none, disconnect: none, reconnecting: none, close: none, error: none };
}

export function createClient(options?: string | ClientOptions, route?: ConnectionRoute): Client {
  return new Client(options, route);
}
