// The Client: one command() API over either transport, with events and a
// lifecycle. Typed helpers are thin wrappers over command() (src/helpers);
// batches and pub/sub need more than command() and live here.
import { atomicResults, EXEC, MULTI, runBatch, toResult, validateBatch, type BatchOptions, type BatchResult } from "./batch.js";
import { AbortError, ClientClosedError, TimeoutError, type RedisError } from "./errors.js";
import { resolveOptions, type ClientOptions, type ResolvedOptions } from "./options.js";
import type { Reply } from "./protocol/decode.js";
import type { Command } from "./protocol/encode.js";
import { PipelinedTransport } from "./pipelined/pipelined-transport.js";
import { PooledTransport } from "./blocking/pooled-transport.js";
import type { AnyListener, Kind } from "./pubsub/listeners.js";
import { PubSubCommands, type PubSubEvents } from "./pubsub/pubsub-commands.js";
import { Subscriber, type SubscribeOptions } from "./pubsub/subscriber.js";
import { Request, RequestState, type CommandOptions } from "./request.js";
import { SentinelTransport } from "./sentinel/sentinel-transport.js";
import type { ClientStatus, DedicatedConnection, DisconnectReason, PoolStats, Transport, TransportEvents } from "./transport.js";

/**
 * Internal (cluster, issue 10), not exported by the package:
 * `client[atomicBatchAfter](first, commands, options)` is an atomic batch
 * with `first` written just before its MULTI on the same socket (pipelined:
 * in the same contiguous write; pooled: on the one lent socket). The cluster
 * client puts ASKING there to follow an ASK redirection: Redis keeps the
 * ASKING flag through a MULTI block, so the whole transaction runs on the
 * importing node, and the flag ends with EXEC.
 */
export const atomicBatchAfter = Symbol("respite.atomicBatchAfter");

const noop = (): void => undefined;

export interface ClientEvents extends PubSubEvents {
  ready: [];
  disconnect: [info: { reason: DisconnectReason; error: Error | undefined }];
  reconnecting: [info: { attempt: number; delayMs: number }];
  error: [error: RedisError];
  close: [];
}

export class Client extends PubSubCommands<ClientEvents> {
  readonly options: ResolvedOptions;
  private readonly transport: Transport;
  /** The same object as `transport` when pipelined: batches need its contiguous send. */
  private readonly pipelined: PipelinedTransport | undefined;
  private subscriber: Subscriber | undefined;
  private readonly reportError: (error: RedisError) => void;
  private closedByUser = false;

  constructor(options: string | ClientOptions = {}) {
    super();
    this.options = resolveOptions(options);
    const events: TransportEvents = {
      ready: () => this.emit("ready"),
      disconnect: (info) => this.emit("disconnect", info),
      reconnecting: (info) => this.emit("reconnecting", info),
      // An 'error' event with no listener would crash the process; a client
      // that must never take a service down only reports to those who listen.
      error: (error) => {
        if (this.listenerCount("error") > 0) this.emit("error", error);
      },
      close: () => this.emit("close"),
    };
    this.reportError = events.error;
    // Sentinel (issue 11): hooks every dial of this.options before a transport exists (src/sentinel).
    const sentinel = this.options.sentinel !== undefined ? new SentinelTransport(this.options, events) : undefined;
    if (this.options.transport === "pooled") {
      this.transport = new PooledTransport(this.options, events);
    } else {
      this.pipelined = new PipelinedTransport(this.options, events, () => new PooledTransport(this.options, silentEvents()));
      this.transport = this.pipelined;
    }
    if (sentinel !== undefined) this.transport = sentinel.wrap(this.transport);
    if (!this.options.lazyConnect) {
      // Connection failures are reported through events and command results.
      this.transport.connect().catch(() => undefined);
    }
  }

  /** "idle" (lazy, not dialed) | "connecting" | "ready" | "reconnecting" | "closing" | "closed". */
  get status(): ClientStatus {
    return this.transport.status;
  }

  /** Resolves once the first handshake is done (optional: commands queue until then). */
  connect(): Promise<void> {
    return this.transport.connect();
  }

  /**
   * Send any command: `await client.command(["SET", "k", "v"])`.
   *
   * Blocking commands (BLPOP, BRPOP, BLMOVE, BZPOPMIN, XREAD BLOCK, WAIT, ...)
   * on the pipelined client run on a dedicated connection of their own, so
   * they never stall the shared pipe; their deadline is commandTimeoutMs plus
   * their own server-side timeout (or `timeoutMs` for this call alone).
   * MULTI/EXEC and WATCH belong in batch() or withConnection(), never in
   * command() on the shared pipelined socket.
   */
  command(args: Command, options?: CommandOptions): Promise<Reply> {
    let req: Request;
    try {
      req = new Request(args, options, this.options.commandTimeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    if (req.stateful) {
      req.fail(
        new TypeError(
          `${req.name} changes the state of its connection and cannot be sent with command(), which shares sockets: ` +
            "use batch(commands, { atomic: true }), withConnection(), subscribe(), or the db option",
        ),
      );
    } else if (this.closedByUser) req.fail(new ClientClosedError());
    else if (!req.settled) this.transport.send(req);
    return req.promise;
  }

  /**
   * Sockets of the pool right now: the pooled transport's, or the pipelined
   * client's dedicated ones for blocking commands and withConnection.
   */
  poolStats(): PoolStats {
    return this.transport.poolStats();
  }

  /** One socket for several commands in a row; released afterwards, also on throw. */
  withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
    return this.transport.withConnection(fn);
  }

  /**
   * Many commands in one round trip; one result per command, in order: its
   * reply, or the error it got (returned, not thrown, so one failure never
   * hides the others). `atomic: true` wraps them in MULTI/EXEC: written back
   * to back (pipelined: one write on the shared socket, nothing interleaved;
   * pooled: one socket), never retried one by one after a reconnect; a
   * transaction whose fate is unknown rejects as a whole (ConnectionError
   * with maybeExecuted, TimeoutError). To WATCH, use withConnection and
   * runBatch on the lent connection.
   */
  batch(commands: readonly Command[], options?: BatchOptions): Promise<BatchResult[]> {
    try {
      validateBatch(commands);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
    if (options?.atomic === true) return this.transaction(undefined, commands, options);
    const pipelined = this.pipelined;
    if (pipelined === undefined) {
      // No socket to lend: every command of a plain batch got that error (none was sent).
      return this.withConnection((conn) => runBatch(conn, commands, options)).catch((err: unknown) =>
        commands.map(() => toResult({ status: "rejected", reason: err })),
      );
    }
    if (commands.length === 0) return Promise.resolve([]);
    const perCommand: CommandOptions = { returnBuffers: options?.returnBuffers, timeoutMs: options?.timeoutMs, signal: options?.signal };
    // Sent in one synchronous loop: they share the send queue's next write.
    return Promise.allSettled(commands.map((c) => this.command(c, perCommand))).then((s) => s.map(toResult));
  }

  /**
   * Internal (cluster, issue 10): see atomicBatchAfter. `first`'s reply is
   * not a result; the transaction's own results tell what happened.
   */
  [atomicBatchAfter](first: Command, commands: readonly Command[], options?: Omit<BatchOptions, "atomic">): Promise<BatchResult[]> {
    try {
      validateBatch([first, ...commands]);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
    return this.transaction(first, commands, { ...options, atomic: true });
  }

  /** MULTI, the commands, EXEC (after `first`, when given), back to back on one socket. */
  private transaction(first: Command | undefined, commands: readonly Command[], options: BatchOptions): Promise<BatchResult[]> {
    const pipelined = this.pipelined;
    if (pipelined === undefined) {
      return this.withConnection((conn) => {
        // Written on the lent socket before runBatch writes MULTI (synchronously, in its first step).
        if (first !== undefined) conn.command(first, { timeoutMs: options.timeoutMs, signal: options.signal }).catch(noop);
        return runBatch(conn, commands, options);
      });
    }
    if (options.signal?.aborted === true) return Promise.reject(new AbortError("EXEC", false, { cause: options.signal.reason }));
    const lead = first === undefined ? [] : [first];
    // MULTI … EXEC carry no deadline or signal of their own: a member dropped
    // from the queue by its timeout would leave a hole in the transaction (or
    // the socket inside MULTI). The batch's deadline applies to the whole.
    const reqs = [...lead, MULTI, ...commands, EXEC].map(
      (c, i, all) => new Request(c, { timeoutMs: 0, returnBuffers: i === all.length - 1 && options.returnBuffers === true }, 0),
    );
    // After a reconnect a member alone is not the transaction: never re-send one.
    for (const r of reqs) r.retried = true;
    pipelined.sendContiguous(reqs);
    const outcome = Promise.allSettled(reqs.map((r) => r.promise)).then((s) => atomicResults(commands, s.slice(lead.length)));
    const timeoutMs = options.timeoutMs ?? this.options.commandTimeoutMs;
    // Giving up on a batch still queued (offline) takes it out of the queue, so
    // "not executed" stays true; once written it can only be abandoned.
    const giveUp = (error: RedisError): boolean => {
      if ((reqs[0] as Request).state !== RequestState.Queued) return true;
      for (const r of reqs) r.fail(error);
      return false;
    };
    return withDeadline(outcome, timeoutMs, options.signal, giveUp);
  }

  // ---- pub/sub ---------------------------------------------------------------
  // The API is PubSubCommands'; it lives on one dedicated connection (the
  // Subscriber), opened on first use.

  protected subscribeTo(kind: Kind, names: string | readonly string[], listener: AnyListener, options: SubscribeOptions | undefined): Promise<void> {
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
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
    this.subscriber ??= new Subscriber(this.options, {
      disconnect: (error) => this.emit("subscriber-disconnect", { error }),
      reconnecting: (info) => this.emit("subscriber-reconnecting", info),
      resubscribed: (info) => this.emit("resubscribed", info),
      error: (error) => this.reportError(error),
    });
    return this.subscriber;
  }

  // ---- lifecycle -----------------------------------------------------------------

  /** Graceful: commands already accepted get their replies, then every socket closes. */
  close(): Promise<void> {
    this.closedByUser = true;
    const subscriber = this.subscriber?.close() ?? Promise.resolve();
    return Promise.all([this.transport.close(), subscriber]).then(() => undefined);
  }

  /** Now: every pending command rejects with ClientClosedError. */
  destroy(): void {
    this.closedByUser = true;
    this.subscriber?.destroy();
    this.transport.destroy();
  }
}

/**
 * The pipelined client's dedicated connections (blocking commands,
 * withConnection) report nothing of their own: their failures reach callers
 * through command results, and the main connection already reports the
 * outage (issue 4 review: every dial failure was reported twice).
 */
function silentEvents(): TransportEvents {
  const none = (): void => undefined;
  return { ready: none, disconnect: none, reconnecting: none, close: none, error: none };
}

/**
 * `promise`, or a TimeoutError / AbortError when the deadline or signal comes
 * first. `giveUp` withdraws what it can and tells whether the work may have
 * reached the server (the error's maybeExecuted).
 */
function withDeadline<T>(
  promise: Promise<T>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  giveUp: (error: RedisError) => boolean,
): Promise<T> {
  const hasTimer = timeoutMs > 0 && Number.isFinite(timeoutMs);
  if (!hasTimer && signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const fail = (make: (maybeExecuted: boolean) => RedisError): void => {
      finish();
      // Withdraw first (with a provisional error), then reject with the truth.
      const maybeExecuted = giveUp(make(false));
      reject(make(maybeExecuted));
    };
    const onAbort = (): void => fail((m) => new AbortError("EXEC", m, { cause: signal?.reason }));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (hasTimer) timer = setTimeout(() => fail((m) => new TimeoutError("EXEC", timeoutMs, m)), timeoutMs);
    promise.then(
      (v) => {
        finish();
        resolve(v);
      },
      (e: unknown) => {
        finish();
        reject(e);
      },
    );
  });
}

export function createClient(options?: string | ClientOptions): Client {
  return new Client(options);
}
