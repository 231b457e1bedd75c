// Command metadata: is a command read-only (safe to retry once after its
// socket died), does it block the connection, where are its keys.
//
// Source: @ioredis/commands, a table generated from the server's own
// `COMMAND` output and kept up to date by the ioredis maintainers. We chose it
// over asking `COMMAND INFO` at connect time because the answer must be known
// before the first connection exists (offline queue, retry decisions), and one
// static table costs no round trip on every (re)connect of every pooled socket.
import commands from "@ioredis/commands";
import type { Arg, Command } from "./protocol/encode.js";

export interface CommandFlags {
  readOnly: boolean;
  /** Holds the connection until data arrives or its own timeout passes. */
  blocking: boolean;
  /**
   * Changes the state of its connection for the commands after it (SELECT,
   * MULTI, WATCH, SUBSCRIBE, ...). Sent with command() on a shared or pooled
   * socket it would change what other callers' commands do (review finding:
   * after command(["SELECT", "3"]) another caller's GET read db 3), so
   * command() refuses them; batch(), withConnection(), subscribe() and the
   * db option are their homes.
   */
  stateful: boolean;
}

const STATEFUL = new Set([
  "select", "multi", "exec", "discard", "watch", "unwatch", "subscribe", "unsubscribe", "psubscribe",
  "punsubscribe", "ssubscribe", "sunsubscribe", "monitor", "reset", "hello", "quit", "auth",
]);

const cache = new Map<string, CommandFlags>();

function argText(a: Arg | undefined): string {
  return a === undefined ? "" : typeof a === "string" ? a : Buffer.isBuffer(a) ? a.toString("latin1") : String(a);
}

/** Upper-case name of a command, as used in error messages. */
export function commandName(args: Command): string {
  return argText(args[0]).toUpperCase();
}

function lookup(lower: string): CommandFlags {
  let flags = cache.get(lower);
  if (flags === undefined) {
    const known = commands.exists(lower);
    flags = {
      readOnly: known && commands.hasFlag(lower, "readonly"),
      blocking: known && commands.hasFlag(lower, "blocking"),
      stateful: STATEFUL.has(lower),
    };
    // Only cache real command names, so the map stays bounded.
    if (known) cache.set(lower, flags);
  }
  return flags;
}

/**
 * Flags for one invocation. XREAD and XREADGROUP block only with a BLOCK
 * argument; the table marks them blocking always.
 */
export function commandFlags(args: Command): CommandFlags {
  const lower = argText(args[0]).toLowerCase();
  const flags = lookup(lower);
  if (flags.blocking && (lower === "xread" || lower === "xreadgroup")) {
    const blocks = args.some((a, i) => i > 0 && argText(a).toUpperCase() === "BLOCK");
    return blocks ? flags : { readOnly: flags.readOnly, blocking: false, stateful: false };
  }
  return flags;
}

/**
 * How long the server may hold a blocking command, in ms, read from its own
 * timeout argument; Infinity for "block forever" (0) or when unknown.
 */
export function blockingTimeoutMs(args: Command): number {
  const lower = argText(args[0]).toLowerCase();
  let ms: number;
  if (lower === "xread" || lower === "xreadgroup") {
    const i = args.findIndex((a, j) => j > 0 && argText(a).toUpperCase() === "BLOCK");
    ms = Number(argText(args[i + 1]));
  } else if (lower === "wait" || lower === "waitaof") {
    ms = Number(argText(args[args.length - 1]));
  } else if (lower === "bzmpop" || lower === "blmpop") {
    ms = Number(argText(args[1])) * 1000;
  } else {
    ms = Number(argText(args[args.length - 1])) * 1000;
  }
  return Number.isFinite(ms) && ms > 0 ? ms : Infinity;
}

/** Argument indexes of the keys (into the full command, name at 0). */
export function keyIndexes(args: Command): number[] {
  const lower = argText(args[0]).toLowerCase();
  if (!commands.exists(lower)) return [];
  return commands.getKeyIndexes(lower, args.slice(1).map((a) => (typeof a === "bigint" ? String(a) : a))).map((i) => i + 1);
}
