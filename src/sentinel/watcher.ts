// The client's ear on the sentinels: one dedicated connection to one
// sentinel, subscribed to the events that move the client (+switch-master,
// and +sdown for role "replica"), so a failover is followed as soon as it is
// announced, not when the old socket dies (a SIGSTOPped master never closes
// it).
//
// How the connection lives is the ConnectionOwner's; what is particular here
// is where each dial goes and how long it waits: a lost or failed sentinel
// hands over to the next one in the locator's order, at once; after a whole
// round of failures the reconnect backoff applies. A connection proves itself
// once its SUBSCRIBE is confirmed, and counts as a new start only after it
// served STABLE_CONNECTION_MS past that: a sentinel that accepts and drops (at
// maxclients) is paced by the backoff. A sentinel that stops answering
// (SIGSTOP, a blackholed network) is found by the owner's health check: a
// PING once nothing came for timeoutMs, the socket dropped when nothing came
// for twice that. Its socket and timers are
// unref'd: the data connections decide whether the process stays alive; and
// it stops by itself once the client is closed (also by a fatal error).
import { createBackoff } from "../connection/backoff.js";
import { ConnectionOwner } from "../connection/connection-owner.js";
import { openConnection } from "../connection/handshake.js";
import type { RespSocket } from "../connection/resp-socket.js";
import { ClientClosedError, SentinelError } from "../errors.js";
import type { ResolvedOptions, ServerAddress } from "../options.js";
import type { Reply } from "../protocol/decode.js";
import { encodeCommand } from "../protocol/encode.js";
import { addressKey, type SentinelLocator } from "./locator.js";

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
  private readonly owner: ConnectionOwner;
  /** The sentinel of the current (or last) dial. */
  private current: ServerAddress | undefined;
  /** The current connection's SUBSCRIBE was confirmed. */
  private confirmed = false;
  /** Why the last connection was lost, naming its sentinel (for the failed-round error). */
  private lostWhy: string | undefined;

  constructor(
    private readonly locator: SentinelLocator,
    options: ResolvedOptions,
    private readonly channels: readonly string[],
    timeoutMs: number,
    private readonly hooks: WatcherHooks,
  ) {
    // The watcher never gives up while the client lives, whatever the data connections' policy.
    const base = options.reconnect === false ? { initialDelayMs: 50, maxDelayMs: 2000 } : options.reconnect;
    const roundDelay = createBackoff(base);
    const sentinels = (): number => this.locator.nodes.length;
    this.owner = new ConnectionOwner(
      {
        open: (events, signal) => {
          if (!this.hooks.active()) {
            // The client ended without close() (a fatal error): nothing to watch for.
            queueMicrotask(() => this.stop());
            return Promise.reject(new ClientClosedError());
          }
          this.lostWhy = undefined; // a new attempt: a failure now is this dial's
          const node = this.next();
          const nodeOptions = this.locator.connectionOptions(node);
          return openConnection(nodeOptions, events, signal, undefined, nodeOptions.protocol);
        },
      },
      {
        reconnect: { ...base, maxAttempts: Infinity },
        // The next sentinel at once, until a whole round has failed.
        delayFor: (attempt) => (attempt % sentinels() !== 0 ? 0 : roundDelay(attempt / sentinels())),
        unref: true,
        // A PING once nothing came for timeoutMs; the sentinel is dropped when nothing came for twice that.
        healthCheckIntervalMs: 2 * timeoutMs,
      },
      {
        socket: { onPush: (reply) => this.push(reply), onPushError: () => true },
        ready: (conn) => this.watch(conn),
        probe: (conn) => {
          if (this.hooks.active()) conn.writeUntracked(encodeCommand(["PING"]));
          else queueMicrotask(() => this.stop()); // the client ended without close() (a fatal error)
        },
        lost: () => {
          const where = addressKey(this.current as ServerAddress);
          this.lostWhy = this.confirmed ? `Sentinel ${where} closed the connection right after SUBSCRIBE` : `Sentinel ${where} closed the connection before confirming SUBSCRIBE`;
        },
      },
      {
        // Report a failed round once per outage (not every round).
        attemptFailed: (error, attempt) => {
          const why = this.lostWhy ?? error.message;
          if (attempt !== sentinels()) return;
          this.hooks.error(new SentinelError(`Sentinel: no sentinel accepted the event subscription (last: ${why})`, "unreachable", { cause: error }));
        },
      },
    );
  }

  start(): void {
    this.owner.connect();
  }

  stop(): void {
    this.owner.destroy();
  }

  /** The sentinel after `current` in the locator's order (its front first on the very first dial). */
  private next(): ServerAddress {
    const nodes = this.locator.nodes;
    const i = this.current === undefined ? -1 : nodes.indexOf(this.current);
    const node = nodes[(i + 1) % nodes.length] as ServerAddress;
    this.current = node;
    return node;
  }

  private watch(conn: RespSocket): void {
    this.confirmed = false;
    conn.writeUntracked(encodeCommand(["SUBSCRIBE", ...this.channels]));
  }

  private push(reply: Reply): boolean {
    if (!Array.isArray(reply)) return true;
    const kind = String(reply[0]);
    const conn = this.owner.conn;
    if (kind === "message") {
      this.hooks.message(String(reply[1]), String(reply[2]), this.current as ServerAddress);
    } else if (kind === "subscribe" && Number(reply[2]) === this.channels.length && conn !== undefined) {
      this.confirmed = true;
      this.owner.proven(conn);
      this.hooks.subscribed();
    }
    return true; // "pong" and anything else: nothing to do
  }
}
