// Client-side caching for one Client: when the cache may serve and store,
// kept in step with the server's tracking of this client's connections.
//
// Where invalidations come from
//   RESP2, mode "default": every data connection runs CLIENT TRACKING ON
//     REDIRECT <id> in its handshake (a route verify), <id> being the
//     invalidation connection's (invalidation-connection.ts), subscribed to
//     __redis__:invalidate.
//   RESP2, mode "broadcast": only the invalidation connection tracks (BCAST,
//     redirected to itself); data connections need nothing.
//   RESP3: every data connection runs CLIENT TRACKING ON [BCAST ...] in its
//     handshake; invalidations arrive in-band as push frames.
//
// Never stale after a fault
//   - A data connection lost (default mode, or RESP3): the server forgets
//     what it read, so invalidations for those keys would never come: the
//     cache is flushed at once (the connector's onClose, synchronous with the
//     socket's close). On the pipelined transport nothing is stored again
//     until the new connection is ready and tracked.
//   - The invalidation connection lost (RESP2): flushed at once, nothing
//     stored until a new one is subscribed and every data connection
//     redirects to it: the pipelined connection gets CLIENT TRACKING ON
//     REDIRECT <new id> in its queue (ahead of any later read); the pooled
//     transport replaces its sockets (invalidate(): nothing in flight is
//     lost, a socket dialed before is never lent again) and each new one
//     redirects in its handshake.
//   - A failover (Sentinel): flushed, and the invalidation connection follows.
//   - FLUSHALL/FLUSHDB (a null invalidation, or this client's own): flushed.
//   - A read in flight across any of these, or across an invalidation of its
//     key, never stores its reply (the store's epoch and per-key guards).
//
// The lease: the stale window has one bound whatever the fault
//   A hit is served only while the invalidation channel has answered a PING
//   sent less than LEASE_MS ago. Redis writes an invalidation on the channel
//   when it runs the write, so a PONG read after it proves that every write
//   the server ran before that PING has been invalidated here. A server that
//   froze, a channel that went silent, a failover not yet announced, an event
//   loop busy with a chain of hits: after LEASE_MS without proof, reads go to
//   the server (and one of them renews the lease). Probes are sent only while
//   the cache is read, at most one at a time, renewed at half the lease.
//   (RESP3 on the pooled transport: the probe proves the socket it ran on;
//   the others' pushes were sent before its reply, on their own sockets.)
import { commandName, keyIndexes, semantics } from "../commands.js";
import type { Connector } from "../connection/connector.js";
import type { ConnectionRoute, SetupExec } from "../connection/handshake.js";
import type { RespSocket, RespSocketEvents } from "../connection/resp-socket.js";
import { ConnectionError, RedisError, ReplyError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";
import type { Reply } from "../protocol/decode.js";
import type { Command } from "../protocol/encode.js";
import { checkCommandOptions, internalRequest, type CommandOptions } from "../request.js";
import type { DedicatedConnection, Transport } from "../transport.js";
import type { CacheableSpec } from "./cacheable.js";
import { cacheKeyOf, ClientCache, redisKeyName, type ClientCacheStats, type Table } from "./client-cache.js";
import { InvalidationConnection } from "./invalidation-connection.js";
import type { ResolvedClientCacheOptions } from "./options.js";

/** How long a proof that the invalidation channel is live lets the cache serve hits, in ms. */
export const LEASE_MS = 100;

type Send = (args: Command, options: CommandOptions | undefined) => Promise<Reply>;

interface Named extends CacheableSpec {
  name: string;
  /** `NAME key` with a string key: entries by key, for string and for Buffer replies. */
  strings: Table;
  buffers: Table;
}

function text(v: Reply | undefined): string {
  return Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
}

const REDIRECT_GONE = /redirect to does not exist/i;

const ignore = (): void => undefined;

/** `route` (if any), then `step` after its checks. */
function withStep(route: ConnectionRoute | undefined, step: (exec: SetupExec, socket: object) => Promise<void>): ConnectionRoute {
  const verify = route?.verify;
  return {
    resolveAddress: route?.resolveAddress,
    verify: async (exec, address, socket) => {
      if (verify !== undefined) await verify(exec, address, socket);
      await step(exec, socket);
    },
  };
}

export class CacheController {
  readonly store: ClientCache;
  private readonly commands = new Map<string, Named>();
  private readonly prefixes: readonly string[];
  private readonly resp3: boolean;
  private readonly broadcast: boolean;
  private readonly pooled: boolean;
  /** RESP2 only. */
  private readonly inval: InvalidationConnection | undefined;
  private transport: Transport | undefined;
  /** Bumped each time a new invalidation connection is ready: what a data connection's redirect points at. */
  private gen = 0;
  /** Pipelined: the data connection is ready (not lost since). */
  private dataUp = false;
  /** Pipelined: the generation the current data connection's handshake redirected to (-1: not tracked). */
  private dataGen = -1;
  private readonly verified = new WeakMap<object, number>();
  /** Pooled, RESP2 default mode: a socket may redirect to a channel that is gone, or to none; replaced when the next channel is ready. */
  private poolStale = false;
  /** Tracking cannot work for this client (refused by the server): the reason, reported once. */
  private off: RedisError | undefined;
  private leaseUntil = 0;
  /** Bumped whenever the channel a lease proves changes: an older probe's answer proves nothing. */
  private leaseGen = 0;
  private renewing = false;
  private closed = false;
  private lastName: unknown = undefined;
  private lastSpec: Named | undefined = undefined;

  /** What every data connection dials through: the route, then the tracking step; its loss and pushes are seen here first. */
  readonly dataConnector: Connector;

  constructor(
    private readonly options: ResolvedOptions,
    cache: ResolvedClientCacheOptions,
    /** How the client reaches its server (Sentinel's route, a cluster node's), if not directly. */
    route: ConnectionRoute | undefined,
    /** A connector through a route (createConnector with the client's options and identity). */
    connectorFor: (route: ConnectionRoute) => Connector,
    private readonly report: (error: RedisError) => void,
  ) {
    this.store = new ClientCache(cache.maxBytes, cache.ttlMs);
    const named = new Map<string, Named>();
    for (const [k, spec] of cache.commands) {
      const name = k.toLowerCase();
      let n = named.get(name);
      if (n === undefined) named.set(name, (n = { ...spec, name, strings: this.store.table(), buffers: this.store.table() }));
      this.commands.set(k, n);
    }
    this.prefixes = cache.prefixes;
    this.resp3 = options.protocol === 3;
    this.broadcast = cache.mode === "broadcast";
    this.pooled = options.transport === "pooled";
    this.dataConnector = this.wrapData(connectorFor(withStep(route, (exec, socket) => this.track(exec, socket))));
    if (!this.resp3) {
      this.inval = new InvalidationConnection(options, (setup) => connectorFor(withStep(route, setup)), this.broadcast ? this.prefixes : undefined, {
        ready: () => this.channelReady(),
        lost: () => this.channelLost(),
        invalidate: (keys) => this.invalidated(keys),
        pong: (sentAt) => this.renewed(sentAt, this.leaseGen),
        error: (error) => report(error),
      });
    }
  }

  private wrapData(inner: Connector): Connector {
    return {
      open: async (events, signal) => {
        const wrapped: RespSocketEvents = {
          ...events,
          onClose: (error, unanswered) => {
            this.dataLost();
            events.onClose(error, unanswered);
          },
          onPush: (reply) => this.onDataPush(reply) || (events.onPush?.(reply) ?? false),
        };
        const conn = await inner.open(wrapped, signal);
        this.dataOpened(conn);
        return conn;
      },
    };
  }

  /** The transport the cache's own commands go through (never a Sentinel wrapper: its invalidate() means a failover). */
  attach(transport: Transport): void {
    this.transport = transport;
    if (this.resp3 && this.pooled) this.enable();
    if (this.inval !== undefined && !this.options.lazyConnect) this.inval.start();
  }

  // ---- what the client tells ------------------------------------------------------

  /** The transport is ready (pipelined: a new connection; its handshake may have tracked it). */
  transportReady(): void {
    if (this.pooled) return;
    this.dataUp = true;
    this.maybeEnable();
  }

  /** The transport lost its connection (also when it was dropped without a close: a failover, a refused re-AUTH). */
  transportDown(): void {
    if (this.pooled) return;
    this.dataUp = false;
    this.dataGen = -1;
    if (!this.broadcast || this.resp3) this.disable();
  }

  /** The server changed (Sentinel): everything read is from the old one. */
  serverChanged(): void {
    if (this.resp3 && this.pooled) {
      // Every new socket tracks in its handshake: flush, and prove the new server before any hit.
      this.store.flush();
      this.resetLease();
    } else {
      this.disable();
    }
    this.inval?.invalidate();
  }

  /** Pushed credentials: the user may have changed, and with it what may be read. */
  credentialsChanged(): void {
    this.store.flush();
  }

  close(): void {
    this.closed = true;
    this.disable();
    this.inval?.destroy();
  }

  stats(): ClientCacheStats {
    const c = this.store.counters;
    return {
      hits: c.hits,
      misses: c.misses,
      evictions: c.evictions,
      invalidations: c.invalidations,
      flushes: c.flushes,
      entries: this.store.size,
      bytes: this.store.byteCount,
      maxBytes: this.store.maxBytes,
      tracking: this.store.isStoring && performance.now() < this.leaseUntil,
    };
  }

  // ---- commands ----------------------------------------------------------------------

  /**
   * command() with the cache: a hit answers at once; a miss is sent and its
   * reply stored if nothing made it stale meanwhile; a write drops its keys'
   * entries before it is sent and again once it is answered (a read that ran
   * beside it on another socket may have stored the old value).
   */
  command(args: Command, options: CommandOptions | undefined, send: Send): Promise<Reply> {
    const a0 = args[0];
    // The same name string as last time (a caller's constant): no lookup.
    let spec: Named | undefined;
    if (a0 === this.lastName) spec = this.lastSpec;
    else if (typeof a0 === "string") {
      spec = this.commands.get(a0) ?? this.commands.get(a0.toLowerCase());
      this.lastName = a0;
      this.lastSpec = spec;
    }
    if (spec === undefined) {
      const after = this.beforeWrite(args);
      const p = send(args, options);
      if (after !== undefined) p.then(after, after);
      return p;
    }
    if (args.length < 2 || (spec.maxArgs !== undefined && args.length > spec.maxArgs)) return send(args, options);
    let binary = false;
    if (options != null) {
      try {
        checkCommandOptions(options);
      } catch {
        return send(args, options); // which rejects with the same TypeError
      }
      if (options.signal?.aborted === true) return send(args, options);
      binary = options.returnBuffers === true;
    }
    // One string argument: its own table, keyed by the argument as given (no string built).
    const a1 = args[1];
    let table: Table;
    let key: string | undefined;
    if (args.length === 2 && typeof a1 === "string") {
      table = binary ? spec.buffers : spec.strings;
      key = a1;
    } else {
      table = this.store.general;
      key = cacheKeyOf(spec.name, args, binary);
      if (key === undefined) return send(args, options);
    }
    const now = performance.now();
    if (now < this.leaseUntil) {
      const hit = this.store.hit(table, key, now);
      if (hit !== undefined) {
        if (now > this.leaseUntil - LEASE_MS / 2) this.renew(now);
        return hit;
      }
    } else if (this.store.isStoring) {
      this.renew(now);
    }
    const redisKey = redisKeyName(a1);
    if (this.prefixes.length > 0 && !this.prefixes.some((p) => redisKey.startsWith(p))) return send(args, options);
    const ticket = this.store.begin(key, redisKey, table);
    const p = send(args, options);
    // A failed read stores nothing: nothing to do then.
    p.then((reply) => this.store.end(ticket, reply, performance.now()), ignore);
    return p;
  }

  /**
   * A command about to be sent that may write: drop the entries of its keys
   * now (FLUSHALL/FLUSHDB/SWAPDB: all of them). Returns what to do again once
   * it is answered, or undefined for a read.
   */
  beforeWrite(args: Command): (() => void) | undefined {
    let sem;
    try {
      sem = semantics(args);
    } catch {
      return undefined;
    }
    if (sem.readOnly) return undefined;
    const name = commandName(args);
    if (name === "FLUSHALL" || name === "FLUSHDB" || name === "SWAPDB") {
      this.store.flush();
      return () => this.store.flush();
    }
    let indexes: number[];
    try {
      indexes = keyIndexes(args);
    } catch {
      return undefined;
    }
    if (indexes.length === 0) return undefined;
    const keys = indexes.map((i) => redisKeyName(args[i]));
    for (const k of keys) this.store.invalidate(k);
    return () => {
      for (const k of keys) this.store.invalidate(k);
    };
  }

  /** Writes on a lent connection (withConnection) drop their keys' entries too. */
  wrapDedicated(conn: DedicatedConnection): DedicatedConnection {
    return {
      command: (args, options) => {
        const after = this.beforeWrite(args);
        const p = conn.command(args, options);
        if (after !== undefined) p.then(after, after);
        return p;
      },
    };
  }

  /** A batch's writes (its reads are neither served nor stored). */
  beforeBatch(commands: readonly Command[]): (() => void) | undefined {
    const afters: (() => void)[] = [];
    for (const c of commands) {
      const after = this.beforeWrite(c);
      if (after !== undefined) afters.push(after);
    }
    if (afters.length === 0) return undefined;
    return () => {
      for (const a of afters) a();
    };
  }

  // ---- tracking on data connections -------------------------------------------------------

  /** The tracking step of a data connection's handshake. A refusal is reported and turns the cache off; the connection still serves. */
  private async track(exec: SetupExec, socket: object): Promise<void> {
    if (this.off !== undefined || this.closed) return;
    if (this.resp3) {
      const bcast = this.broadcast ? ["BCAST", ...this.prefixes.flatMap((p) => ["PREFIX", p])] : [];
      try {
        await exec(["CLIENT", "TRACKING", "ON", ...bcast]);
        this.verified.set(socket, 0);
      } catch (err) {
        if (!(err instanceof ReplyError)) throw err; // the dial failed (lost, timed out, aborted): the owner backs off
        this.refused(err);
      }
      return;
    }
    const inval = this.inval as InvalidationConnection;
    if (this.broadcast) {
      inval.start(); // it tracks for everybody (a lazy client dials it with its first data connection)
      return;
    }
    const budget = this.options.connectTimeoutMs > 0 ? Math.min(1000, this.options.connectTimeoutMs / 2) : 1000;
    const id = (await inval.whenReady(budget)) ? inval.id : undefined;
    if (id === undefined) {
      // Untracked (the channel is not up): the cache is off until it is, and then this socket is replaced.
      this.poolStale = true;
      return;
    }
    const gen = this.gen;
    try {
      await exec(["CLIENT", "TRACKING", "ON", "REDIRECT", id]);
      this.verified.set(socket, gen);
    } catch (err) {
      if (!(err instanceof ReplyError)) throw err; // the dial failed (lost, timed out, aborted): the owner backs off
      this.poolStale = true;
      if (REDIRECT_GONE.test(err.message)) this.channelGone();
      else this.refused(err);
    }
  }

  /** The server says the channel is gone before its close reached us: act as if it had. */
  private channelGone(): void {
    this.disable();
    this.inval?.invalidate();
  }

  private dataOpened(conn: RespSocket): void {
    if (this.pooled) return;
    this.dataGen = this.verified.get(conn.socket) ?? -1;
  }

  /** A data connection closed (pooled: one socket of the pool). */
  private dataLost(): void {
    if (this.broadcast && !this.resp3) return; // the invalidation connection tracks for everybody
    if (this.pooled) {
      this.store.flush();
      return;
    }
    this.dataUp = false;
    this.dataGen = -1;
    this.disable();
  }

  private onDataPush(reply: Reply): boolean {
    if (!Array.isArray(reply) || reply.length < 2) return false;
    const kind = text(reply[0]);
    if (kind === "invalidate") {
      const keys = reply[1];
      this.invalidated(Array.isArray(keys) ? keys : null);
      return true;
    }
    if (kind === "tracking-redir-broken") {
      // Invalidations for this connection went nowhere: nothing cached can be trusted.
      this.store.flush();
      return true;
    }
    return false;
  }

  // ---- the invalidation channel ------------------------------------------------------

  private channelReady(): void {
    this.gen++;
    this.maybeEnable();
  }

  private channelLost(): void {
    this.poolStale = true;
    this.disable();
  }

  private invalidated(keys: Reply[] | null): void {
    if (keys === null) {
      this.store.flush();
      return;
    }
    for (const k of keys) this.store.invalidate(redisKeyName(k));
  }

  // ---- enabling ---------------------------------------------------------------------------

  private maybeEnable(): void {
    if (this.off !== undefined || this.closed || this.transport === undefined) return;
    if (this.resp3) {
      if (this.pooled || this.dataUp) this.enable();
      return;
    }
    const inval = this.inval as InvalidationConnection;
    const id = inval.id;
    if (id === undefined) return;
    if (this.broadcast) {
      this.enable();
      return;
    }
    if (this.pooled) {
      // Sockets whose tracking points at an older channel (or none) are replaced; new ones redirect in their handshake.
      if (this.poolStale) {
        this.poolStale = false;
        this.transport.invalidate?.();
      }
      this.enable();
      return;
    }
    if (!this.dataUp) return;
    if (this.dataGen !== this.gen) {
      // In the queue ahead of every read sent from now on.
      const gen = this.gen;
      const req = internalRequest(["CLIENT", "TRACKING", "ON", "REDIRECT", id]);
      req.promise.then(
        () => undefined,
        (err: unknown) => {
          if (gen !== this.gen) return; // about a channel that is gone anyway
          if (err instanceof ReplyError && REDIRECT_GONE.test(err.message)) this.channelGone();
          else if (err instanceof ReplyError) this.refused(err);
          else this.disable(); // the connection was lost: its loss re-enables when the next one is ready
        },
      );
      this.dataGen = gen;
      this.transport.send(req);
    }
    this.enable();
  }

  private enable(): void {
    if (this.store.isStoring) return;
    this.store.setStoring(true);
    this.renew(performance.now());
  }

  /** Flush, and store nothing until tracking is established again. */
  private disable(): void {
    this.store.setStoring(false);
    this.resetLease();
  }

  /** What proved the channel before proves nothing now. */
  private resetLease(): void {
    this.leaseUntil = 0;
    this.leaseGen++;
    this.renewing = false;
  }

  private refused(err: unknown): void {
    if (this.off !== undefined) return;
    const cause = err instanceof Error ? err.message : String(err);
    this.off = new ConnectionError(`Client-side caching is off: the server refused CLIENT TRACKING (${cause})`, "handshake-failed", false, { cause: err });
    this.disable();
    this.report(this.off);
  }

  // ---- the lease --------------------------------------------------------------------------

  private renew(now: number): void {
    if (this.renewing || !this.store.isStoring || this.transport === undefined) return;
    this.renewing = true;
    const leaseGen = this.leaseGen;
    if (this.inval !== undefined) {
      if (!this.inval.ping(now)) this.renewing = false;
      return;
    }
    const req = internalRequest(["PING"]);
    req.promise.then(
      () => this.renewed(now, leaseGen),
      () => {
        if (leaseGen === this.leaseGen) this.renewing = false;
      },
    );
    this.transport.send(req);
  }

  private renewed(sentAt: number, leaseGen: number): void {
    if (leaseGen !== this.leaseGen) return;
    this.renewing = false;
    if (this.store.isStoring && sentAt + LEASE_MS > this.leaseUntil) this.leaseUntil = sentAt + LEASE_MS;
  }
}
