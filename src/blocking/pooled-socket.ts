// One pooled socket and what it is doing right now. Its role changes only in
// the pooled transport; `retired` is final (generic-pool no longer holds it).
import type { HealthCheck } from "../connection/health-check.js";
import type { RespSocket } from "../connection/resp-socket.js";
import type { Request } from "../request.js";

export type SocketRole =
  /** In the pool, free to lend. */
  | { kind: "idle" }
  /** Borrowed for one command. */
  | { kind: "job"; req: Request }
  /** Borrowed by withConnection(). */
  | { kind: "lent" }
  /** Destroyed through generic-pool (or about to be): never used again. */
  | { kind: "retired" };

export class PooledSocket {
  role: SocketRole = { kind: "idle" };
  /** Resolves once the socket's close event has come. */
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  constructor(
    readonly conn: RespSocket,
    /** Half-open detection while it is open (healthCheckIntervalMs), stopped when it closes. */
    private readonly health?: HealthCheck,
  ) {
    this.closed = new Promise<void>((resolve) => (this.markClosed = resolve));
  }

  /**
   * Can a command be written now, before any byte of it could be lost? A
   * server-closed socket stops being writable when its FIN is read, before
   * the close event; both checks are in memory, no round trip.
   */
  get usable(): boolean {
    return this.conn.isOpen && this.conn.socket.writable;
  }

  /** Writable and nothing in flight: safe to hand to the next caller. */
  get clean(): boolean {
    return this.usable && this.conn.inflightCount === 0;
  }

  /** Called by the owner from the RespSocket's onClose. */
  noteClosed(): void {
    this.health?.stop();
    this.markClosed();
  }
}

/**
 * What the pool's factory creates once the transport is closed, instead of a
 * socket. generic-pool cannot cancel an acquire and re-creates at once for
 * every acquire still waiting when a create fails, so rejecting would spin;
 * a tombstone ends the acquire, and its receiver destroys it on sight.
 */
export class Tombstone {}

export type Slot = PooledSocket | Tombstone;
