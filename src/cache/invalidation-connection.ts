// RESP2 client-side caching: the connection the server sends invalidations
// to. Data connections say CLIENT TRACKING ON REDIRECT <this connection's
// id>; the server then publishes every invalidation on __redis__:invalidate
// to it, but only while it is subscribed there (it drops them otherwise), so
// the connection counts as ready once the SUBSCRIBE is confirmed.
//
// Its id comes from CLIENT ID, run after the handshake (a route's verify, so
// a Sentinel or cluster route still resolves the address and checks the
// role first). In broadcast mode it also tracks for everybody: CLIENT
// TRACKING ON BCAST [PREFIX p ...] REDIRECT <its own id>, before subscribing.
//
// How the connection lives is the ConnectionOwner's; its loss is told
// synchronously (`lost`), before anything else can run, so the cache is
// flushed before a single stale hit could be served.
//
// PINGs (the lease probes, and the health check's) are answered in
// subscribed mode as ["pong", ""], in order: one FIFO of their send times
// says which one a pong answers.
import { ConnectionOwner } from "../connection/connection-owner.js";
import type { Connector } from "../connection/connector.js";
import type { SetupExec } from "../connection/handshake.js";
import { Deque } from "../connection/deque.js";
import type { RespSocket } from "../connection/resp-socket.js";
import { ConnectionError, type RedisError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";
import type { Reply } from "../protocol/decode.js";
import { encodeCommand } from "../protocol/encode.js";

export const INVALIDATE_CHANNEL = "__redis__:invalidate";

export interface InvalidationHooks {
  /** Subscribed and ready: data connections may redirect to `id`. */
  ready(id: number): void;
  /** The connection is gone (told synchronously with its loss). */
  lost(): void;
  /** Keys that changed (Buffers), or null: every key (FLUSHALL, FLUSHDB). */
  invalidate(keys: Reply[] | null): void;
  /** A lease probe sent at `sentAt` (performance.now()) was answered. */
  pong(sentAt: number): void;
  error(error: RedisError): void;
}

const PING = encodeCommand(["PING"]);
const SUBSCRIBE = encodeCommand(["SUBSCRIBE", INVALIDATE_CHANNEL]);

function text(value: Reply | undefined): string {
  return Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
}

export class InvalidationConnection {
  private readonly owner: ConnectionOwner;
  /** The id CLIENT ID reported on each connection's socket, learnt in its handshake. */
  private readonly ids = new WeakMap<object, number>();
  private current: { conn: RespSocket; id: number; subscribed: boolean } | undefined;
  /** Send times of the PINGs written on the current connection, oldest first (NaN: a health probe). */
  private readonly pings = new Deque<number>();
  private readyWaiters: ((ok: boolean) => void)[] = [];

  constructor(
    options: ResolvedOptions,
    /** The connector for a route whose last check is `setup` (CLIENT ID, and the broadcast tracking). */
    connectorFor: (setup: (exec: SetupExec, socket: object) => Promise<void>) => Connector,
    /** Broadcast mode: the prefixes this connection tracks for everybody ([]: every key); undefined: default mode. */
    private readonly bcast: readonly string[] | undefined,
    private readonly hooks: InvalidationHooks,
  ) {
    this.owner = new ConnectionOwner(
      connectorFor((exec, socket) => this.setup(exec, socket)),
      { reconnect: options.reconnect, what: "The cache invalidation connection could not connect", healthCheckIntervalMs: options.healthCheckIntervalMs },
      {
        socket: { onPush: this.onPush },
        ready: (conn) => this.onReady(conn),
        lost: () => this.onLost(),
        closed: () => this.onLost(),
        probe: (conn) => {
          this.pings.push(Number.NaN);
          conn.writeUntracked(PING);
        },
      },
      { error: (error) => hooks.error(error) },
    );
  }

  /** After the handshake: CLIENT ID, and in broadcast mode the tracking for every key under the prefixes. */
  private async setup(exec: SetupExec, socket: object): Promise<void> {
    const id = await exec(["CLIENT", "ID"]);
    if (typeof id !== "number" && typeof id !== "bigint" && typeof id !== "string") {
      throw new ConnectionError("CLIENT ID did not answer an integer", "handshake-failed", false);
    }
    const n = Number(id);
    if (this.bcast !== undefined) {
      await exec(["CLIENT", "TRACKING", "ON", "BCAST", ...this.bcast.flatMap((p) => ["PREFIX", p]), "REDIRECT", n]);
    }
    this.ids.set(socket, n);
  }

  get isReady(): boolean {
    return this.current?.subscribed === true;
  }

  get id(): number | undefined {
    return this.current?.subscribed === true ? this.current.id : undefined;
  }

  get closed(): boolean {
    return this.owner.state.kind === "closed";
  }

  /** Dial unless dialing or up. */
  start(): void {
    this.owner.connect();
  }

  /** Resolves true once ready, false after `timeoutMs` or if the connection closes for good. */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.isReady) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    this.start();
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (ok: boolean): void => {
        if (timer !== undefined) clearTimeout(timer);
        const i = this.readyWaiters.indexOf(done);
        if (i !== -1) this.readyWaiters.splice(i, 1);
        resolve(ok);
      };
      this.readyWaiters.push(done);
      timer = setTimeout(() => done(false), Math.max(1, timeoutMs));
      timer.unref();
    });
  }

  /** Write a lease probe; `pong(sentAt)` tells when it is answered. False: no connection to write it on. */
  ping(sentAt: number): boolean {
    const cur = this.current;
    if (cur === undefined || !cur.subscribed) return false;
    this.pings.push(sentAt);
    cur.conn.writeUntracked(PING);
    return true;
  }

  /** The server changed (a failover): drop the connection and dial again at once. */
  invalidate(): void {
    this.owner.invalidate(new ConnectionError("The server changed (failover); the cache is flushed", "socket-closed", false));
  }

  destroy(): void {
    this.owner.destroy();
    for (const w of this.readyWaiters.splice(0)) w(false);
  }

  private onReady(conn: RespSocket): void {
    const id = this.ids.get(conn.socket);
    if (id === undefined) {
      conn.destroy(new ConnectionError("The cache invalidation connection has no CLIENT ID", "handshake-failed", false));
      return;
    }
    conn.setPushReturnBuffers(true); // keys are bytes
    this.pings.drain();
    this.current = { conn, id, subscribed: false };
    conn.writeUntracked(SUBSCRIBE);
  }

  private onLost(): void {
    const was = this.current;
    this.current = undefined;
    this.pings.drain();
    if (was !== undefined) this.hooks.lost();
  }

  private readonly onPush = (reply: Reply): boolean => {
    if (!Array.isArray(reply) || reply.length < 2) return false;
    const kind = text(reply[0]);
    const cur = this.current;
    if (kind === "message" && reply.length === 3) {
      if (text(reply[1]) !== INVALIDATE_CHANNEL) return true;
      const keys = reply[2];
      this.hooks.invalidate(Array.isArray(keys) ? keys : null);
      return true;
    }
    if (kind === "pong") {
      const sentAt = this.pings.shift();
      if (sentAt !== undefined && !Number.isNaN(sentAt)) this.hooks.pong(sentAt);
      return true;
    }
    if (kind === "subscribe" && cur !== undefined && !cur.subscribed) {
      cur.subscribed = true;
      this.owner.proven(cur.conn);
      // The hook first: whoever waited resumes knowing what it did (the new generation).
      this.hooks.ready(cur.id);
      for (const w of this.readyWaiters.splice(0)) w(true);
      return true;
    }
    return kind === "subscribe" || kind === "unsubscribe";
  };
}
