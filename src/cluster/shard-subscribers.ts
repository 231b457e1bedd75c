// Sharded pub/sub on a cluster: SPUBLISH reaches only the nodes of
// the channel's shard, so each shard channel is subscribed at the master of
// its slot, one subscriber connection per master (a pubsub Subscriber each,
// with its own reconnect and resubscribe).
//
// What the caller wants (channel -> listeners) is kept here, not in the
// per-node subscribers: a channel's home follows its slot. reconcile() puts
// every wanted channel at its slot's current master; it runs when a channel
// is added and after every topology install. A node also tells us when a
// channel no longer belongs there: it refuses SSUBSCRIBE with MOVED (we
// subscribed on a stale table, or resubscribed after a failover on the old
// master), or it pushes an unsolicited "sunsubscribe" when the slot migrates
// away. Then the channel leaves that node and is placed again: at once on
// MOVED (the reply names the owner), after a refresh otherwise.
import { ClientClosedError, RedisError, ReplyError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";
import { ListenerRegistry, type AnyListener } from "../pubsub/listeners.js";
import { PendingSubscribes } from "../pubsub/pending-subscribes.js";
import { createConnector } from "../connection/connector.js";
import { nameList, Subscriber, type SubscribeOptions, type SubscriberEvents } from "../pubsub/subscriber.js";
import type { ClusterContext } from "./context.js";
import { keySlot } from "./slots.js";
import { isRedirect } from "./stats.js";
import { parseRedirect, splitAddress, type Address } from "./topology.js";

/** The per-node subscribers deliver Buffers to us; each caller's listener gets what it asked for. */
const AS_BUFFERS = { returnBuffers: true } as const;

/** What the shard subscribers report upward (the cluster client turns these into its events). */
export type ShardSubscriberEvents = Omit<SubscriberEvents, "shardDropped">;

export class ShardSubscribers {
  private readonly wanted = new ListenerRegistry();
  /** The master each wanted channel is subscribed at, or being subscribed at. */
  private readonly homes = new Map<string, Address>();
  /** Channels the server confirmed at their current home. */
  private readonly confirmed = new Set<string>();
  /** Channels confirmed at least once: confirming them again is a resubscription. */
  private readonly everConfirmed = new Set<string>();
  private readonly subscribers = new Map<Address, Subscriber>();
  private readonly waiting = new PendingSubscribes();
  private closed = false;

  constructor(
    private readonly ctx: ClusterContext,
    private readonly nodeOptions: (address: Address) => ResolvedOptions,
    private readonly events: ShardSubscriberEvents,
  ) {}

  /**
   * A channel is not where it should be: its node is unreachable, its
   * subscriber gave up, or it has no home (its slot had no owner, or its
   * placement failed). The topology is read again until this is false: each
   * read ends in reconcile(), which places what it can.
   */
  anyDown(): boolean {
    for (const sub of this.subscribers.values()) if (sub.down || sub.closed) return true;
    for (const name of this.names()) if (!this.homes.has(name)) return true;
    return false;
  }

  names(): string[] {
    return this.wanted.names("shard");
  }

  subscribe(names: string | readonly string[], listener: AnyListener, options: SubscribeOptions | undefined): Promise<void> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    let list: string[];
    try {
      list = nameList("SSUBSCRIBE", names, false);
      if (typeof listener !== "function") throw new TypeError("SSUBSCRIBE: the listener must be a function");
    } catch (err) {
      return Promise.reject(err);
    }
    this.wanted.add("shard", list, listener, options?.returnBuffers === true);
    const pending = new Set(list.filter((n) => !this.confirmed.has(n)));
    if (pending.size === 0) return Promise.resolve();
    // A caller told "failed" (timeout, refusal) must not keep receiving messages.
    const placed = this.waiting.wait("shard", pending, "SSUBSCRIBE", this.ctx.options.resolved.commandTimeoutMs, () => undefined);
    placed.catch(() => void this.unsubscribe(list, listener));
    if (this.ctx.router.topology === undefined) {
      this.ctx.refresher.refresh().then(
        () => this.reconcile(),
        (err: unknown) => {
          const error = err instanceof RedisError ? err : new RedisError("Cluster topology unavailable", "ERR_RESPITE_UNKNOWN", false, { cause: err });
          for (const n of pending) this.waiting.refused("shard", n, error);
        },
      );
    } else {
      this.reconcile();
    }
    return placed;
  }

  unsubscribe(names: string | readonly string[] | undefined, listener: AnyListener | undefined): Promise<void> {
    let list: string[];
    try {
      list = names === undefined ? this.names() : nameList("SUNSUBSCRIBE", names, true);
    } catch (err) {
      return Promise.reject(err);
    }
    const byHome = new Map<Address, string[]>();
    for (const name of this.wanted.remove("shard", list, listener)) {
      this.waiting.settled("shard", name);
      const home = this.homes.get(name);
      this.forget(name);
      this.everConfirmed.delete(name);
      if (home !== undefined) byHome.set(home, [...(byHome.get(home) ?? []), name]);
    }
    return Promise.all([...byHome].map(([home, gone]) => this.leave(home, gone))).then(() => undefined);
  }

  /** Put every wanted channel at its slot's current master (after a topology install, or new channels). */
  reconcile(): void {
    if (this.closed || this.ctx.router.topology === undefined) return;
    this.dropClosedSubscribers();
    const moves = new Map<Address, string[]>();
    const leaves = new Map<Address, string[]>();
    let homeless = false;
    for (const name of this.names()) {
      const owner = this.ctx.router.masterOf(keySlot(name));
      const home = this.homes.get(name);
      // No owner known (a failover under way): stay put until a refresh finds one.
      if (owner === undefined) homeless ||= home === undefined;
      if (owner === undefined || owner === home) continue;
      if (home !== undefined) leaves.set(home, [...(leaves.get(home) ?? []), name]);
      this.homes.set(name, owner);
      this.confirmed.delete(name);
      moves.set(owner, [...(moves.get(owner) ?? []), name]);
    }
    for (const [home, names] of leaves) void this.leave(home, names);
    for (const [owner, names] of moves) this.place(owner, names);
    if (homeless) this.ctx.refresher.nodeLost(); // read again until the slot has an owner
  }

  close(): void {
    this.closed = true;
    for (const s of this.subscribers.values()) s.destroy();
    this.subscribers.clear();
    this.waiting.rejectAll(new ClientClosedError());
  }

  private place(owner: Address, names: string[]): void {
    const sub = this.subscriberAt(owner);
    sub.subscribe("shard", names, this.forward, AS_BUFFERS).then(
      () => this.confirm(owner, names),
      (err: unknown) => this.placeFailed(owner, names, err),
    );
  }

  private confirm(owner: Address, names: readonly string[]): void {
    const again: string[] = [];
    for (const n of names) {
      if (this.homes.get(n) !== owner || !this.wanted.has("shard", n)) continue;
      this.confirmed.add(n);
      if (this.everConfirmed.has(n)) again.push(n);
      this.everConfirmed.add(n);
      this.waiting.settled("shard", n);
    }
    // The channel moved (failover, migration): messages in between were missed.
    if (again.length > 0) this.events.resubscribed({ channels: [], patterns: [], shardChannels: again });
  }

  private placeFailed(owner: Address, names: readonly string[], err: unknown): void {
    // A refusal with a redirection was handled by dropped(): the channel is on its way elsewhere.
    if (err instanceof ReplyError && isRedirect(err)) return;
    const error = err instanceof RedisError ? err : new RedisError("SSUBSCRIBE failed", "ERR_RESPITE_UNKNOWN", false, { cause: err });
    for (const n of names) {
      if (this.homes.get(n) !== owner) continue;
      this.forget(n);
      this.waiting.refused("shard", n, error);
    }
    this.closeIfIdle(owner);
    // Channels still wanted (a re-home after a failover, nobody waiting) are
    // homeless now: the topology is read again until reconcile() placed them.
    if (!this.closed) this.ctx.refresher.nodeLost();
  }

  /** A node refused or ended channels (their slot is elsewhere): place them again. */
  private dropped(owner: Address, names: readonly string[], error: ReplyError | undefined): void {
    for (const n of names) if (this.homes.get(n) === owner) this.forget(n);
    this.closeIfIdle(owner);
    if (this.closed) return;
    const moved = error?.code === "MOVED" ? parseRedirect(error.message, splitAddress(owner).host) : undefined;
    if (moved !== undefined) {
      // The reply names the owner: patch the table and go there at once.
      this.ctx.router.moveSlot(moved.slot, moved.to);
      this.reconcile();
    }
    // The reads that follow (until nothing is homeless) place the rest.
    this.ctx.refresher.nodeLost();
  }

  private async leave(home: Address, names: readonly string[]): Promise<void> {
    const sub = this.subscribers.get(home);
    if (sub === undefined) return;
    await sub.unsubscribe("shard", names, this.forward);
    this.closeIfIdle(home);
  }

  /** Subscribers that gave up (reconnect attempts exhausted): their channels are homeless, to be placed anew. */
  private dropClosedSubscribers(): void {
    for (const [address, sub] of this.subscribers) {
      if (!sub.closed) continue;
      this.subscribers.delete(address);
      for (const [name, home] of this.homes) if (home === address) this.forget(name);
    }
  }

  private forget(name: string): void {
    this.homes.delete(name);
    this.confirmed.delete(name);
  }

  private subscriberAt(address: Address): Subscriber {
    let sub = this.subscribers.get(address);
    if (sub === undefined) {
      const options = this.nodeOptions(address);
      sub = new Subscriber(options, createConnector(options), {
        ...this.events,
        // A node we subscribe at lost its connection: the topology may have changed.
        disconnect: (error) => {
          this.events.disconnect(error);
          this.ctx.refresher.nodeLost();
        },
        shardDropped: (names, error) => this.dropped(address, names, error),
      });
      this.subscribers.set(address, sub);
    }
    return sub;
  }

  /** A subscriber with nothing left to serve is closed (its node may be gone for good). */
  private closeIfIdle(address: Address): void {
    const sub = this.subscribers.get(address);
    if (sub === undefined || sub.subscriptions("shard").length > 0) return;
    for (const home of this.homes.values()) if (home === address) return;
    this.subscribers.delete(address);
    sub.destroy();
  }

  private readonly forward: AnyListener = (message, channel) => {
    this.wanted.deliver("shard", channel, message, undefined, this.events.error);
  };
}
