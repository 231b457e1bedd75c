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
// Offline queue (differs from pipelined, on purpose): while the last dial
// failed and no socket is open, a new command waits for the next dial only
// (at most one backoff delay plus connectTimeoutMs) and gets its error if that
// fails too; `offlineQueue: false` rejects it at once; `offlineQueue.maxLength`
// bounds how many wait so.
import { setMaxListeners } from "node:events";
import type { Pool } from "generic-pool";
import { isFatalConnectError, reconnectBackoff, reconnectExhausted } from "../connection/backoff.js";
import { openConnection } from "../connection/handshake.js";
import { ClientClosedError, ConnectionError, ProtocolError, QueueFullError, RedisError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";
import { RequestState, type Request } from "../request.js";
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
  private readonly readyWaiters: { resolve(): void; reject(e: RedisError): void }[] = [];
  private closeDone: Promise<void> | undefined;
  private resolveClose: (() => void) | undefined;
  /** Resolves once every socket is closed, after close() or destroy(). */
  private teardownDone: Promise<void> = Promise.resolve();
  /** Aborted at teardown: a dial or handshake still under way then is for nobody, and must not keep the process alive. */
  private readonly dials = new AbortController();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly events: TransportEvents,
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
    this.waiters = new WaiterQueue(acquireTimeoutMs, () => this.maybeFinishClose());
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
    });
  }

  get status(): ClientStatus {
    switch (this.state.kind) {
      case "open":
        return this.up ? "ready" : this.gate.failing ? "reconnecting" : "connecting";
      default:
        return this.state.kind;
    }
  }

  poolStats(): PoolStats {
    return this.sockets.stats(this.waiters.live);
  }

  connect(): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
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
    this.waiters.add(req);
    this.line.pump();
  }

  async withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    const ps = await this.lend();
    const lent = new LentConnection(ps, this.options.db, this.options.commandTimeoutMs, () => this.closedError());
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
    if (this.state.kind === "closed") return;
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
   * Sentinel (issue 11): the server changed. Every socket open or being dialed
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

  // ---- admission and the line -----------------------------------------------

  /** Why a new command or lend cannot wait for a socket, if it cannot. */
  private refusal(name = "the command"): RedisError | undefined {
    const st = this.state;
    if (st.kind === "closed") return st.error ?? new ClientClosedError();
    if (st.kind === "closing") return new ClientClosedError();
    if (st.kind === "idle") {
      this.state = { kind: "open" };
      this.pool.start(); // dials min sockets
    }
    if (this.isOffline()) {
      const limit = this.options.offlineQueueLength;
      if (limit === 0) {
        return new ConnectionError(`Not connected; ${name} was not sent (offline queue disabled)`, "offline", false, { cause: this.lastError });
      }
      if (this.waiters.live >= limit) return new QueueFullError("offline", limit);
    }
    const { max, maxWaiting } = this.options.pool;
    const free = Math.max(0, max - this.pool.borrowed);
    if (this.waiters.live - free >= maxWaiting) return new QueueFullError("pool", maxWaiting);
    return undefined;
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

  // ---- sockets -----------------------------------------------------------------

  private async openSocket(): Promise<PooledSocket> {
    let ps: PooledSocket | undefined;
    const generation = this.sockets.dialGeneration;
    const conn = await openConnection(
      this.options,
      {
        onClose: (error, unanswered) => {
          if (ps !== undefined) this.onSocketClosed(ps, error, unanswered);
          else for (const r of unanswered) r.failConnection(error);
        },
      },
      this.dials.signal,
    );
    // The handshake always got an answer (PING at least): the dial is proven.
    ps = new PooledSocket(conn);
    // Ours before any listener runs: a 'ready' listener that destroys the client closes it too.
    this.sockets.add(ps, generation);
    if (!this.up && this.state.kind === "open") {
      this.up = true;
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
    const st = this.state;
    if (role.kind !== "retired" && st.kind !== "closed") {
      const protocol = error instanceof ProtocolError;
      this.events.disconnect({ reason: protocol ? "protocol-error" : "socket-closed", error });
      if (protocol && this.state === st) this.events.error(error);
      if (this.state !== st) this.listenerEnded();
    }
    if (role.kind !== "job") {
      // Idle: validation on borrow and the evictor remove it. Lent: its
      // commands fail here, and the socket is destroyed on release.
      for (const r of unanswered) r.failConnection(error);
      return;
    }
    this.line.retire(ps);
    for (const r of unanswered) {
      if (r === role.req && this.mayRetry(r)) {
        // Written and unanswered: it may have run. A read is worth one more
        // try on another socket; a write never is (issue 3).
        r.retried = true;
        r.state = RequestState.Queued;
        this.waiters.add(r, true);
        this.line.pump();
      } else {
        r.failConnection(error);
      }
    }
  }

  private mayRetry(r: Request): boolean {
    return this.options.retryReadOnly && r.readOnly && !r.retried && r.state === RequestState.Written && this.state.kind === "open";
  }

  /** The last dial failed and no socket is open: nothing can be served until a dial succeeds. */
  private isOffline(): boolean {
    return this.gate.failing && this.sockets.openCount() === 0;
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
    this.events.error(error);
    // An 'error' listener may have closed or destroyed the client: the
    // transition is then theirs (review finding: 'reconnecting' came after
    // 'close', and a close() from the listener could be followed by a dial).
    if (this.state !== st) {
      this.listenerEnded();
      return;
    }
    if (exhausted !== undefined) {
      this.enterClosed(exhausted);
      return;
    }
    if (st.kind === "open") this.events.reconnecting({ attempt, delayMs });
    if (this.sockets.openCount() === 0) this.waiters.failAll(error);
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
    if (this.waiters.live > 0 || this.sockets.anyBorrowed()) return;
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

  private enterClosed(error: RedisError | undefined): void {
    const st = this.state;
    if (st.kind === "closed") return;
    this.state = { kind: "closed", error };
    const failure = error ?? new ClientClosedError();
    this.gate.close(failure);
    this.waiters.failAll(failure);
    for (const w of this.readyWaiters.splice(0)) w.reject(failure);
    if (!(st.kind === "closing" && st.tearingDown)) this.teardownDone = this.teardown();
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
