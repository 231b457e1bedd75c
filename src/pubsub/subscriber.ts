// Pub/sub on a dedicated connection, one per client, opened on the first
// subscribe. In RESP2 a subscribed socket can run nothing but (P)SUBSCRIBE,
// (P)UNSUBSCRIBE and PING, and one SUBSCRIBE a b gets one confirmation per
// channel, so this connection does not use the request FIFO: commands are
// written untracked and every reply comes through RespSocket's onPush.
//
// The state that matters is what the caller *wants* (channel -> listeners);
// what the server has confirmed on the current socket is derived. After every
// reconnect (same backoff as the command connection) the whole wanted set is
// subscribed again, and `resubscribed` tells the application, which may have
// missed messages in between (pub/sub is fire-and-forget: Redis keeps nothing
// for a disconnected subscriber).
//
// This file is the connection and the wire; listeners.ts holds what is
// wanted, pending-subscribes.ts the subscribe() calls awaiting confirmation.
//
// Sharded pub/sub (SSUBSCRIBE, Redis 7) rides on the same connection: its
// names are sent one SSUBSCRIBE per hash slot (the server refuses one that
// spans slots on a cluster node), and a cluster node may end a shard
// subscription by itself (an unsolicited "sunsubscribe" when the slot moves
// away): the owner hears of it through `shardDropped`.
//
// How the connection lives (dial, backoff, loss) is the ConnectionOwner's; a
// connection proves itself once every subscription of its resubscribe is
// confirmed.
import calculateSlot from "cluster-key-slot";
import { ConnectionOwner } from "../connection/connection-owner.js";
import type { Connector } from "../connection/connector.js";
import { Deque } from "../connection/deque.js";
import type { RespSocket } from "../connection/resp-socket.js";
import { ClientClosedError, ConnectionError, RedisError, ReplyError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";
import type { Reply } from "../protocol/decode.js";
import { encodeCommand } from "../protocol/encode.js";
import { ListenerRegistry, type AnyListener, type Kind } from "./listeners.js";
import { PendingSubscribes } from "./pending-subscribes.js";

/** Called for each message on a subscribed channel. */
export type MessageListener<M extends string | Buffer = string> = (message: M, channel: string) => void;
/** Called for each message on a channel matching a subscribed pattern. */
export type PatternListener<M extends string | Buffer = string> = (message: M, channel: string, pattern: string) => void;

export interface SubscribeOptions {
  /** Deliver message payloads as Buffers (binary-safe) instead of UTF-8 strings. */
  returnBuffers?: boolean;
}

export interface SubscriberEvents {
  disconnect(error: Error | undefined): void;
  reconnecting(info: { attempt: number; delayMs: number }): void;
  resubscribed(info: { channels: string[]; patterns: string[]; shardChannels: string[] }): void;
  error(error: RedisError): void;
  /**
   * Shard channels this connection no longer serves: the server refused them
   * (`error`: MOVED on a cluster node that does not own the slot) or ended
   * them itself (no `error`: their slot moved away). They are no longer
   * wanted here. Without this hook, an ended one is reported through `error`.
   */
  shardDropped?(names: string[], error: ReplyError | undefined): void;
}

const SUBSCRIBE: Record<Kind, string> = { channel: "SUBSCRIBE", pattern: "PSUBSCRIBE", shard: "SSUBSCRIBE" };
const UNSUBSCRIBE: Record<Kind, string> = { channel: "UNSUBSCRIBE", pattern: "PUNSUBSCRIBE", shard: "SUNSUBSCRIBE" };
/** The kind and direction of each confirmation the server pushes. */
const CONFIRMATION: Record<string, { kind: Kind; subscribe: boolean }> = {
  subscribe: { kind: "channel", subscribe: true },
  unsubscribe: { kind: "channel", subscribe: false },
  psubscribe: { kind: "pattern", subscribe: true },
  punsubscribe: { kind: "pattern", subscribe: false },
  ssubscribe: { kind: "shard", subscribe: true },
  sunsubscribe: { kind: "shard", subscribe: false },
};

/** One command written on the current socket, waiting for its confirmations (one per name). */
interface Op {
  kind: Kind;
  subscribe: boolean;
  names: string[];
  /** Index of the next expected confirmation. */
  next: number;
  /** Called when every confirmation arrived, or the socket is gone (unsubscribe: that is as good). */
  done?: (error?: ReplyError) => void;
}

export class Subscriber {
  private readonly owner: ConnectionOwner;
  private readonly wanted = new ListenerRegistry();
  /** Confirmed on the current socket. */
  private readonly active: Record<Kind, Set<string>> = { channel: new Set(), pattern: new Set(), shard: new Set() };
  private readonly ops = new Deque<Op>();
  private readonly pending = new PendingSubscribes();
  private everReady = false;

  constructor(
    private readonly options: ResolvedOptions,
    connector: Connector,
    private readonly events: SubscriberEvents,
  ) {
    this.owner = new ConnectionOwner(
      connector,
      { reconnect: options.reconnect, what: "Subscriber could not connect", healthCheckIntervalMs: options.healthCheckIntervalMs },
      {
        socket: { onPush: this.onPush, onPushError: this.onPushError },
        ready: (conn) => this.resubscribe(conn),
        lost: () => this.forgetSocket(),
        closed: (error) => {
          for (const op of this.ops.drain()) op.done?.();
          this.pending.rejectAll(error ?? new ClientClosedError());
        },
        // Nothing to resubscribe: dial again on the next subscribe.
        wanted: () => this.hasWork,
        probe: (conn) => void conn.writeUntracked(encodeCommand(["PING"])),
      },
      {
        disconnect: (info) => events.disconnect(info.error),
        reconnecting: (info) => events.reconnecting(info),
        error: (error) => events.error(error),
      },
    );
  }

  /** Closed for good: by close()/destroy(), or by itself (reconnect attempts exhausted, a fatal dial error). */
  get closed(): boolean {
    return this.owner.state.kind === "closed";
  }

  /** Wants subscriptions but has no connection now (dialing, or backing off). */
  get down(): boolean {
    const k = this.owner.state.kind;
    return this.hasWork && (k === "connecting" || k === "backoff");
  }

  /** Channels (or patterns) that have at least one listener. */
  subscriptions(kind: Kind): string[] {
    return this.wanted.names(kind);
  }

  subscribe(kind: Kind, names: string | readonly string[], listener: AnyListener, options: SubscribeOptions | undefined): Promise<void> {
    const st = this.owner.state;
    if (st.kind === "closed") {
      return Promise.reject(st.error ?? new ClientClosedError());
    }
    let list: string[];
    try {
      list = nameList(SUBSCRIBE[kind], names, false);
      if (typeof listener !== "function") throw new TypeError(`${SUBSCRIBE[kind]}: the listener must be a function`);
    } catch (err) {
      return Promise.reject(err);
    }
    const fresh = this.wanted.add(kind, list, listener, options?.returnBuffers === true);
    if (st.kind === "ready" && fresh.length > 0) this.send(st.conn, { kind, subscribe: true, names: fresh, next: 0 });
    this.owner.connect();
    const pending = new Set(list.filter((n) => !this.active[kind].has(n)));
    if (pending.size === 0) return Promise.resolve();
    // On timeout: a caller told "failed" must not keep receiving messages; another call
    // waiting for the same registration (the same listener) did not get it either.
    return this.pending.wait(kind, pending, SUBSCRIBE[kind], this.options.commandTimeoutMs, (timeout) => void this.remove(kind, list, listener, timeout));
  }

  /** Remove `listener` (or every listener) from `names` (or from everything); unsubscribe names left without listeners. */
  unsubscribe(kind: Kind, names: string | readonly string[] | undefined, listener: AnyListener | undefined): Promise<void> {
    let list: string[];
    try {
      list = names === undefined ? this.wanted.names(kind) : nameList(UNSUBSCRIBE[kind], names, true);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.remove(kind, list, listener, undefined);
  }

  /**
   * Names no longer wanted stop holding up the subscribe() calls waiting for
   * them: asked for by the application (unsubscribe), those calls resolve, as
   * their caller undid them itself; undone because another call timed out
   * (`failed`), they fail with it, never resolving without a subscription.
   */
  private remove(kind: Kind, list: string[], listener: AnyListener | undefined, failed: RedisError | undefined): Promise<void> {
    const gone = this.wanted.remove(kind, list, listener);
    for (const name of gone) {
      if (failed === undefined) this.pending.settled(kind, name);
      else this.pending.refused(kind, name, failed);
    }
    const st = this.owner.state;
    if (st.kind !== "ready" || gone.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.send(st.conn, { kind, subscribe: false, names: gone, next: 0, done: () => resolve() }));
  }

  /**
   * Close the subscriber connection. There is nothing in flight worth waiting
   * for (messages are fire-and-forget), so this is immediate: pending
   * subscribe() calls reject with ClientClosedError.
   */
  close(): Promise<void> {
    this.destroy();
    return Promise.resolve();
  }

  destroy(): void {
    this.owner.destroy();
  }

  /**
   * The server changed (a Sentinel failover). Drop the socket as if it had
   * died (the application hears 'subscriber-disconnect', then 'resubscribed'
   * from the new server); a dial under way may target the old server, so it
   * starts again; a backoff ends now.
   */
  invalidate(): void {
    this.owner.invalidate(new ConnectionError("The server changed (failover); resubscribing", "socket-closed", false));
  }

  // ---- the wire --------------------------------------------------------------

  private send(conn: RespSocket, op: Op): void {
    const groups = op.kind === "shard" ? bySlot(op.names) : [op.names];
    if (groups.length === 1) {
      this.write(conn, op);
      return;
    }
    // One SSUBSCRIBE per slot; the caller's op is done when all of them are.
    let left = groups.length;
    let firstError: ReplyError | undefined;
    const partDone = (error?: ReplyError): void => {
      firstError ??= error;
      if (--left === 0) op.done?.(firstError);
    };
    for (const names of groups) this.write(conn, { kind: op.kind, subscribe: op.subscribe, names, next: 0, done: partDone });
  }

  private write(conn: RespSocket, op: Op): void {
    this.ops.push(op);
    conn.writeUntracked(encodeCommand([op.subscribe ? SUBSCRIBE[op.kind] : UNSUBSCRIBE[op.kind], ...op.names]));
  }

  private readonly onPush = (reply: Reply): boolean => {
    // A health-check PING's answer: "pong" while subscribed, PONG when not.
    if (Array.isArray(reply) ? reply.length === 2 && text(reply[0]) === "pong" : text(reply) === "PONG") return true;
    if (!Array.isArray(reply) || reply.length < 3) return false;
    const type = text(reply[0]);
    switch (type) {
      case "message":
        this.wanted.deliver("channel", text(reply[1]), reply[2], undefined, this.listenerFailed);
        return true;
      case "smessage":
        this.wanted.deliver("shard", text(reply[1]), reply[2], undefined, this.listenerFailed);
        return true;
      case "pmessage":
        this.wanted.deliver("pattern", text(reply[1]), reply[3], text(reply[2]), this.listenerFailed);
        return true;
      default: {
        const c = CONFIRMATION[type];
        if (c === undefined) return false;
        const name = reply[1] === null ? null : text(reply[1]);
        if (this.confirm(c.kind, c.subscribe, name)) return true;
        // Not the reply to anything we sent: a cluster node ending a shard
        // subscription whose slot moved away (Redis 7 pushes "sunsubscribe").
        if (c.kind !== "shard" || c.subscribe || name === null) return false;
        this.shardEnded(name);
        return true;
      }
    }
  };

  private shardEnded(name: string): void {
    const wasActive = this.active.shard.delete(name);
    if (!wasActive || !this.wanted.has("shard", name)) return;
    this.wanted.drop("shard", name);
    if (this.events.shardDropped !== undefined) this.events.shardDropped([name], undefined);
    else this.events.error(new RedisError(`The server ended the subscription to shard channel "${name}" (its slot moved)`, "ERR_RESPITE_SHARD_MOVED", false));
  }

  private readonly listenerFailed = (error: RedisError): void => this.events.error(error);

  private readonly onPushError = (error: ReplyError): boolean => {
    const op = this.ops.shift();
    if (op === undefined) return false;
    error.command = op.subscribe ? SUBSCRIBE[op.kind] : UNSUBSCRIBE[op.kind];
    if (op.subscribe) {
      // The server refused the names (NOPERM for an ACL user, MOVED for a
      // shard channel on a node not owning its slot, ...): they will not work
      // on this socket, so they stop being wanted and their callers learn why.
      const refused = op.names.filter((name) => !this.active[op.kind].has(name) && this.wanted.has(op.kind, name));
      for (const name of refused) {
        this.wanted.drop(op.kind, name);
        this.pending.refused(op.kind, name, error);
      }
      if (op.kind === "shard" && refused.length > 0) this.events.shardDropped?.(refused, error);
    }
    op.done?.(error);
    return true;
  };

  /** One confirmation: it must be the next one the head op expects, or the socket is out of sync. */
  private confirm(kind: Kind, subscribe: boolean, name: string | null): boolean {
    const op = this.ops.peek();
    if (op === undefined || op.kind !== kind || op.subscribe !== subscribe || op.names[op.next] !== name) return false;
    op.next++;
    const finished = op.next === op.names.length;
    if (finished) this.ops.shift();
    if (name !== null && !subscribe) {
      this.active[kind].delete(name);
    } else if (name !== null && this.wanted.has(kind, name)) {
      // (A name unsubscribed meanwhile stays inactive; its UNSUBSCRIBE follows.)
      this.active[kind].add(name);
      this.pending.settled(kind, name);
    }
    if (finished) op.done?.();
    return true;
  }

  private get hasWork(): boolean {
    return !this.wanted.isEmpty || this.pending.size > 0;
  }

  // ---- what a new or lost connection means for the subscriptions --------------

  /** A new connection: subscribe everything wanted; it proves itself once all is confirmed. */
  private resubscribe(conn: RespSocket): void {
    conn.setPushReturnBuffers(true); // payloads stay binary-safe; text listeners get UTF-8 strings
    const reconnect = this.everReady;
    this.everReady = true;
    const channels = this.wanted.names("channel");
    const patterns = this.wanted.names("pattern");
    const shardChannels = this.wanted.names("shard");
    let outstanding = 1;
    const oneDone = (): void => {
      if (--outstanding !== 0 || this.owner.conn !== conn) return;
      this.owner.proven(conn);
      if (reconnect) {
        // What the server confirmed (a name it refused is no longer wanted).
        this.events.resubscribed({
          channels: channels.filter((n) => this.active.channel.has(n)),
          patterns: patterns.filter((n) => this.active.pattern.has(n)),
          shardChannels: shardChannels.filter((n) => this.active.shard.has(n)),
        });
      }
    };
    if (channels.length > 0) {
      outstanding++;
      this.send(conn, { kind: "channel", subscribe: true, names: channels, next: 0, done: oneDone });
    }
    if (patterns.length > 0) {
      outstanding++;
      this.send(conn, { kind: "pattern", subscribe: true, names: patterns, next: 0, done: oneDone });
    }
    if (shardChannels.length > 0) {
      outstanding++;
      this.send(conn, { kind: "shard", subscribe: true, names: shardChannels, next: 0, done: oneDone });
    }
    oneDone();
  }

  /**
   * The socket is gone: nothing is confirmed any more. Unsubscribes are as
   * good as done (a new socket starts with nothing); subscribes are sent
   * again from `wanted` on the next socket.
   */
  private forgetSocket(): void {
    for (const names of Object.values(this.active)) names.clear();
    for (const op of this.ops.drain()) if (!op.subscribe) op.done?.();
  }
}

function text(value: Reply | undefined): string {
  return Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
}

export function nameList(command: string, names: string | readonly string[], allowEmpty: boolean): string[] {
  const list = typeof names === "string" ? [names] : [...names];
  if (!allowEmpty && list.length === 0) throw new TypeError(`${command} needs at least one name`);
  for (const n of list) {
    if (typeof n !== "string" || n.length === 0) throw new TypeError(`${command}: names must be non-empty strings`);
    // The server echoes names back as UTF-8; one that does not survive the
    // round trip (a lone surrogate) could never be matched to its confirmation.
    if (/\p{Surrogate}/u.test(n)) throw new TypeError(`${command}: names must be well-formed Unicode`);
  }
  return [...new Set(list)];
}

/** Names grouped by hash slot, in first-seen order (one SSUBSCRIBE may not span slots on a cluster). */
function bySlot(names: readonly string[]): string[][] {
  const groups = new Map<number, string[]>();
  for (const n of names) {
    const slot = calculateSlot(n);
    const g = groups.get(slot);
    if (g === undefined) groups.set(slot, [n]);
    else g.push(n);
  }
  return [...groups.values()];
}
