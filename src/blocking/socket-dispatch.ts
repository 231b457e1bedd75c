// Matching the callers in line to sockets. generic-pool only ever sees as
// many acquires as it has room for sockets; whatever an acquire yields goes
// to the oldest caller still in line (a command, or a withConnection
// callback), or back to the pool when nobody waits. An acquire whose caller
// left (timed out, aborted, rejected) is an orphan: its socket simply goes to
// the next caller. When a command settles, its socket is served again if it
// is clean (a reply or an error reply came, nothing in flight), or destroyed
// otherwise (timeout, abort, connection or protocol error: its late reply
// must never reach another caller).
import type { Pool } from "generic-pool";
import { ConnectionError } from "../errors.js";
import type { Request } from "../request.js";
import type { DialGate } from "./dial-gate.js";
import type { LentConnection } from "./lent-connection.js";
import { Tombstone, type PooledSocket, type Slot } from "./pooled-socket.js";
import type { SocketSet } from "./socket-set.js";
import type { Waiter, WaiterQueue } from "./waiters.js";

const ignore = (): void => undefined;

export interface DispatchDeps {
  readonly pool: Pool<Slot>;
  readonly waiters: WaiterQueue;
  readonly gate: DialGate<PooledSocket>;
  readonly sockets: SocketSet;
  /** pool.max */
  readonly max: number;
  /** Open or closing: callers in line are still served. */
  isServing(): boolean;
  isClosed(): boolean;
  /** A socket came back or went away: a graceful close may be able to finish. */
  settled(): void;
  /** A caller timed by the line got its socket after `waitMs`. */
  waited(waitMs: number): void;
}

export class SocketDispatch {
  /** pool.acquire() calls not answered yet. */
  private inAcquire = 0;

  constructor(private readonly deps: DispatchDeps) {}

  get acquiring(): number {
    return this.inAcquire;
  }

  /** Ask generic-pool for as many sockets as callers wait, within max. */
  pump(): void {
    if (!this.deps.isServing()) return;
    const { pool, waiters, max } = this.deps;
    while (waiters.live > this.inAcquire && pool.borrowed + this.inAcquire < max) this.acquireOne();
  }

  acquireOne(): void {
    this.inAcquire++;
    this.deps.pool.acquire().then(
      (slot) => {
        this.inAcquire--;
        this.dispatch(slot);
      },
      () => {
        // Only a draining pool rejects, and by then nobody waits.
        this.inAcquire--;
      },
    );
  }

  /** A withConnection() callback is done with `ps`. */
  giveBack(ps: PooledSocket, lent: LentConnection): void {
    const reusable = lent.release();
    if (ps.role.kind !== "lent") return; // destroy() took it already
    if (reusable) this.serveNext(ps);
    else this.retire(ps);
  }

  /** Destroy a borrowed socket through generic-pool; it will not be lent again. */
  retire(ps: PooledSocket): void {
    if (ps.role.kind === "retired") return;
    ps.role = { kind: "retired" };
    this.deps.sockets.delete(ps);
    void this.deps.pool.destroy(ps).catch(ignore);
    this.pump();
    this.deps.settled();
  }

  /** A slot came out of generic-pool (possibly for an acquire whose caller left). */
  private dispatch(slot: Slot): void {
    if (slot instanceof Tombstone) {
      void this.deps.pool.destroy(slot).catch(ignore);
      return;
    }
    this.serveNext(slot);
  }

  /** `ps` is borrowed and clean: give it to the next caller in line, or back to the pool. */
  private serveNext(ps: PooledSocket): void {
    if (this.deps.isClosed() || this.deps.sockets.isStale(ps)) {
      this.retire(ps); // retire() pumps: a waiter gets a fresh socket
      return;
    }
    const w = this.deps.waiters.take();
    if (w !== undefined && w.since > 0) this.deps.waited(performance.now() - w.since);
    if (w === undefined) {
      ps.role = { kind: "idle" };
      void this.deps.pool.release(ps).catch(ignore);
      this.deps.settled();
      return;
    }
    if (!ps.usable) {
      // Closed by the server between validation and now: nothing was
      // written, so the caller tries once more on a fresh socket.
      this.retire(ps);
      this.putBack(w);
      return;
    }
    const t = w.target;
    if ("promise" in t) {
      this.run(ps, t);
    } else {
      ps.role = { kind: "lent" };
      t.grant(ps);
    }
  }

  private putBack(w: Waiter): void {
    const t = w.target;
    if (w.requeued) {
      if ("promise" in t) t.failConnection(undefined);
      else t.fail(new ConnectionError("The pooled connection closed before it could be lent", "socket-closed", false));
      return;
    }
    w.requeued = true;
    this.deps.waiters.readd(w);
    this.pump();
  }

  private run(ps: PooledSocket, req: Request): void {
    ps.role = { kind: "job", req };
    req.whenSettled(() => this.jobSettled(ps, req));
    ps.conn.write(req);
  }

  private jobSettled(ps: PooledSocket, req: Request): void {
    if (ps.role.kind !== "job" || ps.role.req !== req) return;
    // A reply or an error reply leaves the socket clean. A timeout or an abort
    // leaves the request in flight: its late reply would reach the next caller.
    if (ps.clean) {
      this.serveNext(ps);
    } else {
      this.retire(ps);
    }
  }

}
