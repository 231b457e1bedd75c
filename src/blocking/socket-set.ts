// The sockets a pooled transport holds (from dial until destroyed), what they
// are doing, and which are stale: Sentinel may say the server changed (a
// failover), and a socket dialed before that may reach the old one, so it is
// never lent again.
import type { PoolStats } from "../transport.js";
import type { PooledSocket } from "./pooled-socket.js";

export class SocketSet {
  private readonly all = new Set<PooledSocket>();
  private readonly stale = new WeakSet<PooledSocket>();
  /** Bumped by invalidate(); a socket dialed under an older one is stale. */
  private generation = 0;

  /** Take this before dialing and hand it to add(): invalidate() may come while the dial is out. */
  get dialGeneration(): number {
    return this.generation;
  }

  add(ps: PooledSocket, dialGeneration: number): void {
    this.all.add(ps);
    if (dialGeneration !== this.generation) this.stale.add(ps); // dialed before invalidate(): maybe the old server
  }

  delete(ps: PooledSocket): void {
    this.all.delete(ps);
  }

  isStale(ps: PooledSocket): boolean {
    return this.stale.has(ps);
  }

  /** A copy, safe to iterate while sockets are retired. */
  snapshot(): PooledSocket[] {
    return [...this.all];
  }

  openCount(): number {
    let n = 0;
    for (const ps of this.all) if (ps.conn.isOpen) n++;
    return n;
  }

  /** Sockets borrowed by a command or a withConnection callback (their commands are accepted and unsettled). */
  busyCount(): number {
    let n = 0;
    for (const ps of this.all) if (ps.role.kind === "job" || ps.role.kind === "lent") n++;
    return n;
  }

  stats(pending: number): PoolStats {
    let available = 0;
    let borrowed = 0;
    for (const ps of this.all) {
      if (!ps.conn.isOpen) continue;
      if (ps.role.kind === "idle") available++;
      else if (ps.role.kind !== "retired") borrowed++;
    }
    return { size: available + borrowed, available, borrowed, pending };
  }

  /** The server changed: every socket is stale; idle ones close now, borrowed ones when they come back. */
  invalidate(): void {
    this.generation++;
    for (const ps of this.all) {
      this.stale.add(ps);
      if (ps.role.kind === "idle") ps.conn.destroy();
    }
  }
}
