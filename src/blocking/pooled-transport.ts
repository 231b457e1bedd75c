// The pooled transport: many sockets (a generic-pool), one command at a time
// on each. A command waits in our own line (bounded, acquireTimeoutMs) for a
// socket, is written, and when it settles the socket goes to the next caller
// (socket-dispatch.ts). Creates go through a DialGate (reconnect backoff, one
// probe while the server is down); while no socket is alive a failed dial
// rejects the callers waiting, so they learn of it in one dial, not at
// acquireTimeoutMs. Orphan acquires (their caller left) drive the
// backoff-paced redial while the server is down.
//
// This file is the transport's lifecycle (one State), admission to the line,
// and what happens when a socket opens or closes.
//
// Offline queue (the same as pipelined): while no socket is open and none has
// been proven since the last loss or failed dial, a new command waits for the
// reconnect, bounded by its own deadline and `offlineQueue.maxLength`;
// `offlineQueue: false` rejects it at once. acquireTimeoutMs bounds the wait
// for a busy pool only: a caller waiting for the server to come back is not
// waiting for a socket to be freed.
//
// Events and status describe the client's ability to serve, as on the
// pipelined transport: "ready" while a socket is open or can be opened
// without a failure; losing the last open socket is a `disconnect`, and a
// redial follows at once (`reconnecting`, then `ready`). One socket lost while
// others stay open changes nothing a caller can do, so it is not an event.
import { setMaxListeners } from "node:events";
import type { Pool } from "generic-pool";
import { isFatalConnectError, reconnectBackoff, reconnectExhausted } from "../connection/backoff.js";
import type { Connector } from "../connection/connector.js";
import { HealthCheck } from "../connection/health-check.js";
import { afterAnyWrite, ClientClosedError, ConnectionError, ProtocolError, QueueFullError, RedisError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";
import { internalRequest, RequestState, type Request } from "../request.js";
import type { RequestGroup } from "../request-group.js";
import type { ClientStatus, DedicatedConnection, PoolStats, Transport, TransportEvents } from "../transport.js";
import { DialGate } from "./dial-gate.js";
import { LentConnection } from "./lent-connection.js";
import { PooledSocket, Tombstone, type Slot } from "./pooled-socket.js";
import { SocketDispatch } from "./socket-dispatch.js";
import { createSocketPool } from "./socket-pool.js";
import { SocketSet } from "./socket-set.js";
import { WaiterQueue, type LendTicket } from "./waiters.js";

type State =
  | { kind: "idle" }
  | { kind: "open" }
  /** close() was called: accepted work finishes, then `tearingDown` closes the sockets. */
  | { kind: "closing"; tearingDown: boolean }
  | { kind: "closed"; error: RedisError | undefined };


export class PooledTransport implements Transport {
  private state: State = { kind: "idle" };
  private readonly pool: Pool<Slot>;
  private readonly gate: DialGate<PooledSocket>;
  private readonly waiters: WaiterQueue;
  /** Every socket generic-pool holds (until it is destroyed). */
  private readonly sockets = new SocketSet();
  private readonly line: SocketDispatch;
  private lastError: RedisError | undefined;
  /** A socket opened since the last failed dial: status "ready", connect() resolved. */
  private up = false;
  /** Commands accepted and not yet settled (waiting, in flight), as maxPending counts them. */
  private unsettled = 0;
  /** A socket was open once: without one now, the client is reconnecting, not connecting. */
  private everUp = false;
  private readonly readyWaiters: { resolve(): void; reject(e: RedisError): void }[] = [];
  private closeDone: Promise<void> | undefined;
  private resolveClose: (() => void) | undefined;
  /** Resolves once every socket is closed, after close() or destroy(). */
  private teardownDone: Promise<void> = Promise.resolve();
  /** Aborted at teardown: a dial or handshake still under way then is for nobody, and must not keep the process alive. */
  private readonly dials = new AbortController();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly connector: Connector,
    private readonly events: TransportEvents,
    /**
     * The pipelined client's pool of dedicated connections (blocking
     * commands, withConnection): its main connection already redials and
     * reports losses, and is the one offline while the server is down. Its
     * pool dials on demand only and waits as offline only after a failed dial.
     */
    private readonly dedicated = false,
  ) {
    // Every concurrent dial listens on this one signal (up to pool.max at once): not a leak.
    setMaxListeners(options.pool.max + 4, this.dials.signal);
    const { min, max, idleTimeoutMs, acquireTimeoutMs } = options.pool;
    this.gate = new DialGate<PooledSocket>(
      reconnectBackoff(options.reconnect),
      {
        opened: () => this.topUp(),
        failed: (info) => this.onDialFailed(info.error, info.attempt, info.delayMs),
        due: () => {
          this.topUp();
          this.line.pump();
        },
      },
    );
    this.waiters = new WaiterQueue(
      acquireTimeoutMs,
      () => this.maybeFinishClose(),
      () => this.isOffline(),
      () => events.observed?.() === true,
    );
    this.pool = createSocketPool<Slot>(
      {
        create: () => (this.gate.isClosed ? Promise.resolve(new Tombstone()) : this.gate.dial(() => this.openSocket())),
        destroy: (slot) => this.destroySlot(slot),
        usable: (slot) => slot instanceof Tombstone || (slot.usable && !this.sockets.isStale(slot)),
        // Idle sockets above min close after idleTimeoutMs (0: never).
        expired: (slot, idleMs) => !(slot instanceof Tombstone) && idleTimeoutMs > 0 && idleMs >= idleTimeoutMs && this.sockets.openCount() > min,
      },
      { min, max, evictionRunIntervalMs: Math.max(10, Math.min(1000, idleTimeoutMs > 0 ? idleTimeoutMs : 1000)) },
    );
    this.line = new SocketDispatch({
      pool: this.pool,
      waiters: this.waiters,
      gate: this.gate,
      sockets: this.sockets,
      max,
      isServing: () => this.state.kind === "open" || this.state.kind === "closing",
      isClosed: () => this.state.kind === "closed",
      settled: () => this.maybeFinishClose(),
      waited: (waitMs) => events.poolWait?.({ waitMs }),
    });
  }

  get status(): ClientStatus {
    switch (this.state.kind) {
      case "open":
        return this.up ? "ready" : this.gate.failing || this.everUp ? "reconnecting" : "connecting";
      default:
        return this.state.kind;
    }
  }

  poolStats(): PoolStats {
    return this.sockets.stats(this.waiters.live);
  }

  connect(): Promise<void> {
    const st = this.state;
    if (st.kind === "closed") return Promise.reject(st.error ?? new ClientClosedError());
    if (st.kind === "closing") return Promise.reject(new ClientClosedError());
    this.start();
    if (this.up || this.sockets.openCount() > 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.readyWaiters.push({ resolve, reject });
      // Dial one socket (it goes to the pool, idle) unless one is on its way.
      if (this.line.acquiring === 0 && this.pool.available === 0) this.line.acquireOne();
    });
  }

  send(req: Request): void {
    const refusal = this.refusal(req.name);
    if (refusal !== undefined) {
      req.fail(refusal);
      return;
    }
    this.accepted(1, req.promise);
    this.waiters.add(req);
    this.line.pump();
  }

  private accepted(n: number, settled: Promise<unknown>): void {
    this.unsettled += n;
    const done = (): void => {
      this.unsettled -= n;
    };
    settled.then(done, done);
  }

  sendGroup(group: RequestGroup): void {
    const refusal = this.refusal("the batch", group.requests.length);
    if (refusal !== undefined) {
      group.failAll(() => refusal);
      return;
    }
    this.accepted(group.requests.length, group.settled);
    // The whole group on one lent socket; it goes back once every member has
    // settled, reused only if the group left it as it found it.
    this.waiters.add({
      grant: (ps) => {
        const lent = this.lendTo(ps);
        for (const r of group.requests) lent.send(r);
        group.whenSettled(() => this.line.giveBack(ps, lent));
      },
      fail: (error: RedisError) => group.failAll((r) => afterAnyWrite(error, r.everWritten)),
      whenGone: (callback) => group.whenSettled(callback),
    });
    this.line.pump();
  }

  async withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    const ps = await this.lend();
    const lent = this.lendTo(ps);
    try {
      return await fn(lent);
    } finally {
      this.line.giveBack(ps, lent);
    }
  }

  close(): Promise<void> {
    const st = this.state;
    switch (st.kind) {
      case "idle":
        this.enterClosed(undefined);
        return this.teardownDone;
      case "closed":
        return this.teardownDone;
      case "closing":
        return this.closeDone ?? this.teardownDone;
      case "open":
        break;
    }
    this.state = { kind: "closing", tearingDown: false };
    this.closeDone = new Promise<void>((resolve) => (this.resolveClose = resolve));
    // With the server down nothing waiting can be served: do not wait for the next dial.
    if (this.isOffline()) this.waiters.failAll(new ClientClosedError());
    for (const w of this.readyWaiters.splice(0)) w.reject(new ClientClosedError());
    this.maybeFinishClose();
    return this.closeDone;
  }

  destroy(): void {
    // Also after the transport closed itself (attempts exhausted, a fatal
    // error): sockets still out on loan are ended here, or their commands
    // and generic-pool's drain would wait for them.
    this.enterClosed(undefined);
    for (const ps of this.sockets.snapshot()) {
      if (ps.role.kind !== "job" && ps.role.kind !== "lent") continue;
      const unanswered = ps.conn.abandon();
      ps.noteClosed();
      this.line.retire(ps);
      for (const r of unanswered) r.failClosed();
    }
  }

  /**
   * The server changed (a Sentinel failover). Every socket open or being dialed
   * now is stale: idle ones close at once, borrowed ones are destroyed when
   * they come back (never lent again), and a dial waiting out its backoff
   * goes now.
   */
  invalidate(): void {
    const st = this.state.kind;
    if (st !== "open" && st !== "closing") return;
    this.sockets.invalidate();
    this.gate.expedite();
  }

  /**
   * Rotated credentials: every socket open now is replaced by one dialled
   * with them (the provider is asked on each dial): idle ones close at once,
   * borrowed ones when they come back, so nothing in flight is lost.
   */
  reauthenticate(): void {
    this.invalidate();
  }

  // ---- admission and the line -----------------------------------------------

  /** Why `count` new commands (or a lend) cannot wait for a socket, if they cannot. */
  private refusal(name = "the command", count = 1): RedisError | undefined {
    const st = this.state;
    if (st.kind === "closed") return st.error ?? new ClientClosedError();
    if (st.kind === "closing") return new ClientClosedError();
    this.start();
    if (this.isOffline()) {
      const limit = this.options.offlineQueueLength;
      if (limit === 0) {
        return new ConnectionError(`Not connected; ${name} was not sent (offline queue disabled)`, "offline", false, { cause: this.lastError });
      }
      if (this.waiters.live + count > limit) return new QueueFullError("offline", limit);
    }
    // The same bound as the pipelined transport's: accepted and not yet settled, waiting or in flight.
    const { maxPending } = this.options;
    if (this.unsettled + count > maxPending) return new QueueFullError("pending", maxPending);
    return undefined;
  }

  /** The first command, lend or connect() opens the pool (it dials min sockets). */
  private start(): void {
    if (this.state.kind !== "idle") return;
    this.state = { kind: "open" };
    this.pool.start();
  }

  private lend(): Promise<PooledSocket> {
    return new Promise<PooledSocket>((resolve, reject) => {
      const refusal = this.refusal("withConnection");
      if (refusal !== undefined) {
        reject(refusal);
        return;
      }
      const ticket: LendTicket = { grant: resolve, fail: reject };
      this.waiters.add(ticket);
      this.line.pump();
    });
  }

  private lendTo(ps: PooledSocket): LentConnection {
    return new LentConnection(ps, this.options.db, this.options.commandTimeoutMs, () => this.closedError());
  }

  // ---- sockets -----------------------------------------------------------------

  private async openSocket(): Promise<PooledSocket> {
    let ps: PooledSocket | undefined;
    const generation = this.sockets.dialGeneration;
    const conn = await this.connector.open(
      {
        onClose: (error, unanswered) => {
          if (ps !== undefined) this.onSocketClosed(ps, error, unanswered);
          else for (const r of unanswered) r.failConnection(error);
        },
      },
      this.dials.signal,
    );
    // The handshake always got an answer (PING at least): the dial is proven.
    const interval = this.options.healthCheckIntervalMs;
    // A PING in the socket's FIFO like any command; it never makes a socket unclean for long (its reply comes first).
    ps = new PooledSocket(conn, interval > 0 ? new HealthCheck(conn, interval, (c) => void c.write(internalRequest(["PING"]))) : undefined);
    // Ours before any listener runs: a 'ready' listener that destroys the client closes it too.
    this.sockets.add(ps, generation);
    if (!this.up && this.state.kind === "open") {
      this.up = true;
      this.everUp = true;
      this.lastError = undefined;
      for (const w of this.readyWaiters.splice(0)) w.resolve();
      this.events.ready();
    }
    return ps;
  }

  /** generic-pool's factory.destroy: idle eviction, failed validation, clear(), or our retire(). */
  private destroySlot(slot: Slot): Promise<void> {
    if (slot instanceof Tombstone) return Promise.resolve();
    slot.role = { kind: "retired" };
    this.sockets.delete(slot);
    if (!slot.conn.isOpen) return Promise.resolve();
    slot.conn.destroy();
    return slot.closed;
  }

  private onSocketClosed(ps: PooledSocket, error: Error | undefined, unanswered: Request[]): void {
    ps.noteClosed();
    const role = ps.role;
    if (role.kind !== "job") {
      // Idle: validation on borrow and the evictor remove it. Lent: its
      // commands fail here, and the socket is destroyed on release.
      for (const r of unanswered) r.failConnection(error);
    } else {
      this.line.retire(ps);
      for (const r of unanswered) {
        if (r === role.req && this.mayRetry(r)) {
          // Written and unanswered: it may have run. A read is worth one more
          // try on another socket; a write never is.
          r.retried = true;
          r.state = RequestState.Queued;
          this.waiters.add(r, true);
          this.line.pump();
        } else {
          r.failConnection(error);
        }
      }
    }
    if (role.kind !== "retired") this.maybeLost(error);
  }

  /**
   * A socket the server (or the network) closed. While another socket is
   * open the client can still serve: nothing to tell. The last one lost is a
   * disconnect, and a redial follows at once, as on the pipelined transport.
   */
  private maybeLost(error: Error | undefined): void {
    const st = this.state;
    if (st.kind !== "open" || !this.up || this.sockets.openCount() > 0) return;
    this.up = false;
    if (this.dedicated) return;
    const protocol = error instanceof ProtocolError;
    const redial = this.options.reconnect !== false;
    if (redial) this.line.acquireOne(); // commit the redial before anyone hears of the loss
    else {
      this.enterClosed(new ConnectionError("Connection lost and reconnect is disabled", "socket-closed", false, { cause: error }), () =>
        this.events.disconnect({ reason: protocol ? "protocol-error" : "socket-closed", error }),
      );
      return;
    }
    this.announce(st, [
      () => this.events.disconnect({ reason: protocol ? "protocol-error" : "socket-closed", error }),
      protocol ? () => this.events.error(error) : undefined,
      redial ? () => this.events.reconnecting({ attempt: 1, delayMs: 0 }) : undefined,
    ]);
  }

  /** Emit a transition's events in order while its state `st` stands (a listener may close or destroy the client). */
  private announce(st: State, emits: readonly ((() => void) | undefined)[]): void {
    for (const emit of emits) {
      if (this.state !== st) {
        this.listenerEnded();
        return;
      }
      emit?.();
    }
    if (this.state !== st) this.listenerEnded();
  }

  private mayRetry(r: Request): boolean {
    return this.options.retryReadOnly && r.readOnly && !r.retried && r.state === RequestState.Written && this.state.kind === "open";
  }

  /** No socket is open and none has been proven since the last loss or failed dial: callers wait for the reconnect. */
  private isOffline(): boolean {
    if (this.sockets.openCount() > 0) return false;
    return this.dedicated ? this.gate.failing : !this.up;
  }

  /**
   * generic-pool restores min only when it destroys a socket; after failed
   * creates nothing would retry. Acquires (that hand their sockets back)
   * make it create the missing ones.
   */
  private topUp(): void {
    if (this.state.kind !== "open") return;
    const { min, max } = this.options.pool;
    if (min === 0 || this.pool.available > 0) return;
    for (let need = min - this.pool.size; need > 0 && this.pool.borrowed + this.line.acquiring < max; need--) this.line.acquireOne();
  }

  // ---- health and lifecycle ------------------------------------------------------

  private onDialFailed(cause: unknown, attempt: number, delayMs: number): void {
    const error = cause instanceof RedisError ? cause : new ConnectionError("Connection failed", "connect-failed", false, { cause });
    this.lastError = error;
    this.up = false;
    const st = this.state;
    if (st.kind === "closed") return;
    if (isFatalConnectError(error)) {
      // A wrong password stays wrong: end here, no retry loop.
      this.enterClosed(error);
      return;
    }
    const exhausted = reconnectExhausted(this.options.reconnect, attempt, error);
    if (exhausted !== undefined) {
      this.enterClosed(exhausted, () => this.events.error(error));
      return;
    }
    // The gate already waits out the delay; callers in line keep waiting for the reconnect.
    this.announce(st, [() => this.events.error(error), st.kind === "open" ? () => this.events.reconnecting({ attempt, delayMs }) : undefined]);
  }

  /**
   * A listener called close() or destroy() while we reported a socket's loss
   * or a failed dial. destroy() finished the job itself. close() would serve
   * the callers in line, but with no socket open that takes a new dial: they
   * get ClientClosedError instead, as from close() while the server is down
   * (and as on the pipelined transport).
   */
  private listenerEnded(): void {
    if (this.state.kind === "closing" && this.sockets.openCount() === 0) {
      this.waiters.failAll(new ClientClosedError());
      this.maybeFinishClose();
    }
  }

  private maybeFinishClose(): void {
    const st = this.state;
    if (st.kind !== "closing" || st.tearingDown) return;
    if (this.waiters.live > 0 || this.sockets.busyCount() > 0) return;
    this.state = { kind: "closing", tearingDown: true };
    this.teardownDone = this.teardown();
    void this.teardownDone.then(() => this.enterClosed(undefined));
  }

  /** No dial after this; wait for generic-pool's acquires and loans, then close every idle socket. */
  private async teardown(): Promise<void> {
    this.gate.close(new ClientClosedError());
    // Nobody waits for a dial still under way (its creates end as tombstones):
    // abandon it now, not at connectTimeoutMs (generic-pool's clear() waits for it).
    this.dials.abort();
    try {
      await this.pool.drain(); // also stops the evictor's timer
      await this.pool.clear();
    } catch {
      // generic-pool rejects only on misuse; the sockets are closed either way.
    }
  }

  private enterClosed(error: RedisError | undefined, first?: () => void): void {
    const st = this.state;
    if (st.kind === "closed") return;
    this.state = { kind: "closed", error };
    const failure = error ?? new ClientClosedError();
    this.gate.close(failure);
    this.waiters.failAll(failure);
    for (const w of this.readyWaiters.splice(0)) w.reject(failure);
    if (!(st.kind === "closing" && st.tearingDown)) this.teardownDone = this.teardown();
    // The client is closed whatever a listener does: every event of the transition is told.
    first?.();
    if (error !== undefined) this.events.error(error);
    this.events.close();
    const resolveClose = this.resolveClose;
    if (resolveClose !== undefined) void this.teardownDone.then(resolveClose);
  }

  private closedError(): RedisError | undefined {
    const st = this.state;
    return st.kind === "closed" ? (st.error ?? new ClientClosedError()) : undefined;
  }
}
