// Requests that must be written back to back on one socket and live and die
// together: MULTI … EXEC of an atomic batch (with ASKING ahead of it on a
// cluster), or a batch that needs a connection of its own. The members carry
// no deadline or signal of their own: one member dropped by its own timer
// while the others go out would leave a hole in the transaction, or the
// socket inside MULTI. The group's deadline and signal fail every unsettled
// member at the same moment instead, each with its own maybeExecuted (was it
// handed to a socket?), so a transport never holds a half-live group and
// close() never waits for a member its caller gave up on.
import { AbortError, TimeoutError, type RedisError } from "./errors.js";
import { Request } from "./request.js";
import type { Command } from "./protocol/encode.js";

export interface GroupOptions {
  /** Deadline for the whole group, in ms; 0 = none. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Return bulk strings as Buffers for these member indexes (all when true). */
  returnBuffers?: boolean | ((index: number) => boolean);
}

export class RequestGroup {
  readonly requests: readonly Request[];
  /** Resolves once every member has settled. */
  readonly settled: Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: (() => void) | undefined;

  constructor(commands: readonly Command[], options: GroupOptions) {
    const wants = options.returnBuffers;
    this.requests = commands.map(
      (c, i) => new Request(c, { timeoutMs: 0, returnBuffers: typeof wants === "function" ? wants(i) : wants === true }, 0),
    );
    // After a reconnect a member alone is not the group: never re-send one.
    for (const r of this.requests) {
      r.retried = true;
      r.group = this;
    }
    this.settled = Promise.allSettled(this.requests.map((r) => r.promise)).then(() => this.clear());
    const { timeoutMs, signal } = options;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.failAll((r) => new AbortError(r.name, r.everWritten, { cause: signal.reason }));
        return;
      }
      this.signal = signal;
      this.onAbort = () => this.failAll((r) => new AbortError(r.name, r.everWritten, { cause: signal.reason }));
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(() => this.failAll((r) => new TimeoutError(r.name, timeoutMs, r.everWritten)), timeoutMs);
    }
  }

  /** Every member has settled. */
  get done(): boolean {
    return this.requests.every((r) => r.settled);
  }

  /** Fail every unsettled member with the error `make` builds for it. */
  failAll(make: (r: Request) => RedisError): void {
    for (const r of this.requests) if (!r.settled) r.fail(make(r));
  }

  /** Call `callback` once every member has settled. */
  whenSettled(callback: () => void): void {
    void this.settled.then(callback);
  }

  private clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal?.removeEventListener("abort", this.onAbort);
  }
}
