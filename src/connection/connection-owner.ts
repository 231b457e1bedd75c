// How a connection lives: the one state machine behind every socket respite
// keeps open (the pipelined transport's, the pub/sub subscriber's, the
// sentinel watcher's). It dials through a Connector, hands the ready socket
// to its user, notices the loss, waits the backoff, dials again, and ends.
// Its users supply only what differs: what to do when a connection becomes
// ready, what to do with the requests a lost one leaves unanswered, and
// whether a connection is still wanted.
//
//   idle --connect()--> connecting --handshake ok--> ready --lost--> backoff --timer--> connecting
//                          |                           |                ^
//                          +--dial failed (retryable)--)----------------+
//                          |                           +--lost after it proved stable--> connecting (at once)
//   fatal handshake reply (auth, wrong role), attempts exhausted --> closed
//   close(): ready/connecting --> closing (the user drains) --> closed;  destroy(): any --> closed
//
// One discriminated-union state and at most one live timer. Every transition
// commits its new state first, then runs its effects (the user's hooks, then
// the events, in order); an event is not emitted once a listener has moved the
// state on (a 'disconnect' listener that calls close() hears no
// 'reconnecting'), so no caller re-checks the state after an emit.
//
// A connection counts as a new start only once it has proven itself: served
// for stableMs after its user said it was serving (proven()). One lost
// sooner (a server that accepts and drops, a crash loop) continues the
// backoff where its dial left it, so nothing can make the owner dial in a
// tight loop.
import { ConnectionError, ProtocolError, RedisError } from "../errors.js";
import type { Request } from "../request.js";
import { createBackoff, isFatalConnectError, reconnectExhausted, type ReconnectPolicy } from "./backoff.js";
import type { Connector } from "./connector.js";
import { HealthCheck } from "./health-check.js";
import type { RespSocket, RespSocketEvents } from "./resp-socket.js";
import { realTimers, type Timers } from "./timers.js";

/** How long a connection must serve after it proved itself before its loss is redialled at once. */
export const STABLE_CONNECTION_MS = 1000;

export type DisconnectReason = "socket-closed" | "protocol-error" | "closing";

export type OwnerState =
  | { kind: "idle" }
  /** abort ends this attempt's dial and handshake at once. */
  | { kind: "connecting"; attempt: number; abort: AbortController }
  /** attempt: the dial that made it; provenAt: when its user said it serves (undefined until then). */
  | { kind: "ready"; conn: RespSocket; attempt: number; provenAt: number | undefined; health: HealthCheck | undefined }
  | { kind: "backoff"; attempt: number; timer: unknown }
  /** close() was called: the user drains `conn` (or waits for the dial `abort` belongs to). */
  | { kind: "closing"; conn: RespSocket | undefined; abort: AbortController | undefined }
  | { kind: "closed"; error: RedisError | undefined };

export interface OwnerEvents {
  ready?(): void;
  disconnect?(info: { reason: DisconnectReason; error: Error | undefined }): void;
  reconnecting?(info: { attempt: number; delayMs: number }): void;
  /** A dial failed, a protocol error, or the error that closed the owner. */
  error?(error: RedisError): void;
  /** An attempt failed: a dial, or a connection lost before it proved stable (attempt: consecutive failures). */
  attemptFailed?(error: RedisError, attempt: number): void;
  close?(): void;
}

export interface OwnerHooks {
  /** The socket's other events (drain, pushes); the owner keeps onClose. */
  socket?: Omit<RespSocketEvents, "onClose">;
  /** The new connection is the current one (state committed); runs before 'ready'. */
  ready?(conn: RespSocket): void;
  /**
   * The current connection died (or was dropped by invalidate()). The new
   * state is committed; settle or re-queue what it left unanswered.
   */
  lost?(conn: RespSocket, error: Error | undefined, unanswered: Request[]): void;
  /** A dial under close() connected: drain it (the state is closing with this conn). */
  closingWith?(conn: RespSocket): void;
  /** The owner is closed for good (state committed); fail whatever still waits. */
  closed?(error: RedisError | undefined): void;
  /** After a loss: is a connection still wanted? No: back to idle until connect(). Default yes. */
  wanted?(): boolean;
  /** Write one health-check probe on `conn` (with policy.healthCheckIntervalMs): its answer must be bytes on the socket. */
  probe?(conn: RespSocket): void;
}

export interface OwnerPolicy {
  reconnect: ReconnectPolicy;
  /** Delay before redial `attempt` (consecutive failures, from 1); default: the reconnect policy's backoff. */
  delayFor?: (attempt: number) => number;
  /** Prefix of the error when attempts are exhausted. */
  what?: string;
  /** Socket timers unref'd (a connection that must not keep the process alive). */
  unref?: boolean;
  stableMs?: number;
  /** Half-open detection (see health-check.ts); 0 or undefined: off. */
  healthCheckIntervalMs?: number;
}

export class ConnectionOwner {
  private st: OwnerState = { kind: "idle" };
  private readonly delayFor: (attempt: number) => number;

  constructor(
    private readonly connector: Connector,
    private readonly policy: OwnerPolicy,
    private readonly hooks: OwnerHooks,
    private readonly events: OwnerEvents,
    private readonly timers: Timers = realTimers,
  ) {
    const r = policy.reconnect;
    this.delayFor = policy.delayFor ?? createBackoff(r === false ? { initialDelayMs: 0, maxDelayMs: 0 } : r);
  }

  get state(): OwnerState {
    return this.st;
  }

  /** The current connection, when ready (or draining under close()). */
  get conn(): RespSocket | undefined {
    const st = this.st;
    return st.kind === "ready" || st.kind === "closing" ? st.conn : undefined;
  }

  /** Dial if idle; otherwise nothing (a dial or a backoff is already under way). */
  connect(): void {
    if (this.st.kind === "idle") void this.dial(0);
  }

  /** The user says the current connection serves (subscriptions confirmed...): its stability clock starts. */
  proven(conn: RespSocket): void {
    const st = this.st;
    if (st.kind === "ready" && st.conn === conn && st.provenAt === undefined) st.provenAt = this.timers.now();
  }

  /**
   * Graceful close. Ready: closing with the connection (the user drains it
   * and ends or destroys the socket; its close ends the owner). Dialing:
   * closing until the dial settles, or at once when `waitForDial` is false.
   * Otherwise closed now.
   */
  close(waitForDial: boolean): void {
    const st = this.st;
    switch (st.kind) {
      case "ready":
        st.health?.stop();
        this.st = { kind: "closing", conn: st.conn, abort: undefined };
        return;
      case "connecting":
        if (waitForDial) {
          this.st = { kind: "closing", conn: undefined, abort: st.abort };
          return;
        }
        st.abort.abort();
        this.enterClosed(undefined);
        return;
      case "closing":
        if (st.conn === undefined && !waitForDial) {
          st.abort?.abort();
          this.enterClosed(undefined);
        }
        return;
      case "closed":
        return;
      default:
        this.enterClosed(undefined);
    }
  }

  /** Now: the socket (if any) is abandoned; returns what it left unanswered, for the caller to settle. */
  destroy(): Request[] {
    const st = this.st;
    if (st.kind === "closed") return [];
    let unanswered: Request[] = [];
    if ((st.kind === "ready" || st.kind === "closing") && st.conn !== undefined) unanswered = st.conn.abandon();
    // A dial or handshake under way must not keep the process alive until connectTimeoutMs.
    if (st.kind === "connecting" || (st.kind === "closing" && st.conn === undefined)) st.abort?.abort();
    this.enterClosed(undefined);
    return unanswered;
  }

  /**
   * The server behind the connection changed (a Sentinel failover): drop the
   * socket as if it had died and dial now; a backoff ends now; a dial under
   * way may target the old server, so it starts again.
   */
  invalidate(cause: RedisError): void {
    const st = this.st;
    if (st.kind === "ready") {
      const unanswered = st.conn.abandon();
      this.onLost(st.conn, cause, unanswered, true);
    } else if (st.kind === "backoff") {
      if (st.timer !== undefined) this.timers.clearTimeout(st.timer);
      void this.dial(st.attempt);
    } else if (st.kind === "connecting") {
      st.abort.abort();
      void this.dial(st.attempt);
    }
  }

  // ---- transitions -------------------------------------------------------

  private async dial(attempt: number): Promise<void> {
    const st: OwnerState = { kind: "connecting", attempt, abort: new AbortController() };
    this.st = st;
    let conn: RespSocket;
    try {
      conn = await this.connector.open(
        { ...this.hooks.socket, onClose: (error, unanswered) => this.onClose(conn, error, unanswered) },
        st.abort.signal,
      );
    } catch (err) {
      const now = this.st as OwnerState;
      if (now !== st) {
        // Closed or destroyed while dialing: a close() that waited for this dial ends now.
        if (now.kind === "closing" && now.abort === st.abort) this.enterClosed(undefined);
        return;
      }
      const error = err instanceof RedisError ? err : new ConnectionError("Connection failed", "connect-failed", false, { cause: err });
      if (isFatalConnectError(error)) this.enterClosed(error);
      else this.enterBackoff(attempt + 1, error, [() => this.events.error?.(error), () => this.events.attemptFailed?.(error, attempt + 1)]);
      return;
    }
    const now = this.st as OwnerState;
    if (now !== st) {
      if (now.kind === "closing" && now.abort === st.abort) {
        this.st = { kind: "closing", conn, abort: undefined };
        this.hooks.closingWith?.(conn);
      } else {
        conn.abandon();
      }
      return;
    }
    if (this.policy.unref === true) conn.socket.unref();
    const interval = this.policy.healthCheckIntervalMs ?? 0;
    const probe = this.hooks.probe;
    const health = interval > 0 && probe !== undefined ? new HealthCheck(conn, interval, probe, this.timers) : undefined;
    const ready: OwnerState = { kind: "ready", conn, attempt, provenAt: undefined, health };
    this.st = ready;
    this.hooks.ready?.(conn);
    this.announce(ready, [() => this.events.ready?.()]);
  }

  private onClose(conn: RespSocket, error: Error | undefined, unanswered: Request[]): void {
    const st = this.st;
    if ((st.kind !== "ready" && st.kind !== "closing") || st.conn !== conn) {
      for (const r of unanswered) r.failConnection(error);
      return;
    }
    this.onLost(conn, error, unanswered, false);
  }

  private onLost(conn: RespSocket, error: Error | undefined, unanswered: Request[], changed: boolean): void {
    const st = this.st;
    if (st.kind === "ready") st.health?.stop();
    const protocol = error instanceof ProtocolError;
    const reason: DisconnectReason = st.kind === "closing" ? "closing" : protocol ? "protocol-error" : "socket-closed";
    // Each told on its own: a listener that closes the owner stops the rest of the story.
    const disconnected = [() => this.events.disconnect?.({ reason, error }), protocol ? () => this.events.error?.(error) : undefined];
    if (st.kind === "closing") {
      for (const r of unanswered) r.failConnection(error);
      this.enterClosed(undefined, disconnected);
      return;
    }
    if (st.kind !== "ready") return;
    // Runs first, before any listener: the requests of the dead socket are settled or re-queued whatever happens next.
    const settle = (): void => this.hooks.lost?.(conn, error, unanswered);
    const cause = error instanceof RedisError ? error : new ConnectionError("Connection lost", "socket-closed", false, { cause: error });
    if (this.policy.reconnect === false) {
      const closing = new ConnectionError("Connection lost and reconnect is disabled", "socket-closed", false, { cause: error });
      this.enterClosed(closing, [settle, ...disconnected]);
      return;
    }
    if (this.hooks.wanted?.() === false) {
      const idle: OwnerState = { kind: "idle" };
      this.st = idle;
      settle();
      this.announce(idle, disconnected);
      return;
    }
    const stable = st.provenAt !== undefined && this.timers.now() - st.provenAt >= (this.policy.stableMs ?? STABLE_CONNECTION_MS);
    // A connection that served a while (or whose server changed) earns an
    // immediate redial (attempt 1, no delay); one that died young continues
    // the backoff where its dial left it.
    if (stable || changed) this.enterBackoff(1, cause, [settle, ...disconnected], 0);
    else this.enterBackoff(st.attempt + 1, cause, [settle, ...disconnected, () => this.events.attemptFailed?.(cause, st.attempt + 1)]);
  }

  /**
   * Wait the backoff delay (the policy's, or `delayMs`), then dial. The
   * backoff state is committed before anyone hears of the failure; `told`
   * and 'reconnecting' are emitted in order while it stands; only then is the
   * dial made (no delay) or its timer armed. So a listener that closes the
   * owner cancels the dial instead of meeting one under way, and the delay
   * told is waited in full after it.
   */
  private enterBackoff(attempt: number, cause: RedisError, told: readonly ((() => void) | undefined)[], delayMs = Math.max(0, this.delayFor(attempt))): void {
    const exhausted = reconnectExhausted(this.policy.reconnect, attempt, cause, this.policy.what);
    if (exhausted !== undefined) {
      this.enterClosed(exhausted, told);
      return;
    }
    const st: { kind: "backoff"; attempt: number; timer: unknown } = { kind: "backoff", attempt, timer: undefined };
    this.st = st;
    this.announce(st, [...told, () => this.events.reconnecting?.({ attempt, delayMs })]);
    if (this.st !== st) return;
    if (delayMs === 0) void this.dial(attempt);
    else st.timer = this.timers.setTimeout(() => void this.dial(attempt), delayMs, this.policy.unref === true);
  }

  private enterClosed(error: RedisError | undefined, effects: readonly ((() => void) | undefined)[] = []): void {
    const st = this.st;
    if (st.kind === "closed") return;
    if (st.kind === "backoff" && st.timer !== undefined) this.timers.clearTimeout(st.timer);
    if (st.kind === "ready") st.health?.stop();
    if (st.kind === "connecting") st.abort.abort(); // a dial under way must not keep the process alive
    this.st = { kind: "closed", error };
    // The owner is closed whatever a listener does: every effect of the transition runs.
    for (const effect of effects) effect?.();
    this.hooks.closed?.(error);
    if (error !== undefined) this.events.error?.(error);
    this.events.close?.();
  }

  /**
   * Emit the events of the transition that committed `st`, in order, while
   * `st` is still the state: a listener may close or destroy the owner, and
   * then the rest of the story is no longer true.
   */
  private announce(st: OwnerState, emits: readonly ((() => void) | undefined)[]): void {
    for (const emit of emits) {
      if (this.st !== st) return;
      emit?.();
    }
  }
}
