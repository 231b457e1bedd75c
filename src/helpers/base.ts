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

/** One item or an array of them: a multi-key helper takes `("a", "b")` as well as `(["a", "b"])`. */
export type OneOrMany<T> = T | readonly T[];

/**
 * The keys (fields, members, values) of a variadic helper, given as separate
 * arguments, as one array (as ioredis and node-redis accept), or mixed:
 * each array argument is spread in place, one level deep. An array is never
 * a valid key or value, so nothing is ambiguous. Without arrays, the
 * arguments are returned as they are (no copy).
 */
export function flatKeys<T>(items: readonly OneOrMany<T>[]): T[] {
  let out: T[] | undefined;
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as OneOrMany<T>;
    if (Array.isArray(item)) {
      out ??= items.slice(0, i) as T[];
      for (const x of item as readonly T[]) out.push(x);
    } else if (out !== undefined) {
      out.push(item as T);
    }
  }
  return out ?? (items as T[]);
}

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
