// The pipelined transport: one full-duplex socket. Callers' commands queue in
// `queue`; the commands of one tick go out in one socket write (process.nextTick
// runs after the microtasks of the current I/O callback, so every caller woken
// by one chunk of replies gets its next command into the same write). The
// receiver side lives in RespSocket. The connection's life is one explicit
// state (see ARCHITECTURE.md), changed only by the enter*() transitions.
import { openConnection } from "../connection/handshake.js";
import { isFatalConnectError, reconnectBackoff, reconnectExhausted } from "../connection/backoff.js";
import { Deque } from "../connection/deque.js";
import type { RespSocket } from "../connection/resp-socket.js";
import { afterAnyWrite, ClientClosedError, ConnectionError, ProtocolError, QueueFullError, RedisError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";
import { RequestState, type Request } from "../request.js";
import type { RequestGroup } from "../request-group.js";
import type { ClientStatus, DedicatedConnection, PoolStats, Transport, TransportEvents } from "../transport.js";

type State =
  | { kind: "idle" }
  /** abort: ends this attempt's dial and handshake at once (destroy(), close() with nothing to send, invalidate()). */
  | { kind: "connecting"; attempt: number; abort: AbortController }
  /** attempt: the dial that made this connection; since: when it became ready. */
  | { kind: "ready"; conn: RespSocket; attempt: number; since: number }
  | { kind: "backoff"; attempt: number; timer: NodeJS.Timeout }
  /**
   * close() was called: accepted commands still go out and get their replies.
   * conn is undefined while the dial `dial` is still under way: the commands
   * accepted before close() still go out once it connects.
   */
  | { kind: "closing"; conn: RespSocket; dial?: undefined }
  | { kind: "closing"; conn: undefined; dial: Extract<State, { kind: "connecting" }> }
  | { kind: "closed"; error: RedisError | undefined };

/** How long a connection must stay up before its loss is redialled at once. */
const STABLE_CONNECTION_MS = 1000;


export class PipelinedTransport implements Transport {
  private state: State = { kind: "idle" };
  /** Accepted and not yet written, oldest first. Bounded by the offline queue limit or maxPending. */
  private readonly queue = new Deque<Request>();
  private flushScheduled = false;
  private readonly readyWaiters: { resolve(): void; reject(e: RedisError): void }[] = [];
  private readonly closeWaiters: (() => void)[] = [];
  private readonly backoffDelay: (attempt: number) => number;
  private isolated: Transport | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly events: TransportEvents,
    /** Dedicated connections for blocking commands and withConnection (a pooled transport). */
    private readonly createIsolated: () => Transport,
  ) {
    this.backoffDelay = reconnectBackoff(options.reconnect);
  }

  get status(): ClientStatus {
    switch (this.state.kind) {
      case "backoff":
        return "reconnecting";
      case "connecting":
        return this.state.attempt > 0 ? "reconnecting" : "connecting";
      default:
        return this.state.kind;
    }
  }

  connect(): Promise<void> {
    const st = this.state;
    if (st.kind === "ready") return Promise.resolve();
    if (st.kind === "closed" || st.kind === "closing") return Promise.reject(st.kind === "closed" && st.error ? st.error : closedError());
    return new Promise((resolve, reject) => {
      this.readyWaiters.push({ resolve, reject });
      if (st.kind === "idle") void this.enterConnecting(0);
    });
  }

  send(req: Request): void {
    if (req.sem.effect === "blocks") {
      // A blocking command would stall every reply behind it on the shared
      // pipe. (WAIT holds its reply too, yet stays here: it must answer about
      // the writes this socket carried.)
      this.dedicated().send(req);
      return;
    }
    const st = this.state;
    switch (st.kind) {
      case "ready":
        if (this.queue.length + st.conn.inflightCount >= this.options.maxPending) {
          req.fail(new QueueFullError("pending", this.options.maxPending));
          return;
        }
        this.queue.push(req);
        this.scheduleFlush();
        return;
      case "closing":
        req.failClosed();
        return;
      case "closed":
        if (st.error) req.fail(st.error);
        else req.failClosed();
        return;
      default:
        this.enqueueOffline(req);
        if (st.kind === "idle") void this.enterConnecting(0);
    }
  }

  /**
   * Queue a group back to back, all or none: the queue is written whole on
   * each flush, so its members leave in one write with no other caller's
   * command between them. Blocking flags are ignored (inside MULTI nothing
   * blocks, and a group is never split across sockets). A group that changes
   * connection state goes to a dedicated connection, never the shared one.
   */
  sendGroup(group: RequestGroup, own: boolean): void {
    if (own) {
      this.dedicated().sendGroup(group, true);
      return;
    }
    const reqs = group.requests;
    const st = this.state;
    switch (st.kind) {
      case "ready":
        if (this.queue.length + st.conn.inflightCount + reqs.length > this.options.maxPending) {
          group.failAll(() => new QueueFullError("pending", this.options.maxPending));
          return;
        }
        break;
      case "closing":
        group.failAll(() => new ClientClosedError());
        return;
      case "closed":
        group.failAll(() => st.error ?? new ClientClosedError());
        return;
      default: {
        const limit = this.options.offlineQueueLength;
        if (limit === 0) {
          group.failAll(() => new ConnectionError("Not connected; the batch was not sent (offline queue disabled)", "offline", false));
          return;
        }
        if (!this.offlineRoom(reqs.length)) {
          group.failAll(() => new QueueFullError("offline", limit));
          return;
        }
      }
    }
    for (const r of reqs) this.queue.push(r);
    if (st.kind === "ready") this.scheduleFlush();
    else if (st.kind === "idle") void this.enterConnecting(0);
  }

  withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    return this.dedicated().withConnection(fn);
  }

  close(): Promise<void> {
    const st = this.state;
    const isolated = this.isolated?.close() ?? Promise.resolve();
    if (st.kind === "closed") return isolated;
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    if (st.kind === "ready") {
      this.enterClosing(st.conn);
    } else if (st.kind === "connecting") {
      this.state = { kind: "closing", conn: undefined, dial: st };
      // Nothing accepted to send: the dial is for nobody; end it now, not at connectTimeoutMs.
      this.queue.retain((r) => r.state !== RequestState.Settled);
      if (this.queue.length === 0) st.abort.abort();
    } else if (st.kind !== "closing") {
      this.enterClosed(undefined);
    }
    return Promise.all([done, isolated]).then(() => undefined);
  }

  destroy(): void {
    const st = this.state;
    this.isolated?.destroy();
    if (st.kind === "closed") return;
    if (st.kind === "ready" || st.kind === "closing") {
      for (const r of st.conn?.abandon() ?? []) r.failClosed();
    }
    // A dial or handshake under way must not keep the process alive until connectTimeoutMs.
    if (st.kind === "connecting") st.abort.abort();
    else if (st.kind === "closing" && st.conn === undefined) st.dial.abort.abort();
    this.enterClosed(undefined);
  }

  /**
   * The server changed (a Sentinel failover). Ready: drop the socket as if it
   * had died (writes in flight fail with maybeExecuted, reads retry once) and
   * reconnect at once. Backing off: dial now. Connecting: the attempt under
   * way may target the old server; start a fresh one (the old one is
   * abandoned when it settles).
   */
  invalidate(): void {
    this.isolated?.invalidate?.();
    const st = this.state;
    if (st.kind === "ready") {
      const cause = new ConnectionError("The server changed (failover); reconnecting", "socket-closed", true);
      this.onConnectionLost(st.conn, cause, st.conn.abandon());
    } else if (st.kind === "backoff") {
      clearTimeout(st.timer);
      void this.enterConnecting(st.attempt);
    } else if (st.kind === "connecting") {
      st.abort.abort(); // it may target the old server
      void this.enterConnecting(st.attempt);
    }
  }

  poolStats(): PoolStats {
    return this.isolated?.poolStats() ?? { size: 0, available: 0, borrowed: 0, pending: 0 };
  }

  private dedicated(): Transport {
    this.isolated ??= this.createIsolated();
    return this.isolated;
  }

  private enqueueOffline(req: Request): void {
    const limit = this.options.offlineQueueLength;
    if (limit === 0) {
      req.fail(new ConnectionError(`Not connected; ${req.name} was not sent (offline queue disabled)`, "offline", false));
    } else if (!this.offlineRoom(1)) {
      req.fail(new QueueFullError("offline", limit));
    } else {
      this.queue.push(req);
    }
  }

  /**
   * Is there room for n more offline requests? Requests that timed out or
   * were aborted while queued stay in the queue until the next flush; they
   * hold no room.
   */
  private offlineRoom(n: number): boolean {
    const limit = this.options.offlineQueueLength;
    if (this.queue.length + n <= limit) return true;
    this.queue.retain((r) => r.state !== RequestState.Settled);
    return this.queue.length + n <= limit;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(this.flushTick);
  }

  private readonly flushTick = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  private flush(): void {
    const st = this.state;
    if ((st.kind !== "ready" && st.kind !== "closing") || st.conn === undefined || st.conn.needsDrain || this.queue.length === 0) return;
    st.conn.writeQueue(this.queue);
  }

  // ---- transitions -------------------------------------------------------

  private async enterConnecting(attempt: number): Promise<void> {
    const st: State = { kind: "connecting", attempt, abort: new AbortController() };
    this.state = st;
    let conn: RespSocket;
    try {
      conn = await openConnection(
        this.options,
        {
          onClose: (error, unanswered) => this.onConnectionLost(conn, error, unanswered),
          onDrain: () => {
            this.flush();
            this.endWhenSettled(conn);
          },
        },
        st.abort.signal,
      );
    } catch (err) {
      if (this.state !== st) {
        // Closed or destroyed while dialing; a close() that waited for this dial ends now.
        if (this.closingAfter(st)) this.enterClosed(undefined);
        return;
      }
      const error = err instanceof RedisError ? err : new ConnectionError("Connection failed", "connect-failed", false, { cause: err });
      // enterClosed(error) reports a fatal error itself: once.
      if (isFatalConnectError(error)) {
        this.enterClosed(error);
        return;
      }
      this.enterBackoff(attempt + 1, error, () => this.emitError(error));
      return;
    }
    if (this.state !== st) {
      if (this.closingAfter(st)) this.enterClosing(conn);
      else conn.abandon();
      return;
    }
    this.enterReady(conn, attempt);
  }

  /** Is the client closing and waiting for the dial `dial`? */
  private closingAfter(dial: State): boolean {
    return this.state.kind === "closing" && this.state.dial === dial;
  }

  private enterClosing(conn: RespSocket): void {
    this.state = { kind: "closing", conn };
    this.flush(); // accepted commands still go out; close() waits for their replies
    this.endWhenSettled(conn);
  }

  /**
   * Closing: once every accepted command has settled, end the socket. We
   * wait for the callers, not for the socket: a command that timed out keeps
   * its FIFO slot and its reply may never come (a hung server), and a queue
   * that cannot be written (a server that stopped reading) may never drain.
   * A socket still owing replies or bytes is destroyed instead of ended.
   */
  private endWhenSettled(conn: RespSocket): void {
    const st = this.state;
    if (st.kind !== "closing" || st.conn !== conn) return;
    this.queue.retain((r) => r.state !== RequestState.Settled);
    const waiting = [...this.queue.toArray(), ...conn.unsettledInflight()];
    if (waiting.length > 0) {
      void Promise.allSettled(waiting.map((r) => r.promise)).then(() => this.endWhenSettled(conn));
    } else if (conn.inflightCount === 0 && !conn.needsDrain) {
      conn.end();
    } else {
      conn.destroy();
    }
  }

  private enterReady(conn: RespSocket, attempt: number): void {
    const st: State = { kind: "ready", conn, attempt, since: Date.now() };
    this.state = st;
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    this.announce(st, [() => this.events.ready()]);
    this.flush();
  }

  /**
   * Wait the backoff delay, then dial. `first`: the events of what led here
   * (a loss, a failed dial), emitted after the new state is committed and
   * before `reconnecting`.
   */
  private enterBackoff(attempt: number, cause: RedisError, first?: () => void): void {
    const exhausted = reconnectExhausted(this.options.reconnect, attempt, cause);
    if (exhausted !== undefined) {
      this.enterClosed(exhausted, first);
      return;
    }
    const delayMs = this.backoffDelay(attempt);
    const st: State = { kind: "backoff", attempt, timer: setTimeout(() => void this.enterConnecting(attempt), delayMs) };
    this.state = st;
    this.announce(st, [first, () => this.events.reconnecting({ attempt, delayMs })]);
  }

  /** A proven connection was lost: dial again at once (attempt 1, no delay). */
  private redialNow(cause: RedisError, first: () => void): void {
    const exhausted = reconnectExhausted(this.options.reconnect, 1, cause);
    if (exhausted !== undefined) {
      this.enterClosed(exhausted, first);
      return;
    }
    void this.enterConnecting(1);
    this.announce(this.state, [first, () => this.events.reconnecting({ attempt: 1, delayMs: 0 })]);
  }

  private enterClosed(error: RedisError | undefined, first?: () => void): void {
    const st = this.state;
    if (st.kind === "closed") return;
    if (st.kind === "backoff") clearTimeout(st.timer);
    const closed: State = { kind: "closed", error };
    this.state = closed;
    for (const r of this.queue.drain()) {
      // A read re-queued for its retry was written once: it may have run (same rule as the pooled waiters).
      if (error) r.fail(afterAnyWrite(error, r.everWritten));
      else r.failClosed();
    }
    for (const w of this.readyWaiters.splice(0)) w.reject(error ?? closedError());
    // The client is closed whatever a listener does: every event of the transition is told.
    first?.();
    if (error) this.emitError(error);
    this.events.close();
    for (const resolve of this.closeWaiters.splice(0)) resolve();
  }

  /**
   * Emit the events of the transition that committed `st`, in order, while
   * `st` is still the state: a listener may close or destroy the client, and
   * then the rest of the story is no longer true.
   */
  private announce(st: State, emits: readonly ((() => void) | undefined)[]): void {
    for (const emit of emits) {
      if (this.state !== st) return;
      emit?.();
    }
  }

  private onConnectionLost(conn: RespSocket, error: Error | undefined, unanswered: Request[]): void {
    const st = this.state;
    if ((st.kind !== "ready" && st.kind !== "closing") || st.conn !== conn) {
      for (const r of unanswered) r.failConnection(error);
      return;
    }
    const protocol = error instanceof ProtocolError;
    const reason = st.kind === "closing" ? "closing" : protocol ? "protocol-error" : "socket-closed";
    const told = (): void => {
      this.events.disconnect({ reason, error });
      if (protocol) this.emitError(error);
    };
    if (st.kind === "closing") {
      for (const r of unanswered) r.failConnection(error);
      this.enterClosed(undefined, told);
      return;
    }
    // Written and unanswered: it may have run. Reads are retried once, first
    // in line after the reconnect; writes never are.
    const retry: Request[] = [];
    const canRetry = this.options.retryReadOnly && this.options.reconnect !== false;
    for (const r of unanswered) {
      if (r.state === RequestState.Settled) continue;
      if (canRetry && r.readOnly && !r.retried) {
        r.retried = true;
        r.state = RequestState.Queued;
        retry.push(r);
      } else {
        r.failConnection(error);
      }
    }
    for (let i = retry.length - 1; i >= 0; i--) this.queue.unshift(retry[i] as Request);
    if (this.options.reconnect === false) {
      this.enterClosed(new ConnectionError("Connection lost and reconnect is disabled", "socket-closed", false, { cause: error }), told);
      return;
    }
    // A connection that lived a while earns an immediate redial; one that died
    // right after its handshake (a server that accepts and drops, a crash
    // loop) continues the backoff where its dial left it, or a server with
    // no handshake to fail would be redialled in a tight loop.
    if (Date.now() - st.since < STABLE_CONNECTION_MS) this.enterBackoff(st.attempt + 1, lostError(error), told);
    else this.redialNow(lostError(error), told);
  }

  private emitError(error: RedisError): void {
    this.events.error(error);
  }
}

function closedError(): RedisError {
  return new ClientClosedError();
}

function lostError(cause: Error | undefined): RedisError {
  return cause instanceof RedisError ? cause : new ConnectionError("Connection lost right after it was set up", "socket-closed", false, { cause });
}
