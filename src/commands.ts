// The command semantics table: for every command, what it does to the
// connection it runs on, and therefore where respite may run it. Every path
// asks here (command(), batch() plain and atomic, withConnection(), the
// cluster client) and nowhere else decides it.
//
// Flags (read-only, blocking, key positions) come from @ioredis/commands, a
// table generated from the server's own `COMMAND` output and kept up to date
// by the ioredis maintainers. We chose it over asking `COMMAND INFO` at
// connect time because the answer must be known before the first connection
// exists (offline queue, retry decisions), and one static table costs no round
// trip on every (re)connect of every pooled socket. What a command does to its
// connection is not in that metadata: the short lists below add it.
import commands from "@ioredis/commands";
import type { Arg, Command } from "./protocol/encode.js";
import { resp2Shape, type Resp2Shape } from "./protocol/resp2-shape.js";

/**
 * What a command does to its connection:
 * - plain: reads or writes data; any connection will do.
 * - state: changes the connection's state for the commands after it
 *   (SELECT, MULTI, SUBSCRIBE, CLIENT REPLY ...). Never on a socket other
 *   callers share: on a shared socket it would change what their commands do.
 * - own-connection: answers about the writes made earlier on its own
 *   connection (WAIT, WAITAOF): it must run on the connection that carried them.
 * - blocks: holds its connection until data arrives or its own timeout passes.
 */
export type ConnectionEffect = "plain" | "state" | "own-connection" | "blocks";

export interface CommandSemantics {
  effect: ConnectionEffect;
  /** Safe to retry once after its socket died (it changes nothing). */
  readOnly: boolean;
  /** The server may hold the reply up to the command's own timeout argument (BLPOP, XREAD BLOCK, WAIT). */
  holds: boolean;
  /**
   * For "state" commands: may it run on a connection lent to one caller? No
   * when its replies break the one-reply-per-command rule every respite
   * socket relies on (SUBSCRIBE, MONITOR, CLIENT REPLY OFF) or change how
   * replies are encoded (HELLO).
   */
  lendable: boolean;
  /** For "state" commands: the way that works instead, quoted in the refusal. */
  route: string;
  /** Affects only the very next command (ASKING): harmless right before a command of the same write. */
  nextOnly: boolean;
  /** Opens, ends or watches a transaction: it cannot be nested inside an atomic batch. */
  transaction: boolean;
  /** How its RESP3 reply (compat mode) is put back in RESP2's shape, when it differs. */
  resp3: Resp2Shape | undefined;
}

/** Where a command is about to run; see refusal(). */
export type Placement =
  /** command() on the pipelined transport: the one socket every caller shares. */
  | "shared"
  /** command() on the pooled transport: whichever pooled socket is free, one command at a time. */
  | "any-socket"
  /** command() or a plain batch on a cluster: a keyless command goes to any master. */
  | "any-node"
  /** A connection lent to one caller: withConnection(), or a batch that changes connection state. */
  | "lent"
  /** Inside the MULTI … EXEC of an atomic batch. */
  | "transaction";

interface StateEntry {
  route: string;
  lendable?: false;
  /** Only the very next command is affected (ASKING): harmless right before a command of the same write. */
  nextOnly?: true;
  /** Opens, ends or watches a transaction: it cannot be nested inside an atomic batch. */
  transaction?: true;
}

const ON_LENT = "run it inside withConnection(), whose socket is closed afterwards";
const TRANSACTION = "use batch(commands, { atomic: true }), or withConnection() with runBatch(conn, commands, { atomic: true }) to WATCH";

/** Keys are lower-case names, or "name|subcommand" for container commands. */
const STATE: Record<string, StateEntry> = {
  select: { route: "set the db option of createClient(), or put SELECT in a batch() or withConnection(), which run on a connection of their own" },
  multi: { route: TRANSACTION, transaction: true },
  exec: { route: TRANSACTION, transaction: true },
  discard: { route: TRANSACTION, transaction: true },
  watch: { route: TRANSACTION, transaction: true },
  unwatch: { route: TRANSACTION, transaction: true },
  subscribe: { route: "use client.subscribe()", lendable: false },
  unsubscribe: { route: "use client.unsubscribe()", lendable: false },
  psubscribe: { route: "use client.psubscribe()", lendable: false },
  punsubscribe: { route: "use client.punsubscribe()", lendable: false },
  ssubscribe: { route: "use client.ssubscribe()", lendable: false },
  sunsubscribe: { route: "use client.sunsubscribe()", lendable: false },
  monitor: { route: "respite has no MONITOR stream; use redis-cli monitor", lendable: false },
  sync: { route: "replication streams are not supported", lendable: false },
  psync: { route: "replication streams are not supported", lendable: false },
  replconf: { route: "replication streams are not supported", lendable: false },
  hello: { route: "respite sends HELLO itself; set username, password and clientName in the options", lendable: false },
  auth: { route: `set username and password in the options (sent on every reconnect), or ${ON_LENT}` },
  reset: { route: ON_LENT },
  quit: { route: "use close()" },
  readonly: { route: ON_LENT },
  readwrite: { route: ON_LENT },
  asking: { route: "the cluster client sends ASKING itself when a slot is migrating", nextOnly: true },
  "client|reply": {
    route: "respite matches every command with its reply, so CLIENT REPLY cannot be used; to ignore a reply, do not await it",
    lendable: false,
  },
  "client|setname": { route: `set the clientName option (sent on every reconnect), or ${ON_LENT}` },
  "client|setinfo": { route: ON_LENT },
  "client|tracking": { route: ON_LENT },
  "client|caching": { route: ON_LENT },
  "client|no-evict": { route: ON_LENT },
  "client|no-touch": { route: ON_LENT },
};

/** The "state" entries of the table ("name" or "name|subcommand"), for tests that walk every one. */
export const STATE_COMMANDS: readonly string[] = Object.keys(STATE);

/** Commands that answer about their own connection's earlier writes. */
const OWN_CONNECTION = new Set(["wait", "waitaof"]);

function argText(a: Arg | undefined): string {
  return a === undefined ? "" : typeof a === "string" ? a : Buffer.isBuffer(a) ? a.toString("latin1") : String(a);
}

/** Upper-case name of a command, as used in error messages. */
export function commandName(args: Command): string {
  return argText(args[0]).toUpperCase();
}

const cache = new Map<string, CommandSemantics>();

function build(lower: string, sub: string): CommandSemantics {
  const known = commands.exists(lower);
  const readOnly = known && commands.hasFlag(lower, "readonly");
  const holds = known && commands.hasFlag(lower, "blocking");
  const state = STATE[`${lower}|${sub}`] ?? STATE[lower];
  if (state !== undefined) {
    const { route, lendable, nextOnly, transaction } = state;
    return { effect: "state", readOnly, holds, route, lendable: lendable !== false, nextOnly: nextOnly === true, transaction: transaction === true, resp3: undefined };
  }
  const effect: ConnectionEffect = OWN_CONNECTION.has(lower) ? "own-connection" : holds ? "blocks" : "plain";
  return { effect, readOnly, holds, lendable: true, route: "", nextOnly: false, transaction: false, resp3: resp2Shape(lower) };
}

const CONTAINERS = new Set(["client"]);

/** The semantics of one invocation (XREAD and XREADGROUP block only with a BLOCK argument). */
export function semantics(args: Command): CommandSemantics {
  const lower = argText(args[0]).toLowerCase();
  const sub = CONTAINERS.has(lower) ? argText(args[1]).toLowerCase() : "";
  const key = sub === "" ? lower : `${lower}|${sub}`;
  let sem = cache.get(key);
  if (sem === undefined) {
    sem = build(lower, sub);
    // Only real command names are cached, so the map stays bounded.
    if (commands.exists(lower)) cache.set(key, sem);
  }
  if (sem.effect === "blocks" && (lower === "xread" || lower === "xreadgroup")) {
    const blocks = args.some((a, i) => i > 0 && argText(a).toUpperCase() === "BLOCK");
    if (!blocks) return { ...sem, effect: "plain", holds: false };
  }
  return sem;
}

/**
 * Why `args` must not run at `placement`, as the message of the TypeError
 * the caller gets (naming a route that works), or undefined when it may.
 */
export function refusal(args: Command, placement: Placement): string | undefined {
  const sem = semantics(args);
  const name = commandName(args);
  if (sem.effect === "state") {
    if (placement === "shared" || placement === "any-socket" || placement === "any-node") {
      return `${name} changes the state of its connection, and command() runs on sockets other callers share: ${sem.route}`;
    }
    if (!sem.lendable) return `${name} cannot run on a respite connection: ${sem.route}`;
    if (placement === "transaction" && sem.transaction) {
      return `${name} cannot be nested inside an atomic batch: use withConnection() with runBatch(conn, commands, { atomic: true }) to WATCH`;
    }
    return undefined;
  }
  if (sem.effect === "own-connection" && (placement === "any-socket" || placement === "any-node")) {
    const route = placement === "any-node" ? "withConnection(key, fn) or an atomic batch" : "batch() or withConnection()";
    return (
      `${name} answers about the writes made earlier on its own connection, and command() may run each command on a different connection here: ` +
      `send the writes and the ${name} together in ${route}`
    );
  }
  return undefined;
}

/**
 * Does this list of commands (a batch) need a connection of its own? Yes
 * when one of them changes connection state, except a leading-edge command
 * that affects only the next command (ASKING) followed by one in the same
 * group. Throws the refusal (TypeError) of a command that cannot run on any
 * connection at `placement` ("lent" or "transaction").
 */
export function needsOwnConnection(list: readonly Command[], placement: "lent" | "transaction"): boolean {
  let own = false;
  for (let i = 0; i < list.length; i++) {
    const args = list[i] as Command;
    const why = refusal(args, placement);
    if (why !== undefined) throw new TypeError(why);
    const sem = semantics(args);
    if (sem.effect === "state" && !(sem.nextOnly && i + 1 < list.length)) own = true;
  }
  return own;
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
