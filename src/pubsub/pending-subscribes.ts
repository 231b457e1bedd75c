// subscribe() calls waiting for the server to confirm their names. Each call
// resolves once every name it asked for is confirmed (or nobody wants it any
// more), rejects when the server refuses one, and times out after
// commandTimeoutMs. Indexed by name, so a confirmation costs O(its waiters).
import { TimeoutError, type RedisError } from "../errors.js";
import type { Kind } from "./listeners.js";

interface Waiter {
  kind: Kind;
  pending: Set<string>;
  resolve(): void;
  reject(error: RedisError): void;
  timer: NodeJS.Timeout | undefined;
}

export class PendingSubscribes {
  private readonly waiters = new Set<Waiter>();
  private readonly waitingFor: Record<Kind, Map<string, Set<Waiter>>> = { channel: new Map(), pattern: new Map(), shard: new Map() };

  get size(): number {
    return this.waiters.size;
  }

  /**
   * Resolves once every name of `pending` is settled. After `timeoutMs` (0:
   * never) it stops waiting, calls `onTimeout`, and rejects with a
   * TimeoutError for `command`.
   */
  wait(kind: Kind, pending: Set<string>, command: string, timeoutMs: number, onTimeout: (error: TimeoutError) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { kind, pending, resolve, reject, timer: undefined };
      if (timeoutMs > 0) {
        waiter.timer = setTimeout(() => {
          const error = new TimeoutError(command, timeoutMs, true);
          this.drop(waiter);
          onTimeout(error);
          reject(error);
        }, timeoutMs);
      }
      this.waiters.add(waiter);
      for (const name of pending) {
        let set = this.waitingFor[kind].get(name);
        if (set === undefined) this.waitingFor[kind].set(name, (set = new Set()));
        set.add(waiter);
      }
    });
  }

  /** `name` is confirmed, or nobody wants it any more: it no longer holds up the calls that asked for it. */
  settled(kind: Kind, name: string): void {
    for (const w of this.take(kind, name)) {
      w.pending.delete(name);
      if (w.pending.size === 0) this.settle(w, undefined);
    }
  }

  /** The server refused `name`: every call that asked for it rejects with `error`. */
  refused(kind: Kind, name: string, error: RedisError): void {
    for (const w of this.take(kind, name)) this.settle(w, error);
  }

  rejectAll(error: RedisError): void {
    for (const w of [...this.waiters]) this.settle(w, error);
  }

  private settle(w: Waiter, error: RedisError | undefined): void {
    if (!this.drop(w)) return;
    if (error === undefined) w.resolve();
    else w.reject(error);
  }

  /** Forget a waiter without settling it. False if it was already gone. */
  private drop(w: Waiter): boolean {
    if (!this.waiters.delete(w)) return false;
    if (w.timer !== undefined) clearTimeout(w.timer);
    for (const name of w.pending) {
      const set = this.waitingFor[w.kind].get(name);
      set?.delete(w);
      if (set?.size === 0) this.waitingFor[w.kind].delete(name);
    }
    return true;
  }

  private take(kind: Kind, name: string): Set<Waiter> {
    const set = this.waitingFor[kind].get(name);
    this.waitingFor[kind].delete(name);
    return set ?? new Set();
  }
}
