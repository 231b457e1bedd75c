// The pub/sub API, written once for every client that offers it: the
// single-node Client and the cluster client differ only in where
// subscriptions live (one connection, or one per node), which each supplies
// through three methods.
import { TypedCommands, type EventMapOf } from "../helpers/typed-commands.js";
import type { AnyListener, Kind } from "./listeners.js";
import type { MessageListener, PatternListener, SubscribeOptions } from "./subscriber.js";

/** What every client with pub/sub reports about its subscriptions. */
export interface PubSubEvents {
  /** A pub/sub connection was lost; messages published until `resubscribed` are missed. */
  "subscriber-disconnect": [info: { error: Error | undefined }];
  /** A pub/sub connection is waiting before its next dial. */
  "subscriber-reconnecting": [info: { attempt: number; delayMs: number }];
  /**
   * Subscriptions were made again on a new connection (after a reconnect, a
   * failover or a slot move): messages published in between were missed.
   */
  resubscribed: [info: { channels: string[]; patterns: string[]; shardChannels: string[] }];
}

/** Names that currently have a listener, by kind. */
export interface Subscriptions {
  channels: string[];
  patterns: string[];
  /** Sharded pub/sub (SSUBSCRIBE). */
  shardChannels: string[];
}

export abstract class PubSubCommands<Events extends EventMapOf<Events>> extends TypedCommands<Events> {
  /** Add `listener` to `names` of `kind`; resolves once the server confirmed every name. */
  protected abstract subscribeTo(kind: Kind, names: string | readonly string[], listener: AnyListener, options: SubscribeOptions | undefined): Promise<void>;
  /** Remove `listener` (or every listener) from `names` (or every name of `kind`). */
  protected abstract unsubscribeFrom(kind: Kind, names: string | readonly string[] | undefined, listener: AnyListener | undefined): Promise<void>;
  /** Names of `kind` that have a listener now. */
  protected abstract subscribed(kind: Kind): string[];

  /**
   * Subscribe `listener` to channels (opened on first use, subscribed again
   * after every reconnect). Resolves once the server confirmed every
   * channel. Messages are UTF-8 strings, or Buffers with `{ returnBuffers: true }`.
   */
  subscribe(channels: string | readonly string[], listener: MessageListener<string>): Promise<void>;
  subscribe(channels: string | readonly string[], listener: MessageListener<Buffer>, options: SubscribeOptions & { returnBuffers: true }): Promise<void>;
  subscribe(channels: string | readonly string[], listener: MessageListener<string> | MessageListener<Buffer>, options?: SubscribeOptions): Promise<void> {
    return this.subscribeTo("channel", channels, listener as AnyListener, options);
  }

  /** Subscribe `listener` to glob-style patterns (PSUBSCRIBE); it gets (message, channel, pattern). */
  psubscribe(patterns: string | readonly string[], listener: PatternListener<string>): Promise<void>;
  psubscribe(patterns: string | readonly string[], listener: PatternListener<Buffer>, options: SubscribeOptions & { returnBuffers: true }): Promise<void>;
  psubscribe(patterns: string | readonly string[], listener: PatternListener<string> | PatternListener<Buffer>, options?: SubscribeOptions): Promise<void> {
    return this.subscribeTo("pattern", patterns, listener as AnyListener, options);
  }

  /**
   * Subscribe `listener` to shard channels (SSUBSCRIBE, Redis 7): messages
   * sent with SPUBLISH, which a cluster delivers within the channel's shard
   * only. On a cluster each channel is subscribed at its slot's master and
   * follows the slot (failover, migration).
   */
  ssubscribe(channels: string | readonly string[], listener: MessageListener<string>): Promise<void>;
  ssubscribe(channels: string | readonly string[], listener: MessageListener<Buffer>, options: SubscribeOptions & { returnBuffers: true }): Promise<void>;
  ssubscribe(channels: string | readonly string[], listener: MessageListener<string> | MessageListener<Buffer>, options?: SubscribeOptions): Promise<void> {
    return this.subscribeTo("shard", channels, listener as AnyListener, options);
  }

  /**
   * Remove `listener` from channels (every listener when omitted; every
   * channel when `channels` is omitted). A channel left without listeners is
   * unsubscribed on the server; resolves once it confirmed.
   */
  unsubscribe(channels?: string | readonly string[], listener?: MessageListener<string> | MessageListener<Buffer>): Promise<void> {
    return this.unsubscribeFrom("channel", channels, listener as AnyListener | undefined);
  }

  /** As unsubscribe(), for patterns. */
  punsubscribe(patterns?: string | readonly string[], listener?: PatternListener<string> | PatternListener<Buffer>): Promise<void> {
    return this.unsubscribeFrom("pattern", patterns, listener as AnyListener | undefined);
  }

  /** As unsubscribe(), for shard channels. */
  sunsubscribe(channels?: string | readonly string[], listener?: MessageListener<string> | MessageListener<Buffer>): Promise<void> {
    return this.unsubscribeFrom("shard", channels, listener as AnyListener | undefined);
  }

  /** Channels, patterns and shard channels that currently have a listener. */
  get subscriptions(): Subscriptions {
    return { channels: this.subscribed("channel"), patterns: this.subscribed("pattern"), shardChannels: this.subscribed("shard") };
  }
}
