// The cluster's shape: which node serves each of the 16384 slots, and the
// replicas of each master. Parsed from CLUSTER SHARDS (Redis 7) or, on older
// servers, CLUSTER SLOTS; patched by MOVED between refreshes.
import { ProtocolError } from "../errors.js";
import type { Reply } from "../protocol/decode.js";
import { SLOT_COUNT } from "./slots.js";

/** "host:port" */
export type Address = string;

export interface Shard {
  master: Address;
  /** Replicas not flagged failed. */
  replicas: Address[];
}

export interface Topology {
  /** slots[s] is the shard serving slot s (undefined: no node covers it). */
  slots: (Shard | undefined)[];
  /** The shards that serve at least one slot. */
  shards: Shard[];
}

export function address(host: string, port: number): Address {
  return `${host}:${port}`;
}

export function splitAddress(addr: Address): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

/** A node that reports its endpoint as unknown ("?" or "") is reached at the host we asked. */
function hostOr(value: Reply | undefined, fallbackHost: string): string {
  return typeof value === "string" && value !== "" && value !== "?" ? value : fallbackHost;
}

function fields(entry: Reply): Map<string, Reply> {
  const out = new Map<string, Reply>();
  if (!Array.isArray(entry)) return out;
  for (let i = 0; i + 1 < entry.length; i += 2) out.set(String(entry[i]), entry[i + 1] as Reply);
  return out;
}

function invalid(command: string): ProtocolError {
  return new ProtocolError(`Unexpected reply to ${command}`);
}

/** CLUSTER SHARDS (Redis 7): [["slots", [a, b, ...], "nodes", [[field, value, ...], ...]], ...]. */
export function parseShards(reply: Reply, tls: boolean, fallbackHost: string): Topology {
  if (!Array.isArray(reply)) throw invalid("CLUSTER SHARDS");
  const slots = new Array<Shard | undefined>(SLOT_COUNT).fill(undefined);
  const shards: Shard[] = [];
  for (const raw of reply) {
    const shardFields = fields(raw);
    const ranges = shardFields.get("slots");
    const nodes = shardFields.get("nodes");
    if (!Array.isArray(ranges) || !Array.isArray(nodes)) throw invalid("CLUSTER SHARDS");
    if (ranges.length === 0) continue;
    let master: Address | undefined;
    const replicas: Address[] = [];
    for (const n of nodes) {
      const f = fields(n);
      const port = Number(tls ? (f.get("tls-port") ?? f.get("port")) : (f.get("port") ?? f.get("tls-port")));
      if (!Number.isInteger(port) || port <= 0) continue;
      const addr = address(hostOr(f.get("endpoint") ?? f.get("ip"), hostOr(f.get("ip"), fallbackHost)), port);
      const health = String(f.get("health") ?? "online");
      if (f.get("role") === "master") {
        // During a failover a shard may list its old master too, failed.
        if (master === undefined || health !== "fail") master = addr;
      } else if (health !== "fail") {
        // Redis 7.0 reports a replica that has received no write yet as
        // "loading" although its link is up; only "fail" rules one out.
        replicas.push(addr);
      }
    }
    if (master === undefined) continue;
    const shard: Shard = { master, replicas: replicas.filter((r) => r !== master) };
    shards.push(shard);
    for (let i = 0; i + 1 < ranges.length; i += 2) fillRange(slots, Number(ranges[i]), Number(ranges[i + 1]), shard);
  }
  return { slots, shards };
}

/** CLUSTER SLOTS: [[start, end, [host, port, id, ...], [replica...], ...], ...]. */
export function parseSlots(reply: Reply, fallbackHost: string): Topology {
  if (!Array.isArray(reply)) throw invalid("CLUSTER SLOTS");
  const slots = new Array<Shard | undefined>(SLOT_COUNT).fill(undefined);
  const byMaster = new Map<Address, Shard>();
  for (const range of reply) {
    if (!Array.isArray(range) || range.length < 3) throw invalid("CLUSTER SLOTS");
    const nodeAddr = (n: Reply): Address | undefined => {
      if (!Array.isArray(n) || n.length < 2) return undefined;
      return address(hostOr(n[0], fallbackHost), Number(n[1]));
    };
    const master = nodeAddr(range[2] as Reply);
    if (master === undefined) throw invalid("CLUSTER SLOTS");
    let shard = byMaster.get(master);
    if (shard === undefined) {
      shard = { master, replicas: [] };
      byMaster.set(master, shard);
    }
    for (const r of range.slice(3)) {
      const a = nodeAddr(r);
      if (a !== undefined && !shard.replicas.includes(a)) shard.replicas.push(a);
    }
    fillRange(slots, Number(range[0]), Number(range[1]), shard);
  }
  return { slots, shards: [...byMaster.values()] };
}

function fillRange(slots: (Shard | undefined)[], start: number, end: number, shard: Shard): void {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end >= SLOT_COUNT || start > end) {
    throw new ProtocolError("Unexpected slot range in the cluster topology");
  }
  for (let s = start; s <= end; s++) slots[s] = shard;
}

/**
 * "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381": the slot and the
 * node to go to. An empty host (":6381", an unknown endpoint) means the host
 * of the node that answered.
 */
export function parseRedirect(message: string, fromHost: string): { slot: number; to: Address } | undefined {
  const parts = message.split(" ");
  if (parts.length < 3) return undefined;
  const slot = Number(parts[1]);
  const target = parts[2] as string;
  const i = target.lastIndexOf(":");
  if (!Number.isInteger(slot) || i === -1) return undefined;
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  if (!Number.isInteger(port) || port <= 0) return undefined;
  return { slot, to: address(host === "" || host === "?" ? fromHost : host, port) };
}

/** Every address a topology names: masters first, then replicas. */
export function addressesOf(topology: Topology): { masters: Set<Address>; replicas: Set<Address> } {
  const masters = new Set<Address>();
  const replicas = new Set<Address>();
  for (const s of topology.shards) masters.add(s.master);
  for (const s of topology.shards) for (const r of s.replicas) if (!masters.has(r)) replicas.add(r);
  return { masters, replicas };
}

/** MOVED: `slot` is served by `to` from now on (until the next refresh says otherwise). */
export function moveSlot(topology: Topology, slot: number, to: Address): void {
  if (slot < 0 || slot >= SLOT_COUNT) return;
  let shard = topology.shards.find((s) => s.master === to);
  if (shard === undefined) {
    shard = { master: to, replicas: [] };
    topology.shards.push(shard);
  }
  topology.slots[slot] = shard;
}

/** Does any slot have another master (or none) in `next`? */
export function mastersChanged(prev: Topology, next: Topology): boolean {
  for (let s = 0; s < SLOT_COUNT; s++) if (prev.slots[s]?.master !== next.slots[s]?.master) return true;
  return false;
}

/** One slot per master (the lowest it serves): routing by it reaches that master, or whoever took its slots over. */
export function oneSlotPerMaster(topology: Topology): number[] {
  const firstSlots: number[] = [];
  const seen = new Set<Address>();
  for (let s = 0; s < SLOT_COUNT; s++) {
    const shard = topology.slots[s];
    if (shard !== undefined && !seen.has(shard.master)) {
      seen.add(shard.master);
      firstSlots.push(s);
    }
  }
  return firstSlots;
}
