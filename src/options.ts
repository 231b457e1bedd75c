// URL + options -> resolved options, with every default in one place (the
// README's options table is written from this file).
import type { ConnectionOptions as TlsOptions } from "node:tls";
import { hidePassword } from "./hide-password.js";
import { checkKeys, type KeySet } from "./option-keys.js";
import { DEFAULT_MAX_REPLY_BYTES } from "./protocol/decode.js";
// The sentinel option's type and resolution live in src/sentinel.
import { resolveSentinelOptions, type ResolvedSentinelOptions, type SentinelOptions } from "./sentinel/options.js";
import { resolveClientCacheOptions, type ClientCacheOptions, type ResolvedClientCacheOptions } from "./cache/options.js";

export type TransportKind = "pipelined" | "pooled";

export interface ReconnectOptions {
  /** First retry delay cap, in ms. Default 50. */
  initialDelayMs?: number;
  /** Largest delay between two dials, in ms. Default 2000. */
  maxDelayMs?: number;
  /** Dials after a loss before the client gives up and closes. Default Infinity. */
  maxAttempts?: number;
}

export interface PoolOptions {
  /** Sockets kept open even when idle. Default 0. */
  min?: number;
  /** Most sockets open at once. Default 8. */
  max?: number;
  /** How long a command may wait for a free socket, in ms. Default 5000. */
  acquireTimeoutMs?: number;
  /** An idle socket above `min` is closed after this long, in ms. Default 30000. */
  idleTimeoutMs?: number;
}

/** What a credentials provider hands over: never shown in an error, an event or util.inspect. */
export interface Credentials {
  username?: string;
  password: string;
}

/** A function asked before every (re)connect, or an object that can also push new credentials. */
export type CredentialsProvider =
  | (() => Credentials | Promise<Credentials>)
  | {
      get(): Credentials | Promise<Credentials>;
      /** Call `onChange` with new credentials when they rotate; returns an unsubscribe function. */
      subscribe?(onChange: (credentials: Credentials) => void): () => void;
    };

function oneOf<T extends string | number>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly unknown[]).includes(value)) {
    throw new TypeError(`Option ${name} must be ${allowed.map((a) => JSON.stringify(a)).join(" or ")}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function credentialsProvider(value: unknown): CredentialsProvider | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "function") return value as CredentialsProvider;
  if (typeof value === "object" && value !== null && typeof (value as { get?: unknown }).get === "function") return value as CredentialsProvider;
  throw new TypeError("Option credentials must be a function returning { username?, password }, or an object with get() (and optionally subscribe())");
}

export interface ClientOptions {
  /** redis://[[user]:password@]host[:port][/db] or rediss:// for TLS. */
  url?: string;
  host?: string;
  port?: number;
  db?: number;
  username?: string;
  password?: string;
  /** Sent with CLIENT SETNAME on every (re)connect. */
  clientName?: string;
  /** true, or node:tls options. Implied by rediss://. */
  tls?: boolean | TlsOptions;
  /** Default "pipelined". */
  transport?: TransportKind;
  /** Dial plus handshake deadline, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /** Deadline over a command's whole life (queued time included), in ms; 0 = none. Default 0. */
  commandTimeoutMs?: number;
  /** false disables reconnecting. */
  reconnect?: false | ReconnectOptions;
  /** Commands issued while not connected wait here; false = fail fast. Default { maxLength: 10000 }. */
  offlineQueue?: false | { maxLength?: number };
  /** Most commands accepted and not yet settled (waiting for a socket, queued or in flight), on either transport; past it QueueFullError("pending") at once. Default 100000. */
  maxPending?: number;
  /** Retry once, after reconnect, a read-only command whose socket died after it was written. Default true. */
  retryReadOnly?: boolean;
  /** Do not dial until the first command or connect(). Default false. */
  lazyConnect?: boolean;
  /** A reply larger than this fails the socket with a ProtocolError. Default 512 MiB. */
  maxReplyBytes?: number;
  /**
   * How integer replies are returned, nested ones (EXEC, arrays) included.
   * "number" (default): a number while it is a safe integer (|n| <= 2^53 - 1),
   * a bigint beyond that, never a rounded number. "bigint": always a bigint.
   * "string": always the decimal string.
   */
  integers?: "number" | "bigint" | "string";
  /**
   * RESP protocol version. 3 (default): HELLO 3 at connect, carrying AUTH and
   * SETNAME in one round trip; a server without HELLO (older than Redis 6)
   * falls back to RESP2 with one "protocol-fallback" event. 2: RESP2 only.
   */
  protocol?: 2 | 3;
  /**
   * How RESP3 values are returned. "compat" (default): exactly what RESP2
   * returns (maps and pairs flattened, sets as arrays, doubles as strings,
   * booleans as 1/0), so no reply changes with the protocol. "native": Map,
   * Set, number (doubles, with Infinity/NaN), boolean, bigint (big numbers).
   */
  replies?: "compat" | "native";
  /**
   * Rotating credentials (managed Redis tokens): asked before every
   * (re)connect's AUTH, bounded by connectTimeoutMs. A provider object with
   * `subscribe` can push new credentials: open connections then AUTH again
   * in place (pipelined) or are replaced once idle (pooled, pub/sub). Takes
   * the place of username/password.
   */
  credentials?: CredentialsProvider;
  /**
   * Find half-open connections: a connection that has received nothing for
   * half this long sends a PING; no answer within another half, it is lost
   * (detected within two intervals). 0 (default) = off; TCP keepalive is on
   * regardless.
   */
  healthCheckIntervalMs?: number;
  /** Pooled transport settings (also used for the pipelined client's dedicated blocking connections). */
  pool?: PoolOptions;
  /**
   * Find the data node through these sentinels instead of
   * host/port/url's address (url's credentials and db still apply). Default none.
   */
  sentinel?: SentinelOptions;
  /** With `sentinel`: connect to the master (default "master") or to one of its replicas ("replica", read-only). */
  role?: "master" | "replica";
  /**
   * Client-side caching with server-assisted invalidation (see the README's
   * "Client-side caching"): true for the defaults, or its options. Default off.
   */
  clientCache?: boolean | ClientCacheOptions;
}

/** Where a data connection goes (a Sentinel or cluster router resolves it). */
export interface ServerAddress {
  host: string;
  port: number;
}

export interface ResolvedOptions {
  host: string;
  port: number;
  db: number;
  username: string | undefined;
  password: string | undefined;
  clientName: string | undefined;
  tls: TlsOptions | undefined;
  transport: TransportKind;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  reconnect: Required<ReconnectOptions> | false;
  offlineQueueLength: number;
  maxPending: number;
  retryReadOnly: boolean;
  lazyConnect: boolean;
  maxReplyBytes: number;
  integers: "number" | "bigint" | "string";
  protocol: 2 | 3;
  replies: "compat" | "native";
  credentials: CredentialsProvider | undefined;
  healthCheckIntervalMs: number;
  pool: Required<PoolOptions>;
  /** Undefined without the sentinel option. */
  sentinel: ResolvedSentinelOptions | undefined;
  /** With sentinel: "master" unless told. */
  role: "master" | "replica";
  /** Undefined: no client-side cache. */
  clientCache: ResolvedClientCacheOptions | undefined;
}

export const DEFAULTS = {
  host: "127.0.0.1",
  port: 6379,
  db: 0,
  transport: "pipelined" as TransportKind,
  connectTimeoutMs: 5000,
  commandTimeoutMs: 0,
  reconnect: { initialDelayMs: 50, maxDelayMs: 2000, maxAttempts: Infinity },
  offlineQueueLength: 10_000,
  maxPending: 100_000,
  retryReadOnly: true,
  lazyConnect: false,
  maxReplyBytes: DEFAULT_MAX_REPLY_BYTES,
  integers: "number",
  protocol: 3,
  replies: "compat",
  healthCheckIntervalMs: 0,
  pool: { min: 0, max: 8, acquireTimeoutMs: 5000, idleTimeoutMs: 30_000 },
} as const;

/** Every createClient option name (TypeScript checks the list against ClientOptions). */
export const CLIENT_OPTION_KEYS: KeySet<ClientOptions> = {
  url: true,
  host: true,
  port: true,
  db: true,
  username: true,
  password: true,
  clientName: true,
  tls: true,
  transport: true,
  connectTimeoutMs: true,
  commandTimeoutMs: true,
  reconnect: true,
  offlineQueue: true,
  maxPending: true,
  retryReadOnly: true,
  lazyConnect: true,
  maxReplyBytes: true,
  integers: true,
  protocol: true,
  replies: true,
  credentials: true,
  healthCheckIntervalMs: true,
  pool: true,
  sentinel: true,
  role: true,
  clientCache: true,
};
const RECONNECT_KEYS: KeySet<ReconnectOptions> = { initialDelayMs: true, maxDelayMs: true, maxAttempts: true };
const POOL_KEYS: KeySet<PoolOptions> = { min: true, max: true, acquireTimeoutMs: true, idleTimeoutMs: true };
const OFFLINE_QUEUE_KEYS: KeySet<Exclude<ClientOptions["offlineQueue"], false | undefined>> = { maxLength: true };

/**
 * The nested option objects (reconnect, pool, offlineQueue; sentinel is
 * checked by its own resolver). `tls` is node:tls' options, passed through
 * unread: node owns those names.
 */
function checkNestedOptions(where: string, opts: Partial<ClientOptions>): void {
  if (opts.reconnect !== undefined && opts.reconnect !== false) checkKeys(where, opts.reconnect, RECONNECT_KEYS, "reconnect.");
  if (opts.pool !== undefined) {
    if (typeof opts.pool === "object" && opts.pool !== null && "maxWaiting" in opts.pool) {
      throw new TypeError("Option pool.maxWaiting was replaced by maxPending, which bounds waiting commands on both transports");
    }
    checkKeys(where, opts.pool, POOL_KEYS, "pool.");
  }
  if (opts.offlineQueue !== undefined && opts.offlineQueue !== false) checkKeys(where, opts.offlineQueue, OFFLINE_QUEUE_KEYS, "offlineQueue.");
}

function nonNegative(name: string, value: number | undefined, fallback: number, allowInfinity = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0 || (!allowInfinity && !Number.isFinite(value))) {
    throw new TypeError(`Option ${name} must be a non-negative number, got ${String(value)}`);
  }
  return value;
}

interface UrlParts {
  host?: string;
  port?: number;
  db?: number;
  username?: string;
  password?: string;
  tls?: boolean;
}

function parseUrl(url: string): UrlParts {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Never echo the URL: it may hold a password.
    throw new TypeError("Invalid Redis URL: expected redis://[user:password@]host[:port][/db]");
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new TypeError(`Invalid Redis URL scheme "${u.protocol}": expected redis: or rediss:`);
  }
  const parts: UrlParts = { tls: u.protocol === "rediss:" };
  if (u.hostname) parts.host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  if (u.port) parts.port = Number(u.port);
  if (u.username) parts.username = decodeURIComponent(u.username);
  if (u.password) parts.password = decodeURIComponent(u.password);
  const path = u.pathname.replace(/^\//, "");
  if (path) {
    const db = Number(path);
    if (!Number.isInteger(db) || db < 0) throw new TypeError(`Invalid database "${path}" in Redis URL`);
    parts.db = db;
  }
  return parts;
}

/**
 * @param where the call named in a TypeError for an unknown option name
 *   (createCluster passes its own; its node options are checked there).
 */
export function resolveOptions(input: string | ClientOptions = {}, where = "createClient(options)"): ResolvedOptions {
  const opts: ClientOptions = typeof input === "string" ? { url: input } : input;
  if (typeof input !== "string") {
    checkKeys(where, opts, CLIENT_OPTION_KEYS);
    checkNestedOptions(where, opts);
  }
  const fromUrl = opts.url ? parseUrl(opts.url) : {};
  const transport = opts.transport ?? DEFAULTS.transport;
  if (transport !== "pipelined" && transport !== "pooled") {
    throw new TypeError(`Option transport must be "pipelined" or "pooled", got ${String(transport)}`);
  }
  const tlsOpt = opts.tls ?? fromUrl.tls ?? false;
  const reconnect =
    opts.reconnect === false
      ? false
      : {
          initialDelayMs: nonNegative("reconnect.initialDelayMs", opts.reconnect?.initialDelayMs, DEFAULTS.reconnect.initialDelayMs),
          maxDelayMs: nonNegative("reconnect.maxDelayMs", opts.reconnect?.maxDelayMs, DEFAULTS.reconnect.maxDelayMs),
          maxAttempts: nonNegative("reconnect.maxAttempts", opts.reconnect?.maxAttempts, DEFAULTS.reconnect.maxAttempts, true),
        };
  const pool = {
    min: nonNegative("pool.min", opts.pool?.min, DEFAULTS.pool.min),
    max: nonNegative("pool.max", opts.pool?.max, DEFAULTS.pool.max),
    acquireTimeoutMs: nonNegative("pool.acquireTimeoutMs", opts.pool?.acquireTimeoutMs, DEFAULTS.pool.acquireTimeoutMs),
    idleTimeoutMs: nonNegative("pool.idleTimeoutMs", opts.pool?.idleTimeoutMs, DEFAULTS.pool.idleTimeoutMs),
  };
  if (pool.max < 1 || pool.min > pool.max) throw new TypeError("Option pool needs max >= 1 and min <= max");
  const role = opts.role ?? "master";
  if (role !== "master" && role !== "replica") throw new TypeError(`Option role must be "master" or "replica", got ${String(role)}`);
  if (role === "replica" && opts.sentinel === undefined) throw new TypeError('Option role "replica" needs the sentinel option');
  const db = opts.db ?? fromUrl.db ?? DEFAULTS.db;
  if (!Number.isInteger(db) || db < 0) throw new TypeError(`Option db must be a non-negative integer, got ${String(db)}`);
  const integers = opts.integers ?? DEFAULTS.integers;
  if (integers !== "number" && integers !== "bigint" && integers !== "string") {
    throw new TypeError(`Option integers must be "number", "bigint" or "string", got ${String(integers)}`);
  }
  return hidePassword({
    host: opts.host ?? fromUrl.host ?? DEFAULTS.host,
    port: opts.port ?? fromUrl.port ?? DEFAULTS.port,
    db,
    username: opts.username ?? fromUrl.username,
    password: opts.password ?? fromUrl.password,
    clientName: opts.clientName,
    tls: tlsOpt === false ? undefined : tlsOpt === true ? {} : tlsOpt,
    transport,
    connectTimeoutMs: nonNegative("connectTimeoutMs", opts.connectTimeoutMs, DEFAULTS.connectTimeoutMs),
    commandTimeoutMs: nonNegative("commandTimeoutMs", opts.commandTimeoutMs, DEFAULTS.commandTimeoutMs),
    reconnect,
    offlineQueueLength:
      opts.offlineQueue === false ? 0 : nonNegative("offlineQueue.maxLength", opts.offlineQueue?.maxLength, DEFAULTS.offlineQueueLength),
    maxPending: nonNegative("maxPending", opts.maxPending, DEFAULTS.maxPending),
    retryReadOnly: opts.retryReadOnly ?? DEFAULTS.retryReadOnly,
    lazyConnect: opts.lazyConnect ?? DEFAULTS.lazyConnect,
    maxReplyBytes: nonNegative("maxReplyBytes", opts.maxReplyBytes, DEFAULTS.maxReplyBytes),
    integers,
    protocol: oneOf("protocol", opts.protocol, [2, 3] as const, DEFAULTS.protocol),
    replies: oneOf("replies", opts.replies, ["compat", "native"] as const, DEFAULTS.replies),
    credentials: credentialsProvider(opts.credentials),
    healthCheckIntervalMs: nonNegative("healthCheckIntervalMs", opts.healthCheckIntervalMs, DEFAULTS.healthCheckIntervalMs),
    pool,
    sentinel: opts.sentinel === undefined ? undefined : resolveSentinelOptions(opts.sentinel, where),
    role,
    clientCache: resolveClientCacheOptions(opts.clientCache, where),
  });
}
