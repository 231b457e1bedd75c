// The pipelined transport: one full-duplex socket. Callers' commands queue in
// `queue`; the commands of one tick go out in one socket write (process.nextTick
// runs after the microtasks of the current I/O callback, so every caller woken
// by one chunk of replies gets its next command into the same write). The
// receiver side lives in RespSocket; how the connection lives (dial, backoff,
// loss, close) is the ConnectionOwner's. This file is the queue: what waits
// while there is no connection, what is flushed when there is one, what a
// lost connection's requests become, and the graceful drain under close().
import { ConnectionOwner } from "../connection/connection-owner.js";
import type { Connector } from "../connection/connector.js";
import { Deque } from "../connection/deque.js";
import type { RespSocket } from "../connection/resp-socket.js";
import { afterAnyWrite, ClientClosedError, ConnectionError, QueueFullError, RedisError } from "../errors.js";
import type { Credentials, ResolvedOptions } from "../options.js";
import { internalRequest, RequestState, type Request } from "../request.js";
import type { RequestGroup } from "../request-group.js";
import type { ClientStatus, DedicatedConnection, PoolStats, Transport, TransportEvents } from "../transport.js";

export class PipelinedTransport implements Transport {
  private readonly owner: ConnectionOwner;
  /** Accepted and not yet written, oldest first. Bounded by the offline queue limit or maxPending. */
  private readonly queue = new Deque<Request>();
  private flushScheduled = false;
  private readonly readyWaiters: { resolve(): void; reject(e: RedisError): void }[] = [];
  private readonly closeWaiters: (() => void)[] = [];
  private isolated: Transport | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    connector: Connector,
    private readonly events: TransportEvents,
    /** Dedicated connections for blocking commands and withConnection (a pooled transport). */
    private readonly createIsolated: () => Transport,
  ) {
    this.owner = new ConnectionOwner(
      connector,
      { reconnect: options.reconnect, healthCheckIntervalMs: options.healthCheckIntervalMs },
      {
        socket: {
          onDrain: () => {
            this.flush();
            this.endWhenSettled();
          },
        },
        ready: (conn) => {
          // The handshake was answered: the connection serves from now on (its stability clock starts).
          this.owner.proven(conn);
          for (const w of this.readyWaiters.splice(0)) w.resolve();
          const queued = this.queue.length;
          this.flush();
          if (queued > 0 && events.observed?.() === true) events.offlineQueue?.({ depth: 0 });
        },
        lost: (_conn, error, unanswered) => this.requeue(error, unanswered),
        // A PING in the FIFO like any command: its reply is the proof of life.
        probe: (conn) => void conn.write(internalRequest(["PING"])),
        closingWith: () => this.drain(),
        closed: (error) => this.closed(error),
      },
      {
        ready: () => events.ready(),
        disconnect: (info) => events.disconnect(info),
        reconnecting: (info) => events.reconnecting(info),
        error: (error) => events.error(error),
        close: () => events.close(),
      },
    );
  }

  get status(): ClientStatus {
    const st = this.owner.state;
    switch (st.kind) {
      case "backoff":
        return "reconnecting";
      case "connecting":
        return st.attempt > 0 ? "reconnecting" : "connecting";
      default:
        return st.kind;
    }
  }

  connect(): Promise<void> {
    const st = this.owner.state;
    if (st.kind === "ready") return Promise.resolve();
    if (st.kind === "closed" || st.kind === "closing") return Promise.reject(st.kind === "closed" && st.error ? st.error : new ClientClosedError());
    return new Promise((resolve, reject) => {
      this.readyWaiters.push({ resolve, reject });
      this.owner.connect();
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
    const st = this.owner.state;
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
        this.owner.connect();
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
    const st = this.owner.state;
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
        if (this.queue.length + reqs.length > this.options.maxPending) {
          group.failAll(() => new QueueFullError("pending", this.options.maxPending));
          return;
        }
      }
    }
    for (const r of reqs) this.queue.push(r);
    if (st.kind === "ready") this.scheduleFlush();
    else this.owner.connect();
  }

  withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    return this.dedicated().withConnection(fn);
  }

  close(): Promise<void> {
    const isolated = this.isolated?.close() ?? Promise.resolve();
    const st = this.owner.state;
    if (st.kind === "closed") return isolated;
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    // Dialing with nothing accepted to send: the dial is for nobody; end it now, not at connectTimeoutMs.
    this.queue.retain((r) => r.state !== RequestState.Settled);
    this.owner.close(this.queue.length > 0);
    this.drain();
    return Promise.all([done, isolated]).then(() => undefined);
  }

  destroy(): void {
    this.isolated?.destroy();
    for (const r of this.owner.destroy()) r.failClosed();
  }

  invalidate(): void {
    this.isolated?.invalidate?.();
    this.owner.invalidate(new ConnectionError("The server changed (failover); reconnecting", "socket-closed", true));
  }

  /**
   * AUTH in place, in the queue's order: commands before it ran as the old
   * user, commands after it as the new one, none is lost. If the server
   * refuses, the connection is dropped and redialled (asking the provider).
   */
  reauthenticate(credentials: Credentials): void {
    this.isolated?.reauthenticate?.(credentials);
    if (this.owner.state.kind !== "ready") return; // the next dial asks the provider anyway
    const auth = internalRequest(credentials.username === undefined ? ["AUTH", credentials.password] : ["AUTH", credentials.username, credentials.password]);
    auth.promise.catch(() => this.owner.invalidate(new ConnectionError("The server refused the rotated credentials; reconnecting", "socket-closed", true)));
    this.queue.push(auth);
    this.scheduleFlush();
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
    } else if (this.queue.length >= this.options.maxPending) {
      req.fail(new QueueFullError("pending", this.options.maxPending));
    } else {
      this.queue.push(req);
      if (this.events.observed?.() === true) this.events.offlineQueue?.({ depth: this.queue.length });
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
    const conn = this.owner.conn;
    if (conn === undefined || conn.needsDrain || this.queue.length === 0) return;
    conn.writeQueue(this.queue);
  }

  // ---- what the owner's transitions mean for the queue ------------------------

  /**
   * The connection died. Written and unanswered: it may have run. Reads are
   * retried once, first in line after the reconnect; writes never are.
   */
  private requeue(error: Error | undefined, unanswered: Request[]): void {
    const retry: Request[] = [];
    const canRetry = this.options.retryReadOnly && this.owner.state.kind !== "closed" && this.owner.state.kind !== "closing";
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
  }

  /** Closing with a connection: accepted commands still go out; the socket ends once their callers have settled. */
  private drain(): void {
    this.flush();
    this.endWhenSettled();
  }

  /**
   * Closing: once every accepted command has settled, end the socket. We
   * wait for the callers, not for the socket: a command that timed out keeps
   * its FIFO slot and its reply may never come (a hung server), and a queue
   * that cannot be written (a server that stopped reading) may never drain.
   * A socket still owing replies or bytes is destroyed instead of ended.
   */
  private endWhenSettled(): void {
    const st = this.owner.state;
    if (st.kind !== "closing" || st.conn === undefined) return;
    const conn = st.conn;
    this.queue.retain((r) => r.state !== RequestState.Settled);
    const waiting = [...this.queue.toArray(), ...conn.unsettledInflight()];
    if (waiting.length > 0) {
      void Promise.allSettled(waiting.map((r) => r.promise)).then(() => this.endWhenSettled());
    } else if (conn.inflightCount === 0 && !conn.needsDrain) {
      conn.end();
    } else {
      conn.destroy();
    }
  }

  /** The owner is closed for good: nothing queued can be sent any more. */
  private closed(error: RedisError | undefined): void {
    for (const r of this.queue.drain()) {
      // A read re-queued for its retry was written once: it may have run (same rule as the pooled waiters).
      if (error) r.fail(afterAnyWrite(error, r.everWritten));
      else r.failClosed();
    }
    for (const w of this.readyWaiters.splice(0)) w.reject(error ?? new ClientClosedError());
    for (const resolve of this.closeWaiters.splice(0)) resolve();
  }
}
