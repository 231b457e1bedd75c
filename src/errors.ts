// Every rejection respite produces is one of these classes. They carry data
// (`code`, `maybeExecuted`, `reason`) so callers branch on fields, never on
// message text. Messages name commands, never their arguments, and never a
// password (arguments may hold secrets: AUTH, HELLO, MIGRATE ... AUTH).
//
// Codes are respite's own (ERR_RESPITE_*), never Node's (ETIMEDOUT means a
// socket's timeout to Node code; ours is a command's deadline); a ReplyError
// keeps the server's own code (ERR, WRONGTYPE, MOVED ...).
//
// `instanceof` works across two installed copies of respite (a library and
// the application each with its own): every error carries, under a
// Symbol.for key shared by all copies, the names of its classes, and each
// class checks that list as well as its own prototype chain.

export interface RedisErrorOptions {
  cause?: unknown;
}

const KINDS = Symbol.for("respite.error.kinds");

/** Base class of every error respite rejects with. */
export class RedisError extends Error {
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const kinds = typeof value === "object" && value !== null ? (value as { [KINDS]?: unknown })[KINDS] : undefined;
    return Array.isArray(kinds) && kinds.includes(this.name);
  }

  /** A stable machine-readable code. */
  readonly code: string;
  /**
   * True when the command may have reached the server and run. False when
   * respite knows it was never written. Callers use it to decide whether a
   * retry of a non-idempotent command is safe.
   */
  readonly maybeExecuted: boolean;

  constructor(message: string, code: string, maybeExecuted: boolean, options?: RedisErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.maybeExecuted = maybeExecuted;
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === "function" && c !== Error; c = Object.getPrototypeOf(c)) kinds.push((c as { name: string }).name);
    Object.defineProperty(this, KINDS, { value: kinds, enumerable: false });
  }
}

/** The server answered with an error reply (`-ERR ...`, `-WRONGTYPE ...`). */
export class ReplyError extends RedisError {
  /** Upper-case command name that got the reply, when known (never its arguments). */
  command: string | undefined;

  constructor(serverMessage: string, command?: string) {
    // Redis echoes the start of an unknown command's arguments ("ERR unknown
    // command 'X', with args beginning with: 'user' 'secret'"): never keep them.
    const message = serverMessage.replace(/, with args beginning with:[\s\S]*$/, "");
    // The code is the first word of the reply, as Redis defines it: ERR,
    // WRONGTYPE, NOSCRIPT, MOVED, NOPERM, ... The command ran (or was refused)
    // on the server, so it was certainly delivered.
    const space = message.indexOf(" ");
    super(message, space === -1 ? message : message.slice(0, space), true);
    this.command = command;
  }
}

export type ConnectionErrorReason =
  /** The socket closed or errored while the command was queued or in flight. */
  | "socket-closed"
  /** Dialing the server failed or did not finish within connectTimeoutMs. */
  | "connect-failed"
  /** The server refused our credentials (AUTH / HELLO): the client stops. */
  | "auth-failed"
  /** SELECT or another handshake step was refused: the client stops. */
  | "handshake-failed"
  /** The credentials provider threw, hung past connectTimeoutMs, or returned no password: retried after the backoff. */
  | "credentials-failed"
  /** The client is offline and its offline queue is disabled or full. */
  | "offline"
  /** Reconnect attempts are exhausted (reconnect.maxAttempts). */
  | "reconnect-exhausted";

/** The command could not get (or keep) a working connection. */
export class ConnectionError extends RedisError {
  readonly reason: ConnectionErrorReason;

  constructor(message: string, reason: ConnectionErrorReason, maybeExecuted: boolean, options?: RedisErrorOptions) {
    super(message, "ERR_RESPITE_CONNECTION", maybeExecuted, options);
    this.reason = reason;
  }
}

/** The command's deadline (timeoutMs / commandTimeoutMs) passed before its reply. */
export class TimeoutError extends RedisError {
  readonly timeoutMs: number;
  readonly command: string;

  constructor(command: string, timeoutMs: number, maybeExecuted: boolean) {
    super(`${command} timed out after ${timeoutMs} ms`, "ERR_RESPITE_TIMEOUT", maybeExecuted);
    this.timeoutMs = timeoutMs;
    this.command = command;
  }
}

/** The caller's AbortSignal fired before the reply arrived. */
export class AbortError extends RedisError {
  readonly command: string;

  constructor(command: string, maybeExecuted: boolean, options?: RedisErrorOptions) {
    super(`${command} was aborted`, "ERR_RESPITE_ABORTED", maybeExecuted, options);
    this.command = command;
  }
}

/** The server sent bytes that are not valid RESP, or a reply nobody asked for. Fatal for that socket. */
export class ProtocolError extends RedisError {
  constructor(message: string, options?: RedisErrorOptions) {
    super(message, "ERR_RESPITE_PROTOCOL", true, options);
  }
}

/** The client was closed (close() or destroy()) before the command could complete. */
export class ClientClosedError extends RedisError {
  constructor(maybeExecuted = false) {
    super("The client is closed", "ERR_RESPITE_CLIENT_CLOSED", maybeExecuted);
  }
}

/**
 * A bound was reached: the command was never sent. "pending": maxPending
 * commands are already accepted and unsettled (either transport); "offline":
 * offlineQueue.maxLength commands already wait for the reconnect.
 */
export class QueueFullError extends RedisError {
  readonly queue: "offline" | "pending";
  readonly limit: number;

  constructor(queue: "offline" | "pending", limit: number) {
    super(`The ${queue} queue is full (limit ${limit})`, "ERR_RESPITE_QUEUE_FULL", false);
    this.queue = queue;
    this.limit = limit;
  }
}

/** The pooled transport could not lend a socket within acquireTimeoutMs. */
export class PoolTimeoutError extends RedisError {
  readonly timeoutMs: number;

  /** maybeExecuted: only for a read that waited again after its socket died (it was written once). */
  constructor(timeoutMs: number, maybeExecuted = false) {
    super(`No pooled connection became free within ${timeoutMs} ms`, "ERR_RESPITE_POOL_TIMEOUT", maybeExecuted);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * `error` as told to a request that was written at least once (`written`:
 * Request.everWritten), e.g. a read queued again after its socket died:
 * whatever stops it now, it may have run. The transport-level errors that say
 * "not executed" come back saying "maybe"; the others are returned as they are.
 */
export function afterAnyWrite(error: RedisError, written: boolean): RedisError {
  if (!written || error.maybeExecuted) return error;
  if (error instanceof ClientClosedError) return new ClientClosedError(true);
  if (error instanceof PoolTimeoutError) return new PoolTimeoutError(error.timeoutMs, true);
  if (error instanceof ConnectionError) return new ConnectionError(error.message, error.reason, true, { cause: error.cause });
  return error;
}

/**
 * A typed helper that returns a number got an integer reply beyond
 * Number.MAX_SAFE_INTEGER (a counter past 2^53). It is never rounded: the
 * command ran, and `value` holds the exact reply. command() returns such
 * integers exactly (a bigint, in the default `integers` mode).
 */
export class UnsafeIntegerError extends RedisError {
  readonly value: bigint;

  constructor(command: string, value: bigint) {
    super(
      `${command} replied an integer beyond Number.MAX_SAFE_INTEGER: this helper returns a number and never rounds one (the command ran; error.value is exact). Use command() for integers this large`,
      "ERR_RESPITE_UNSAFE_INTEGER",
      true,
    );
    this.value = value;
  }
}

/** EXEC returned nil: a WATCHed key changed, so the transaction did not run. */
export class WatchError extends RedisError {
  constructor() {
    super("Transaction aborted: a watched key changed", "ERR_RESPITE_WATCH", false);
  }
}

/** A command was sent on a withConnection() connection after its callback had finished: the socket went back to the pool. */
export class ConnectionReleasedError extends RedisError {
  constructor() {
    super("The connection was released when its withConnection() callback finished", "ERR_RESPITE_RELEASED", false);
  }
}

/** Why the sentinels could not hand us a usable data node. */
export type SentinelErrorKind =
  /** Every sentinel answered, and none knows a master by that name: the client stops (no retry loop). */
  | "unknown-master"
  /** Every sentinel that answered refused our sentinel credentials: the client stops. */
  | "auth-failed"
  /** No sentinel answered (down, refused, timed out): retried with the reconnect backoff. */
  | "unreachable"
  /** role "replica": no sentinel knows a healthy replica: retried with the backoff. */
  | "no-replica"
  /** The node the sentinels named is not (or no longer) a master / replica: retried with the backoff. */
  | "wrong-role";

/**
 * Finding the data node through Sentinel failed. A ConnectionError, so
 * transports treat it as any dial failure; `reason` is "handshake-failed" or
 * "auth-failed" (the client stops) for the kinds retrying cannot fix, and
 * "connect-failed" (backoff, then ask the sentinels again) for the others.
 */
export class SentinelError extends ConnectionError {
  readonly kind: SentinelErrorKind;

  constructor(message: string, kind: SentinelErrorKind, options?: RedisErrorOptions) {
    super(message, kind === "unknown-master" ? "handshake-failed" : kind === "auth-failed" ? "auth-failed" : "connect-failed", false, options);
    this.kind = kind;
  }
}

// ---- Cluster -------------------------------------------------------------------

/**
 * A command (or an atomic batch) names keys in more than one hash slot, so no
 * single node can run it. Raised before anything is sent: never executed.
 * Use a {hash tag} to put keys in one slot, or the splitting helpers
 * (mget, mset, del, exists, unlink) which fan out per slot.
 */
export class CrossSlotError extends RedisError {
  /** Upper-case command name ("EXEC" for an atomic batch). */
  readonly command: string;
  /** The distinct slots, in the order the keys named them. */
  readonly slots: number[];

  constructor(command: string, slots: number[]) {
    super(`${command} names keys in ${slots.length} hash slots (${slots.slice(0, 8).join(", ")}${slots.length > 8 ? ", ..." : ""}); keys of one command must share a slot`, "ERR_RESPITE_CROSSSLOT", false);
    this.command = command;
    this.slots = slots;
  }
}

/**
 * The command was redirected or retried (MOVED, ASK, TRYAGAIN, CLUSTERDOWN,
 * or re-routed after its node was lost) more than maxRedirections times.
 * Every one of those answers means it did not run: maybeExecuted is false.
 * `cause` holds the last error.
 */
export class RedirectionLimitError extends RedisError {
  readonly command: string;
  readonly redirections: number;

  constructor(command: string, redirections: number, options?: RedisErrorOptions) {
    super(`${command} was redirected ${redirections} times without being served; giving up`, "ERR_RESPITE_REDIRECTIONS", false, options);
    this.command = command;
    this.redirections = redirections;
  }
}
