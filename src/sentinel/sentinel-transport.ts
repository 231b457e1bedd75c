// A client behind Sentinel. It sits above the transports, which stay unaware
// of sentinels: it hands the client a connection route that every socket the
// client opens (pooled, pipelined, dedicated or pub/sub) dials through:
//   resolveAddress -> ask the sentinels on every (re)connect
//   verify         -> ROLE after the handshake; a wrong role fails the
//                     attempt and the owner goes back to the sentinels after
//                     its backoff
// and one watcher listens to the sentinels' events. On a failover it calls
// invalidate() on the transport (the pipelined one drops its socket and
// reconnects at once, the pooled one drops idle sockets and never reuses the
// ones out on loan) and tells `serverChanged` (the client's pub/sub
// subscriber resubscribes on the new server).
import type { ConnectionRoute } from "../connection/handshake.js";
import { SentinelError } from "../errors.js";
import type { Credentials, ResolvedOptions, ServerAddress } from "../options.js";
import type { Request } from "../request.js";
import type { RequestGroup } from "../request-group.js";
import type { ClientStatus, DedicatedConnection, PoolStats, Transport, TransportEvents } from "../transport.js";
import { addressKey, SentinelLocator } from "./locator.js";
import { SentinelWatcher } from "./watcher.js";

export class SentinelTransport implements Transport {
  private inner: Transport | undefined;
  private readonly locator: SentinelLocator;
  private readonly watcher: SentinelWatcher;
  private readonly role: "master" | "replica";
  /** How every connection of the client reaches the data node. */
  readonly route: ConnectionRoute;

  /** Build the transport with `route`, then wrap() it. */
  constructor(
    options: ResolvedOptions,
    private readonly events: TransportEvents,
    /** The server changed (a failover): connections that are no transport (the subscriber) follow. */
    private readonly serverChanged: () => void,
  ) {
    const sentinel = options.sentinel;
    if (sentinel === undefined) throw new TypeError("SentinelTransport needs the sentinel option");
    const role = options.role;
    this.role = role;
    this.locator = new SentinelLocator(options, sentinel, role);
    this.watcher = new SentinelWatcher(
      this.locator,
      options,
      role === "master" ? ["+switch-master"] : ["+switch-master", "+sdown"],
      sentinel.timeoutMs,
      {
        message: (channel, payload, from) => this.onEvent(channel, payload, from),
        subscribed: () => this.onSubscribed(),
        error: (error) => this.events.error(error),
        active: () => this.inner?.status !== "closed",
      },
    );
    this.route = {
      resolveAddress: () => {
        this.watcher.start(); // first dial: start listening too
        return this.locator.resolve();
      },
      verify: (exec, address, socket) => this.locator.verify(exec, address, socket),
    };
  }

  /** The data transport, built with the hooked options. Returns this. */
  wrap(inner: Transport): Transport {
    this.inner = inner;
    return this;
  }

  private get transport(): Transport {
    if (this.inner === undefined) throw new Error("SentinelTransport used before wrap()");
    return this.inner;
  }

  get status(): ClientStatus {
    return this.transport.status;
  }

  connect(): Promise<void> {
    return this.transport.connect();
  }

  send(req: Request): void {
    this.transport.send(req);
  }

  sendGroup(group: RequestGroup, own: boolean): void {
    this.transport.sendGroup(group, own);
  }

  withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    return this.transport.withConnection(fn);
  }

  close(): Promise<void> {
    this.watcher.stop();
    return this.transport.close();
  }

  destroy(): void {
    this.watcher.stop();
    this.transport.destroy();
  }

  reauthenticate(credentials: Credentials): void {
    this.inner?.reauthenticate?.(credentials);
  }

  invalidate(): void {
    this.inner?.invalidate?.();
    this.serverChanged();
  }

  poolStats(): PoolStats {
    return this.transport.poolStats();
  }

  // ---- events from the sentinels ----------------------------------------------

  private onEvent(channel: string, payload: string, from: ServerAddress): void {
    const words = payload.split(" ");
    const live = this.locator.liveAddresses();
    if (channel === "+switch-master") {
      // <name> <old-ip> <old-port> <new-ip> <new-port>
      if (words[0] !== this.locator.name || words.length < 5) return;
      const promoted = addressKey({ host: words[3] as string, port: Number(words[4]) });
      // Other sentinels learn the new master up to a hello period later: ask this one first.
      this.locator.prefer(from);
      if (this.role === "master") {
        // Move unless every socket we hold already is on the new master (the
        // reconnect found it before the announcement).
        if (live.length === 0 || live.some((a) => a !== promoted)) this.invalidate();
      } else if (live.length === 0 || live.includes(promoted)) {
        // Our replica was promoted: find another one.
        this.invalidate();
      }
      return;
    }
    if (channel === "+sdown" && words[0] === "slave") {
      // slave <name> <ip> <port> @ <master-name> <master-ip> <master-port>
      if (words[5] !== this.locator.name) return;
      const down = addressKey({ host: words[2] as string, port: Number(words[3]) });
      if (live.includes(down)) this.invalidate();
    }
  }

  /**
   * (Re)subscribed: events may have been missed meanwhile. Sockets that no
   * longer point at the master are dropped; a transport with no socket that
   * waits out its backoff dials now (a sentinel is back).
   */
  private onSubscribed(): void {
    const inner = this.inner;
    if (inner === undefined) return;
    const idleInBackoff = (): boolean => inner.status === "reconnecting" && this.locator.liveAddresses().length === 0;
    if (this.role !== "master") {
      if (idleInBackoff()) this.invalidate();
      return;
    }
    this.locator.resolve(false).then(
      (address) => {
        const master = addressKey(address);
        if (this.locator.liveAddresses().some((a) => a !== master) || idleInBackoff()) this.invalidate();
      },
      (err: unknown) => {
        if (err instanceof SentinelError) this.events.error(err);
      },
    );
  }
}
