// The contract between the Client and a transport. A transport knows sockets,
// queues and reconnects; it knows nothing of typed helpers, slots or
// sentinels, so a router (cluster, sentinel) can hold many of them.
import type { RedisError } from "./errors.js";
import type { Reply } from "./protocol/decode.js";
import type { Command } from "./protocol/encode.js";
import type { CommandOptions, Request } from "./request.js";
import type { RequestGroup } from "./request-group.js";
import type { Credentials } from "./options.js";

export type ClientStatus = "idle" | "connecting" | "ready" | "reconnecting" | "closing" | "closed";

import type { DisconnectReason } from "./connection/connection-owner.js";

export type { DisconnectReason };

export interface TransportEvents {
  ready(): void;
  disconnect(info: { reason: DisconnectReason; error: Error | undefined }): void;
  reconnecting(info: { attempt: number; delayMs: number }): void;
  error(error: RedisError): void;
  close(): void;
  /** Observers only (diagnostics channels): should waits be timed? Cheap; false when nobody listens. */
  observed?(): boolean;
  /** A caller waited `waitMs` for a pooled socket (called only while observed()). */
  poolWait?(info: { waitMs: number }): void;
  /** Commands waiting for the reconnect now (called only while observed()). */
  offlineQueue?(info: { depth: number }): void;
}

/** One socket lent to a caller for several commands in a row (WATCH/MULTI/EXEC, blocking pops). */
export interface DedicatedConnection {
  command(args: Command, options?: CommandOptions): Promise<Reply>;
}

/** What a pool of sockets holds right now. */
export interface PoolStats {
  /** Open sockets. */
  size: number;
  /** Open and idle. */
  available: number;
  /** Lent to a command or a withConnection callback. */
  borrowed: number;
  /** Callers waiting for a socket. */
  pending: number;
}

export interface Transport {
  readonly status: ClientStatus;
  /** Resolves once a connection is usable; rejects if the client ends first. */
  connect(): Promise<void>;
  /** Takes ownership of the request and settles it exactly once. */
  send(req: Request): void;
  /**
   * Takes ownership of a group: its members are written back to back on one
   * socket, with no other caller's command between them. `own`: the group
   * changes connection state, so it runs on a connection lent to it alone,
   * which is closed afterwards unless it was left as it was found (the
   * pooled transport always lends one).
   */
  sendGroup(group: RequestGroup, own: boolean): void;
  withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T>;
  /** Graceful: every accepted command settles (reply, error or its own deadline), then sockets close. */
  close(): Promise<void>;
  /** Now: every pending command rejects with ClientClosedError. */
  destroy(): void;
  /**
   * The server behind this transport changed (a Sentinel failover).
   * Drop the current sockets and dial again (each dial asks the address anew):
   * idle sockets close now, a socket in use is never reused. Commands written
   * and unanswered fail as on any socket loss (maybeExecuted). Optional.
   */
  invalidate?(): void;
  /**
   * Rotated credentials were pushed: open connections take them on without
   * losing what is in flight (AUTH in place where the connection allows it,
   * otherwise a fresh dial once it is idle).
   */
  reauthenticate?(credentials: Credentials): void;
  /** The pooled sockets (for the pipelined transport: its dedicated ones for blocking commands). */
  poolStats(): PoolStats;
}
