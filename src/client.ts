// The Client: one command() API over either transport, with events and a
// lifecycle. Typed helpers are thin wrappers over command() (src/helpers);
// batches and pub/sub need more than command() and live here.
import { atomicResults, EXEC, MULTI, runBatch, toResult, validateBatch, type BatchOptions, type BatchResult } from "./batch.js";
import { AbortError, ClientClosedError, TimeoutError, type RedisError } from "./errors.js";
import { TypedCommands } from "./helpers/typed-commands.js";
import { resolveOptions, type ClientOptions, type ResolvedOptions } from "./options.js";
import type { Reply } from "./protocol/decode.js";
import type { Command } from "./protocol/encode.js";
import { PipelinedTransport } from "./pipelined/pipelined-transport.js";
import { PooledTransport } from "./blocking/pooled-transport.js";
import { Subscriber, type MessageListener, type PatternListener, type SubscribeOptions } from "./pubsub/subscriber.js";
import { Request, RequestState, type CommandOptions } from "./request.js";
import { SentinelTransport } from "./sentinel/sentinel-transport.js";
import type { ClientStatus, DedicatedConnection, DisconnectReason, PoolStats, Transport, TransportEvents } from "./transport.js";

export interface ClientEvents {
  ready: [];
  disconnect: [info: { reason: DisconnectReason; error: Error | undefined }];
  reconnecting: [info: { attempt: number; delayMs: number }];
  error: [error: RedisError];
  close: [];
  /** The pub/sub connection was lost; messages published until `resubscribed` are missed. */
  "subscriber-disconnect": [info: { error: Error | undefined }];
  /** The pub/sub connection waits `delayMs` before its next dial. */
  "subscriber-reconnecting": [info: { attempt: number; delayMs: number }];
  /** After a reconnect, every channel and pattern with a listener is subscribed again. */
  resubscribed: [info: { channels: string[]; patterns: string[] }];
}

export class Client extends TypedCommands<ClientEvents> {
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
    const pipelined = this.pipelined;
    if (pipelined === undefined) {
      const run = this.withConnection((conn) => runBatch(conn, commands, options));
      // No socket to lend: every command of a plain batch got that error (none was sent).
      return options?.atomic === true ? run : run.catch((err: unknown) => commands.map(() => toResult({ status: "rejected", reason: err })));
    }
    if (options?.atomic !== true) {
      if (commands.length === 0) return Promise.resolve([]);
      const perCommand: CommandOptions = { returnBuffers: options?.returnBuffers, timeoutMs: options?.timeoutMs, signal: options?.signal };
      // Sent in one synchronous loop: they share the send queue's next write.
      return Promise.allSettled(commands.map((c) => this.command(c, perCommand))).then((s) => s.map(toResult));
    }
    if (options?.signal?.aborted === true) return Promise.reject(new AbortError("EXEC", false, { cause: options.signal.reason }));
    // MULTI … EXEC carry no deadline or signal of their own: a member dropped
    // from the queue by its timeout would leave a hole in the transaction (or
    // the socket inside MULTI). The batch's deadline applies to the whole.
    const reqs = [MULTI, ...commands, EXEC].map(
      (c, i, all) => new Request(c, { timeoutMs: 0, returnBuffers: i === all.length - 1 && options?.returnBuffers === true }, 0),
    );
    // After a reconnect a member alone is not the transaction: never re-send one.
    for (const r of reqs) r.retried = true;
    pipelined.sendContiguous(reqs);
    const outcome = Promise.allSettled(reqs.map((r) => r.promise)).then((s) => atomicResults(commands, s));
    const timeoutMs = options?.timeoutMs ?? this.options.commandTimeoutMs;
    // Giving up on a batch still queued (offline) takes it out of the queue, so
    // "not executed" stays true; once written it can only be abandoned.
    const giveUp = (error: RedisError): boolean => {
      if ((reqs[0] as Request).state !== RequestState.Queued) return true;
      for (const r of reqs) r.fail(error);
      return false;
    };
    return withDeadline(outcome, timeoutMs, options?.signal, giveUp);
  }

  // ---- pub/sub ---------------------------------------------------------------

  /**
   * Subscribe `listener` to channels, on the client's pub/sub connection
   * (opened on first use, re-subscribed after every reconnect). Resolves once
   * the server confirmed every channel. Messages are UTF-8 strings, or
   * Buffers with `{ returnBuffers: true }`.
   */
  subscribe(channels: string | readonly string[], listener: MessageListener<string>): Promise<void>;
  subscribe(channels: string | readonly string[], listener: MessageListener<Buffer>, options: SubscribeOptions & { returnBuffers: true }): Promise<void>;
  subscribe(channels: string | readonly string[], listener: MessageListener<string> | MessageListener<Buffer>, options?: SubscribeOptions): Promise<void> {
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
    return this.pubsub().subscribe("channel", channels, listener as PatternListener<string | Buffer>, options);
  }

  /** Subscribe `listener` to glob-style patterns (PSUBSCRIBE); it gets (message, channel, pattern). */
  psubscribe(patterns: string | readonly string[], listener: PatternListener<string>): Promise<void>;
  psubscribe(patterns: string | readonly string[], listener: PatternListener<Buffer>, options: SubscribeOptions & { returnBuffers: true }): Promise<void>;
  psubscribe(patterns: string | readonly string[], listener: PatternListener<string> | PatternListener<Buffer>, options?: SubscribeOptions): Promise<void> {
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
    return this.pubsub().subscribe("pattern", patterns, listener as PatternListener<string | Buffer>, options);
  }

  /**
   * Remove `listener` from channels (every listener when omitted; every
   * channel when `channels` is omitted). A channel left without listeners is
   * unsubscribed on the server; resolves once it confirmed.
   */
  unsubscribe(channels?: string | readonly string[], listener?: MessageListener<string> | MessageListener<Buffer>): Promise<void> {
    if (this.subscriber === undefined) return Promise.resolve();
    return this.subscriber.unsubscribe("channel", channels, listener as PatternListener<string | Buffer> | undefined);
  }

  /** As unsubscribe(), for patterns. */
  punsubscribe(patterns?: string | readonly string[], listener?: PatternListener<string> | PatternListener<Buffer>): Promise<void> {
    if (this.subscriber === undefined) return Promise.resolve();
    return this.subscriber.unsubscribe("pattern", patterns, listener as PatternListener<string | Buffer> | undefined);
  }

  /** Channels and patterns that currently have a listener. */
  get subscriptions(): { channels: string[]; patterns: string[] } {
    return { channels: this.subscriber?.subscriptions("channel") ?? [], patterns: this.subscriber?.subscriptions("pattern") ?? [] };
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
