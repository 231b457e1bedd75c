// The backoff waits of commands between retries (TRYAGAIN, CLUSTERDOWN, a
// lost node). Held in one place so a new topology can cut them short (the
// slot may have an owner now) and close() can end them (the command then
// rejects rather than waiting out its backoff). Bounded like an offline
// queue: while every node is down, pooled node clients fail each dial at once
// and their commands come here to wait; past `limit` a command is refused
// rather than held (every queue bounded).
import { AbortError, ClientClosedError } from "../errors.js";

export class Sleeps {
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly isClosed: () => boolean,
    /** How many commands may wait at once (the node option offlineQueue.maxLength). */
    readonly limit: number,
  ) {}

  /** No room for another waiting command. */
  get full(): boolean {
    return this.wakers.size >= this.limit;
  }

  /** Resolves after `ms`, or when woken; rejects when the client closed meanwhile or `signal` aborts. */
  sleep(ms: number, signal: AbortSignal | undefined, name: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(new AbortError(name, false, { cause: signal.reason }));
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        signal?.removeEventListener("abort", onAbort);
      };
      const wake = (): void => {
        done();
        if (this.isClosed()) reject(new ClientClosedError());
        else resolve();
      };
      const onAbort = (): void => {
        done();
        reject(new AbortError(name, false, { cause: signal?.reason }));
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  wakeAll(): void {
    for (const wake of [...this.wakers]) wake();
  }
}
