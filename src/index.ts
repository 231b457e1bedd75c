export { Client, createClient, type ClientEvents } from "./client.js";
export * from "./errors.js";
export type { ClientOptions, PoolOptions, ReconnectOptions, TransportKind } from "./options.js";
export type { Reply } from "./protocol/decode.js";
export type { Arg, Command } from "./protocol/encode.js";
export type { CommandOptions } from "./request.js";
export type { ClientStatus, DedicatedConnection, DisconnectReason } from "./transport.js";
