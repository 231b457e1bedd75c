export { Client, createClient, type ClientEvents, type CloseOptions } from "./client.js";
export type { RespiteClient, RespiteClientEvents } from "./respite-client.js";
export {
  AbortError,
  ClientClosedError,
  ConnectionError,
  ConnectionReleasedError,
  CrossSlotError,
  PoolTimeoutError,
  ProtocolError,
  QueueFullError,
  RedirectionLimitError,
  RedisError,
  ReplyError,
  SentinelError,
  TimeoutError,
  UnsafeIntegerError,
  WatchError,
  type ConnectionErrorReason,
  type RedisErrorOptions,
  type SentinelErrorKind,
} from "./errors.js";
export type { ClientOptions, Credentials, CredentialsProvider, PoolOptions, ReconnectOptions, TransportKind } from "./options.js";
export type { SentinelOptions } from "./sentinel/options.js";
export type { ClientCacheOptions } from "./cache/options.js";
export type { ClientCacheStats } from "./cache/client-cache.js";
export { CACHEABLE_COMMANDS } from "./cache/cacheable.js";
export type { DecoderOptions, IntegerMode, Reply, ReplyMode } from "./protocol/decode.js";
export type { Arg, Command } from "./protocol/encode.js";
export type { CommandOptions } from "./request.js";
export type { ClientStatus, DedicatedConnection, DisconnectReason, PoolStats } from "./transport.js";
export type { ConnectionRoute, SetupExec } from "./connection/handshake.js";
export type { ServerAddress } from "./options.js";
export { TypedCommands } from "./helpers/typed-commands.js";
export type {
  EventMapOf,
  ExpireCondition,
  GetExOptions,
  RedisKey,
  RedisValue,
  ScoredMember,
  SetOptions,
  ZAddOptions,
  ZMember,
  ZRangeBound,
  ZRangeOptions,
} from "./helpers/typed-commands.js";
export { runBatch, type BatchOptions, type BatchResult } from "./batch.js";
export type { Script } from "./script.js";
export type { KeyScanOptions, ScanOptions } from "./scan.js";
export type { MessageListener, PatternListener, SubscribeOptions } from "./pubsub/subscriber.js";
export { ClusterClient, createCluster, type ClusterEvents, type ClusterStats } from "./cluster/cluster-client.js";
export type { ClusterOptions, ReadFrom, RootNode } from "./cluster/options.js";
export { keySlot } from "./cluster/slots.js";
