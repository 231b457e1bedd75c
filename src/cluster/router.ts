// Which node client a command goes to: the master of its slot's shard in the
// current topology, a replica for a read when readFrom allows, any master
// (round-robin) for a keyless command.
import { semantics } from "../commands.js";
import type { Command } from "../protocol/encode.js";
import type { NodeEntry, NodeRegistry } from "./node-registry.js";
import type { ReadFrom } from "./options.js";
import { moveSlot, type Address, type Shard, type Topology } from "./topology.js";

export class SlotRouter {
  /** Undefined until the first refresh installs one. */
  topology: Topology | undefined;
  /** One round-robin turn counter for every choice (keyless masters, replicas, which node a refresh asks first). */
  private turns = 0;

  constructor(
    private readonly readFrom: ReadFrom,
    private readonly nodes: NodeRegistry,
  ) {}

  nextTurn(): number {
    return this.turns++;
  }

  /** The node client for a slot (keyless: any master, round-robin), honouring readFrom for reads. */
  route(slot: number | undefined, args: Command | undefined): NodeEntry | undefined {
    const topo = this.topology;
    if (topo === undefined) return undefined;
    let shard: Shard | undefined;
    if (slot === undefined) {
      if (topo.shards.length === 0) return undefined;
      shard = topo.shards[this.nextTurn() % topo.shards.length];
    } else {
      shard = topo.slots[slot];
    }
    if (shard === undefined) return undefined;
    if (this.readFrom !== "master" && args !== undefined && shard.replicas.length > 0 && semantics(args).readOnly) {
      const replica = this.replicaOf(shard);
      if (replica !== undefined) return replica;
    }
    return this.nodes.at(shard.master, "master");
  }

  /** "host:port" of the master serving `slot` now. */
  masterOf(slot: number): Address | undefined {
    return this.topology?.slots[slot]?.master;
  }

  /** MOVED: patch the table at once, ahead of the refresh it triggers. */
  moveSlot(slot: number, to: Address): void {
    if (this.topology === undefined) return;
    // Client-side caches of both sides: the slot's keys are no longer where they were read.
    const from = this.topology.slots[slot]?.master;
    if (from !== to) {
      if (from !== undefined) this.nodes.peek(from)?.client.flushClientCache();
      this.nodes.peek(to)?.client.flushClientCache();
    }
    moveSlot(this.topology, slot, to);
  }

  private replicaOf(shard: Shard): NodeEntry | undefined {
    const n = shard.replicas.length;
    const start = this.nextTurn();
    for (let i = 0; i < n; i++) {
      const entry = this.nodes.at(shard.replicas[(start + i) % n] as Address, "replica");
      // "replica": any replica (its client queues while it reconnects);
      // "preferReplica": only one that is connected now, else the master.
      if (this.readFrom === "replica" || entry.client.status === "ready") return entry;
    }
    return undefined;
  }
}
