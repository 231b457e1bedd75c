// The root of the typed-helper classes. Everything above it needs only
// command(), so any client that can send a command (the single-node Client
// today, a cluster client tomorrow) gets every helper by extending
// TypedCommands. It is an EventEmitter because the classes that extend it are
// (TypeScript has one base class; the event map stays the subclass's choice).
import { EventEmitter } from "node:events";
import type { Reply } from "../protocol/decode.js";
import type { Arg, Command } from "../protocol/encode.js";
import type { CommandOptions } from "../request.js";

/** A key: text, or raw bytes. */
export type RedisKey = string | Buffer;
/** A value sent to Redis: text, bytes, or a number (sent as its decimal text). */
export type RedisValue = Arg;

/** An event map as EventEmitter<T> takes it: event name -> listener arguments. */
export type EventMapOf<T> = { [K in keyof T]: unknown[] };

export abstract class CommandsBase<Events extends EventMapOf<Events>> extends EventEmitter<Events> {
  /** Send any command; the typed helpers are thin wrappers over it. */
  abstract command(args: Command, options?: CommandOptions): Promise<Reply>;
}

/** Helpers' shared plumbing: send, then narrow the reply with `convert`. */
export function call<T>(
  target: { command(args: Command, options?: CommandOptions): Promise<Reply> },
  args: Command,
  convert: (command: string, reply: Reply) => T,
): Promise<T> {
  return target.command(args).then((reply) => convert(String(args[0]), reply));
}
