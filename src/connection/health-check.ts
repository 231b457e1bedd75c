// Half-open sockets: a server or a middlebox that stops answering without
// closing the socket (a load balancer's idle cut, a frozen VM) would leave
// every command waiting until its own deadline, forever without one. Every
// half interval this looks at the socket's byte counter: bytes arrived since
// the last look, nothing to do (a busy connection costs nothing); none for a
// whole half interval, send one probe (PING; a command already in flight
// serves as the probe, so none is added); none since the probe for
// another half interval, the connection is declared lost (its written
// commands fail with maybeExecuted, unwritten ones wait for the reconnect). So
// an idle connection costs one PING per interval, and a silent one is
// detected within two intervals of its last byte.
import { ConnectionError } from "../errors.js";
import type { RespSocket } from "./resp-socket.js";
import { realTimers, type Timers } from "./timers.js";

export class HealthCheck {
  private timer: unknown;
  private seen: number;
  /** bytesRead when the probe went out; undefined while none is out. */
  private probedAt: number | undefined;

  constructor(
    private readonly conn: RespSocket,
    private readonly intervalMs: number,
    /** Write one probe whose answer is bytes on this socket (a tracked PING, or an untracked one on a subscribed socket). */
    private readonly probe: (conn: RespSocket) => void,
    private readonly timers: Timers = realTimers,
  ) {
    this.seen = conn.socket.bytesRead;
    this.schedule();
  }

  stop(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    // Unref'd: a health check alone must not keep the process alive.
    this.timer = this.timers.setTimeout(() => this.look(), Math.max(1, this.intervalMs / 2), true);
  }

  private look(): void {
    this.timer = undefined;
    if (!this.conn.isOpen) return;
    const read = this.conn.socket.bytesRead;
    if (read !== this.seen) {
      this.seen = read;
      this.probedAt = undefined;
    } else if (this.probedAt === undefined) {
      this.probedAt = read;
      // A command already in flight is a probe of its own: its reply is the
      // bytes we wait for. Only an idle connection gets a PING.
      if (this.conn.inflightCount === 0) this.probe(this.conn);
    } else {
      this.conn.destroy(new ConnectionError(`No answer from the server for ${this.intervalMs} ms (health check)`, "socket-closed", false));
      return;
    }
    this.schedule();
  }
}
