// The contract every topology implements: a single-node Client (pipelined,
// pooled, behind Sentinel) and a ClusterClient offer the same calls, so a
// library (the Keyv adapter) or an application can take either.
import type { EventEmitter } from "node:events";
import type { BatchOptions, BatchResult } from "./batch.js";
import type { CloseOptions } from "./client.js";
import type { RedisError } from "./errors.js";
import type { RedisKey } from "./helpers/base.js";
import type { Command } from "./protocol/encode.js";
import type { PubSubCommands, PubSubEvents } from "./pubsub/pubsub-commands.js";
import type { ClientStatus, DedicatedConnection } from "./transport.js";

/** The events every client emits (each adds its own: Client's disconnect/reconnecting, a cluster's node events). */
export interface RespiteClientEvents extends PubSubEvents {
  ready: [];
  error: [error: RedisError];
  close: [];
}

/**
 * Either client: command(), the typed helpers, scripts, SCAN iterators,
 * batches, a lent connection, pub/sub, events, status and the lifecycle.
 */
export interface RespiteClient extends Omit<PubSubCommands<RespiteClientEvents>, keyof EventEmitter> {
  readonly status: ClientStatus;
  on(event: "ready" | "close", listener: () => void): this;
  on(event: "error", listener: (error: RedisError) => void): this;
  on(event: "subscriber-disconnect", listener: (...args: PubSubEvents["subscriber-disconnect"]) => void): this;
  on(event: "subscriber-reconnecting", listener: (...args: PubSubEvents["subscriber-reconnecting"]) => void): this;
  on(event: "resubscribed", listener: (...args: PubSubEvents["resubscribed"]) => void): this;
  once(event: "ready" | "close", listener: () => void): this;
  once(event: "error", listener: (error: RedisError) => void): this;
  once(event: "subscriber-disconnect", listener: (...args: PubSubEvents["subscriber-disconnect"]) => void): this;
  once(event: "subscriber-reconnecting", listener: (...args: PubSubEvents["subscriber-reconnecting"]) => void): this;
  once(event: "resubscribed", listener: (...args: PubSubEvents["resubscribed"]) => void): this;
  off(event: "ready" | "close", listener: () => void): this;
  off(event: "error", listener: (error: RedisError) => void): this;
  off(event: "subscriber-disconnect", listener: (...args: PubSubEvents["subscriber-disconnect"]) => void): this;
  off(event: "subscriber-reconnecting", listener: (...args: PubSubEvents["subscriber-reconnecting"]) => void): this;
  off(event: "resubscribed", listener: (...args: PubSubEvents["resubscribed"]) => void): this;
  batch(commands: readonly Command[], options?: BatchOptions): Promise<BatchResult[]>;
  /** One connection for several commands in a row; on a cluster, of the master serving `key` (any master without one). */
  withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T>;
  withConnection<T>(key: RedisKey, fn: (conn: DedicatedConnection) => Promise<T>): Promise<T>;
  close(options?: CloseOptions): Promise<void>;
  destroy(): void;
}
