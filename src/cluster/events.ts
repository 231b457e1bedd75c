// What a cluster client reports as it works: one event per change a caller
// may want to log or alert on. Counters (stats.ts) cover the frequent ones.
import type { RedisError } from "../errors.js";
import type { PubSubEvents } from "../pubsub/pubsub-commands.js";
import type { Address } from "./topology.js";

/** Besides these, the pub/sub events of a single-node client (subscriber-disconnect, resubscribed, ...). */
export interface ClusterEvents extends PubSubEvents {
  /** The first topology is known (commands no longer wait for it). */
  ready: [];
  /** Reported only when someone listens (as on Client): node errors and failed refreshes. */
  error: [error: RedisError];
  close: [];
  /** A refresh installed a topology. */
  refresh: [info: { masters: Address[]; replicas: Address[] }];
  /** A node client was created (the node appeared, or a MOVED named it). */
  "node-added": [info: { address: Address; role: "master" | "replica" }];
  /** A node left the topology: its client is closed. */
  "node-removed": [info: { address: Address }];
  /** A node client lost its connection (it reconnects on its own; a refresh follows). */
  "node-disconnect": [info: { address: Address; error: Error | undefined }];
  /** A command was redirected. */
  redirect: [info: { kind: "moved" | "ask"; slot: number; from: Address; to: Address }];
}

/** How the cluster client's parts report an event (its own emit, handed to them). */
export type EmitClusterEvent = <K extends keyof ClusterEvents>(event: K, ...args: ClusterEvents[K]) => void;
