// The node clients of a cluster client, one per "host:port": a plain respite
// Client each (its own transport, reconnects, queue and deadlines), created
// on first need (a topology names the node, or a MOVED does) and closed when
// the node leaves the topology. The registry watches each client's
// connection so the cluster can refresh when a node is lost.
import { createClient, type Client, type CloseOptions } from "../client.js";
import type { SetupExec } from "../connection/handshake.js";
import type { RedisError } from "../errors.js";
import type { ResolvedClusterOptions } from "./options.js";
import { splitAddress, type Address } from "./topology.js";

export type NodeRole = "master" | "replica";

export interface NodeEntry {
  readonly address: Address;
  readonly host: string;
  readonly client: Client;
  role: NodeRole;
  /** Lost its connection and has not been ready since. */
  down: boolean;
}

/** What the registry tells the cluster client (which turns it into events and refreshes). */
export interface NodeHooks {
  added(address: Address, role: NodeRole): void;
  removed(address: Address): void;
  disconnected(address: Address, error: Error | undefined): void;
  /** A node in the registry lost its connection (disconnected, or failed a reconnect attempt). */
  lost(): void;
  error(error: RedisError): void;
}

const noop = (): void => undefined;

export class NodeRegistry {
  private readonly byAddress = new Map<Address, NodeEntry>();
  /** Clients of nodes that left, still closing (closeAll() waits for them). */
  private readonly leaving = new Set<Client>();

  constructor(
    private readonly options: ResolvedClusterOptions,
    private readonly hooks: NodeHooks,
  ) {}

  get size(): number {
    return this.byAddress.size;
  }

  all(): NodeEntry[] {
    return [...this.byAddress.values()];
  }

  addresses(): IterableIterator<Address> {
    return this.byAddress.keys();
  }

  /** The entry of a node, if the registry holds one (never creates it). */
  peek(address: Address): NodeEntry | undefined {
    return this.byAddress.get(address);
  }

  has(address: Address): boolean {
    return this.byAddress.has(address);
  }

  clients(role: NodeRole | "all"): Client[] {
    return this.all()
      .filter((e) => role === "all" || e.role === role)
      .map((e) => e.client);
  }

  /** The client of a node, created on first need (or again, if it closed itself: reconnect attempts exhausted). */
  at(address: Address, role: NodeRole): NodeEntry {
    const entry = this.byAddress.get(address);
    if (entry !== undefined && entry.client.status !== "closed") return entry;
    if (entry !== undefined) this.byAddress.delete(address);
    return this.create(address, role);
  }

  /** Keep exactly the `wanted` nodes: create the new ones, update roles, close those that left. */
  sync(wanted: ReadonlyMap<Address, NodeRole>): void {
    for (const [addr, role] of wanted) {
      const e = this.byAddress.get(addr);
      if (e === undefined || e.client.status === "closed") {
        if (e !== undefined) this.byAddress.delete(addr);
        this.create(addr, role);
      } else {
        e.role = role;
      }
    }
    // Runs after the caller installed the new table: commands these clients
    // still hold unsent fail with ClientClosedError and are routed by it.
    for (const e of this.all()) if (!wanted.has(e.address)) this.remove(e);
  }

  /** Is a node we route to still without a connection? */
  anyDown(): boolean {
    let down = false;
    for (const e of this.byAddress.values()) {
      if (!e.down) continue;
      if (e.client.status === "ready") e.down = false;
      else down = true;
    }
    return down;
  }

  /** Graceful close of every client, including those still leaving. */
  closeAll(options?: CloseOptions): Promise<void>[] {
    const closing = this.all().map((e) => e.client.close(options));
    for (const c of this.leaving) closing.push(c.close(options));
    return closing;
  }

  destroyAll(): void {
    for (const e of this.byAddress.values()) e.client.destroy();
    for (const c of this.leaving) c.destroy();
  }

  private create(address: Address, role: NodeRole): NodeEntry {
    const { host, port } = splitAddress(address);
    // retryReadOnly: false: a read that may have executed is retried by the
    // dispatcher, once per journey and at the slot's current owner; a node
    // client's own retry would come on top of it.
    // With readFrom other than "master", every connection of this node
    // (re)connects with READONLY, so it serves reads while a replica
    // (harmless on a master: a failover may swap them).
    const route = this.options.readFrom === "master" ? undefined : { verify: (exec: SetupExec) => exec(["READONLY"]).then(() => undefined) };
    const client = createClient({ ...this.options.node, host, port, lazyConnect: true, retryReadOnly: false }, route);
    const entry: NodeEntry = { address, host, client, role, down: false };
    client.on("ready", () => {
      entry.down = false;
    });
    client.on("disconnect", (info) => {
      if (this.byAddress.get(address) !== entry) return;
      entry.down = true;
      this.hooks.disconnected(address, info.error);
      this.hooks.lost();
    });
    client.on("reconnecting", () => {
      if (this.byAddress.get(address) !== entry) return;
      entry.down = true;
      this.hooks.lost();
    });
    client.on("error", (error) => this.hooks.error(error));
    this.byAddress.set(address, entry);
    this.hooks.added(address, role);
    if (!this.options.resolved.lazyConnect) client.connect().catch(noop);
    return entry;
  }

  private remove(entry: NodeEntry): void {
    this.byAddress.delete(entry.address);
    const client = entry.client;
    this.leaving.add(client);
    void client
      .close()
      .catch(noop)
      .finally(() => this.leaving.delete(client));
    this.hooks.removed(entry.address);
  }
}
