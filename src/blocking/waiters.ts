// Callers waiting for a pooled socket, oldest first: a command, a group of
// commands (a batch), or a withConnection() callback. Each waits for a busy
// pool at most acquireTimeoutMs (0 = no limit); while the transport is
// offline it waits for the reconnect instead, bounded by its own deadline. A
// command or group that settles while waiting (its own deadline, its signal)
// leaves the line at once; its entry is skipped when reached.
import { Deque } from "../connection/deque.js";
import { afterAnyWrite, PoolTimeoutError, type RedisError } from "../errors.js";
import type { Request } from "../request.js";
import type { PooledSocket } from "./pooled-socket.js";

export interface LendTicket {
  grant(socket: PooledSocket): void;
  fail(error: RedisError): void;
  /** Calls back once the caller needs no socket any more (a group whose members all settled). */
  whenGone?(callback: () => void): void;
}

export class Waiter {
  done = false;
  /** Already put back once because its socket turned out dead before any byte went out. */
  requeued = false;
  timer: NodeJS.Timeout | undefined;
  /** performance.now() when it joined the line, when someone observes pool waits; 0 otherwise. */
  since = 0;

  constructor(readonly target: Request | LendTicket) {}

  fail(error: RedisError): void {
    const t = this.target;
    // A read put back in line after its socket died was written once: it may
    // have run, whatever stops it now (everWritten, as every transport).
    if ("promise" in t) t.fail(afterAnyWrite(error, t.everWritten));
    else t.fail(error);
  }
}

export class WaiterQueue {
  private readonly queue = new Deque<Waiter>();
  /** Waiters not yet served, failed or gone. */
  live = 0;

  constructor(
    private readonly acquireTimeoutMs: number,
    /** A waiter left the line without being served. */
    private readonly onLeave: () => void,
    /** The transport is waiting for the server to come back, not for a socket to be freed. */
    private readonly offline: () => boolean,
    /** Does anyone observe pool waits (then each waiter's join time is taken)? */
    private readonly timed: () => boolean = () => false,
  ) {}

  add(target: Request | LendTicket, front = false): Waiter {
    const w = new Waiter(target);
    this.track(w);
    if (front) this.queue.unshift(w);
    else this.queue.push(w);
    return w;
  }

  /** Put a waiter back at the head of the line (its socket died before use). */
  readd(w: Waiter): void {
    w.done = false;
    this.track(w);
    this.queue.unshift(w);
  }

  /** The oldest live waiter, out of the line. */
  take(): Waiter | undefined {
    let w: Waiter | undefined;
    while ((w = this.queue.shift()) !== undefined) {
      if (w.done) continue;
      this.leave(w);
      return w;
    }
    return undefined;
  }

  failAll(error: RedisError): void {
    let w: Waiter | undefined;
    while ((w = this.take()) !== undefined) w.fail(error);
  }

  private track(w: Waiter): void {
    this.live++;
    if (this.timed()) w.since = performance.now();
    this.arm(w);
    const t = w.target;
    if ("promise" in t) t.whenSettled(() => this.drop(w));
    else t.whenGone?.(() => this.drop(w));
  }

  private arm(w: Waiter): void {
    if (!(this.acquireTimeoutMs > 0 && Number.isFinite(this.acquireTimeoutMs))) return;
    w.timer = setTimeout(() => {
      if (w.done) return;
      if (this.offline()) {
        this.arm(w); // waiting for the reconnect, not for a socket: its own deadline bounds it
        return;
      }
      this.drop(w);
      w.fail(new PoolTimeoutError(this.acquireTimeoutMs));
    }, this.acquireTimeoutMs);
  }

  private leave(w: Waiter): void {
    w.done = true;
    this.live--;
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.timer = undefined;
  }

  private drop(w: Waiter): void {
    if (w.done) return;
    this.leave(w);
    // Entries of waiters that left stay in the ring until reached; compact
    // when they dominate, so a pool exhausted for long cannot grow it.
    if (this.queue.length > 64 && this.queue.length > 2 * this.live) {
      for (const x of this.queue.drain()) if (!x.done) this.queue.push(x);
    }
    this.onLeave();
  }
}
