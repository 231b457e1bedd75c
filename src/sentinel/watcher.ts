// The client's ear on the sentinels (issue 11): one dedicated connection to
// one sentinel, subscribed to the events that move the client
// (+switch-master, and +sdown for role "replica"), so a failover is followed
// as soon as it is announced, not when the old socket dies (a SIGSTOPped
// master never closes it).
//
// The connection reconnects on its own: a lost or failed sentinel hands over
// to the next one in the locator's order, at once; after a whole round of
// failures it waits the reconnect backoff. A connection counts as a success
// only once it has lived STABLE_CONNECTION_MS past its SUBSCRIBE
// confirmation: one lost sooner is a failure like a failed dial (review
// finding: a sentinel that accepted then dropped, at maxclients, got ~3000
// connections/s). A sentinel that stops answering
// (SIGSTOP, a blackholed network) is found by a PING every timeoutMs: no bytes
// for two periods and the socket is dropped. Its socket and timers are
// unref'd: the data connections decide whether the process stays alive; and
// it stops by itself once the client is closed (also by a fatal error).
import { createBackoff } from "../connection/backoff.js";
import { openConnection } from "../connection/handshake.js";
import type { RespSocket } from "../connection/resp-socket.js";
import { ConnectionError, SentinelError } from "../errors.js";
import type { ResolvedOptions, ServerAddress } from "../options.js";
import type { Reply } from "../protocol/decode.js";
import { encodeCommand } from "../protocol/encode.js";
import { addressKey, type SentinelLocator } from "./locator.js";

/** How long a subscribed connection must stay up before its loss is redialled at once (as the pipelined transport). */
const STABLE_CONNECTION_MS = 1000;

export interface WatcherHooks {
  /** A pub/sub message from the sentinel `from`. */
  message(channel: string, payload: string, from: ServerAddress): void;
  /** Every channel is subscribed (after each (re)connect): events may have been missed before. */
  subscribed(): void;
  /** A whole round of sentinels failed; the watcher backs off and tries again. */
  error(error: SentinelError): void;
  /** False once the client is closed: the watcher stops. */
  active(): boolean;
}

export class SentinelWatcher {
  private state: "idle" | "running" | "stopped" = "idle";
  private conn: RespSocket | undefined;
  private current: ServerAddress | undefined;
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastSeen = 0;
  /** Consecutive failed connections (failed dials, and connections lost before they proved stable). */
  private failures = 0;
  /** When the current connection's SUBSCRIBE was confirmed; undefined until then. */
  private subscribedAt: number | undefined;
  private readonly backoffDelay: (attempt: number) => number;
  /** Aborted by stop(): a dial to a sentinel under way then ends at once. */
  private readonly dials = new AbortController();

  constructor(
    private readonly locator: SentinelLocator,
    options: ResolvedOptions,
    private readonly channels: readonly string[],
    private readonly timeoutMs: number,
    private readonly hooks: WatcherHooks,
  ) {
    const policy = options.reconnect === false ? { initialDelayMs: 50, maxDelayMs: 2000 } : options.reconnect;
    this.backoffDelay = createBackoff(policy);
  }

  start(): void {
    if (this.state !== "idle") return;
    this.state = "running";
    void this.connect();
  }

  stop(): void {
    this.state = "stopped";
    this.dials.abort();
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.timer = this.heartbeat = undefined;
    this.conn?.abandon();
    this.conn = undefined;
    this.subscribedAt = undefined;
  }

  /** The sentinel after `current` in the locator's order (its front first). */
  private next(): ServerAddress {
    const nodes = this.locator.nodes;
    const i = this.current === undefined ? -1 : nodes.indexOf(this.current);
    return nodes[(i + 1) % nodes.length] as ServerAddress;
  }

  private async connect(): Promise<void> {
    this.timer = undefined;
    if (this.state !== "running") return;
    if (!this.hooks.active()) {
      this.stop();
      return;
    }
    const node = this.failures === 0 && this.current === undefined ? (this.locator.nodes[0] as ServerAddress) : this.next();
    this.current = node;
    let conn: RespSocket | undefined;
    try {
      conn = await openConnection(
        this.locator.connectionOptions(node),
        {
          onClose: (error) => this.lost(conn, node, error),
          onPush: (reply) => this.push(reply, node),
          onPushError: () => true,
        },
        this.dials.signal,
      );
    } catch (err) {
      this.failed(err);
      return;
    }
    if (this.state !== "running") {
      conn.abandon();
      return;
    }
    this.conn = conn;
    this.subscribedAt = undefined;
    // The data connections decide whether the process stays alive, not this one.
    conn.socket.unref();
    this.lastSeen = Date.now();
    conn.socket.on("data", () => {
      this.lastSeen = Date.now();
    });
    conn.writeUntracked(encodeCommand(["SUBSCRIBE", ...this.channels]));
    const c = conn;
    this.heartbeat = setInterval(() => {
      if (!this.hooks.active()) {
        this.stop(); // the client ended without close() (a fatal error)
      } else if (Date.now() - this.lastSeen > 2 * this.timeoutMs) {
        c.destroy(new ConnectionError(`Sentinel ${addressKey(node)} stopped answering`, "socket-closed", false));
      } else {
        c.writeUntracked(encodeCommand(["PING"]));
      }
    }, this.timeoutMs);
    this.heartbeat.unref();
  }

  private push(reply: Reply, from: ServerAddress): boolean {
    if (!Array.isArray(reply)) return true;
    const kind = String(reply[0]);
    if (kind === "message") {
      this.hooks.message(String(reply[1]), String(reply[2]), from);
    } else if (kind === "subscribe" && Number(reply[2]) === this.channels.length) {
      // `failures` is reset only once this connection proves stable (lost()).
      this.subscribedAt = Date.now();
      this.hooks.subscribed();
    }
    return true; // "pong" and anything else: nothing to do
  }

  private lost(conn: RespSocket | undefined, node: ServerAddress, error: Error | undefined): void {
    if (conn === undefined || conn !== this.conn) return;
    this.conn = undefined;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    const since = this.subscribedAt;
    this.subscribedAt = undefined;
    if (this.state !== "running") return;
    if (since !== undefined && Date.now() - since >= STABLE_CONNECTION_MS) {
      // It served: a new outage starts, and the next sentinel is tried at once.
      this.failures = 0;
      void this.connect();
      return;
    }
    // Lost before (or right after) its subscription was confirmed: a failed
    // attempt, so a sentinel that accepts and drops is paced by the backoff.
    const where = addressKey(node);
    this.failed(
      new ConnectionError(
        since === undefined ? `Sentinel ${where} closed the connection before confirming SUBSCRIBE` : `Sentinel ${where} closed the connection right after SUBSCRIBE`,
        "socket-closed",
        false,
        { cause: error },
      ),
    );
  }

  private failed(err: unknown): void {
    if (this.state !== "running") return;
    this.failures++;
    const n = this.locator.nodes.length;
    if (this.failures % n !== 0) {
      void this.connect();
      return;
    }
    // A whole round failed: report it once per outage (not every round) and wait the backoff.
    if (this.failures === n) {
      const message = err instanceof Error ? err.message : String(err);
      this.hooks.error(new SentinelError(`Sentinel: no sentinel accepted the event subscription (last: ${message})`, "unreachable", { cause: err }));
    }
    this.timer = setTimeout(() => void this.connect(), this.backoffDelay(this.failures / n));
    this.timer.unref();
  }
}
