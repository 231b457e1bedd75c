// Pub/sub on a cluster. A PUBLISH reaches every node of a cluster
// (the cluster bus forwards it), so channels and patterns live on one
// subscriber connection to any one node: on each (re)dial it goes to the node
// it used last if that node is still a master in the topology, else to the
// next master round-robin, so after a failover or a lost node the
// subscriber's own reconnect lands on a live master and resubscribes there.
// Shard channels (SSUBSCRIBE) live at their slot's master:
// shard-subscribers.ts.
import { resolveOptions, type ResolvedOptions } from "../options.js";
import type { AnyListener, Kind } from "../pubsub/listeners.js";
import { createConnector } from "../connection/connector.js";
import { Subscriber, type SubscribeOptions } from "../pubsub/subscriber.js";
import type { ClusterContext } from "./context.js";
import { ShardSubscribers, type ShardSubscriberEvents } from "./shard-subscribers.js";
import { address, addressesOf, splitAddress, type Address } from "./topology.js";

export class ClusterPubSub {
  private global: Subscriber | undefined;
  /** The node the channel/pattern subscriber dialed last; forgotten when its connection is lost. */
  private globalNode: Address | undefined;
  private readonly shards: ShardSubscribers;

  constructor(
    private readonly ctx: ClusterContext,
    private readonly events: ShardSubscriberEvents,
  ) {
    this.shards = new ShardSubscribers(ctx, (address) => this.optionsFor(address), events);
  }

  subscribe(kind: Kind, names: string | readonly string[], listener: AnyListener, options: SubscribeOptions | undefined): Promise<void> {
    if (kind === "shard") return this.shards.subscribe(names, listener, options);
    this.global ??= this.newGlobal();
    return this.global.subscribe(kind, names, listener, options);
  }

  unsubscribe(kind: Kind, names: string | readonly string[] | undefined, listener: AnyListener | undefined): Promise<void> {
    if (kind === "shard") return this.shards.unsubscribe(names, listener);
    return this.global?.unsubscribe(kind, names, listener) ?? Promise.resolve();
  }

  subscriptions(kind: Kind): string[] {
    if (kind === "shard") return this.shards.names();
    return this.global?.subscriptions(kind) ?? [];
  }

  /** A subscriber connection is down (the topology is read again until it is not: the failover may have moved its node's slots). */
  anyDown(): boolean {
    return this.shards.anyDown();
  }

  /** A topology was installed: shard channels follow their slots. */
  topologyChanged(): void {
    this.shards.reconcile();
  }

  close(): void {
    this.global?.destroy();
    this.shards.close();
  }

  /** Every node client option, at `address`. */
  private optionsFor(address: Address): ResolvedOptions {
    return resolveOptions({ ...this.ctx.options.node, ...splitAddress(address) });
  }

  private newGlobal(): Subscriber {
    const options = resolveOptions(this.ctx.options.node);
    // Each dial asks which master: the one used last while it is still a master, else the next.
    const connector = createConnector(options, {
      resolveAddress: async () => {
        if (this.ctx.router.topology === undefined) await this.ctx.refresher.refresh();
        this.globalNode = this.pickGlobalNode();
        return splitAddress(this.globalNode);
      },
    });
    return new Subscriber(options, connector, {
      ...this.events,
      disconnect: (error) => {
        // Its node may be gone: the next dial picks again, and the topology is read again.
        this.globalNode = undefined;
        this.events.disconnect(error);
        this.ctx.refresher.nodeLost();
      },
      reconnecting: (info) => {
        this.globalNode = undefined; // the dial failed: try another master next
        this.events.reconnecting(info);
      },
    });
  }

  private pickGlobalNode(): Address {
    const topology = this.ctx.router.topology;
    const masters = topology === undefined ? [] : [...addressesOf(topology).masters];
    if (this.globalNode !== undefined && masters.includes(this.globalNode)) return this.globalNode;
    if (masters.length === 0) {
      // No master known (every shard failed): any root node, in turn.
      const roots = this.ctx.options.rootNodes;
      const r = roots[this.ctx.router.nextTurn() % roots.length] as { host: string; port: number };
      return address(r.host, r.port);
    }
    return masters[this.ctx.router.nextTurn() % masters.length] as Address;
  }
}
