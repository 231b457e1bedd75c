// URL + options -> resolved options, with every default in one place (the
// README's options table is written from this file).
import type { Socket } from "node:net";
import type { ConnectionOptions as TlsOptions } from "node:tls";
import { hidePassword } from "./hide-password.js";
import { DEFAULT_MAX_REPLY_BYTES, type Reply } from "./protocol/decode.js";
import type { Command } from "./protocol/encode.js";
// Sentinel (issue 11): its option type and resolution live in src/sentinel.
import { resolveSentinelOptions, type ResolvedSentinelOptions, type SentinelOptions } from "./sentinel/options.js";

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
  /** Commands allowed to wait for a socket; past it they reject at once. Default 10000. */
  maxWaiting?: number;
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
  /** Most commands queued or in flight on a connected pipelined client. Default 100000. */
  maxPending?: number;
  /** Retry once, after reconnect, a read-only command whose socket died after it was written. Default true. */
  retryReadOnly?: boolean;
  /** Do not dial until the first command or connect(). Default false. */
  lazyConnect?: boolean;
  /** A reply larger than this fails the socket with a ProtocolError. Default 512 MiB. */
  maxReplyBytes?: number;
  /** Pooled transport settings (also used for the pipelined client's dedicated blocking connections). */
  pool?: PoolOptions;
  /**
   * Sentinel (issue 11): find the data node through these sentinels instead of
   * host/port/url's address (url's credentials and db still apply). Default none.
   */
  sentinel?: SentinelOptions;
  /** With `sentinel`: connect to the master (default "master") or to one of its replicas ("replica", read-only). */
  role?: "master" | "replica";
}

/** Sentinel (issue 11): where a data connection goes. */
export interface ServerAddress {
  host: string;
  port: number;
}

/** Sentinel (issue 11): one command on a socket still being set up (the ROLE check). */
export type SetupExec = (command: Command) => Promise<Reply>;

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
  pool: Required<PoolOptions>;
  /** Sentinel (issue 11): undefined without the sentinel option. */
  sentinel: ResolvedSentinelOptions | undefined;
  /** Sentinel (issue 11): "master" unless told. */
  role: "master" | "replica";
  /**
   * Sentinel (issue 11), internal: set by src/sentinel on the client's own
   * options object, never by resolveOptions. openConnection asks it for the
   * address on every dial (instead of host/port) ...
   */
  resolveAddress?: () => Promise<ServerAddress>;
  /** ... and runs this after the handshake; a rejection fails the attempt (the caller backs off). */
  verifyConnection?: (exec: SetupExec, address: ServerAddress, socket: Socket) => Promise<void>;
  /**
   * Sentinel (issue 11), internal: set by src/sentinel. Connection owners that
   * are not transports (the pub/sub subscriber) register here to hear that the
   * server changed (a failover), as transports do through invalidate().
   */
  serverChanged?: Set<() => void>;
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
  pool: { min: 0, max: 8, acquireTimeoutMs: 5000, idleTimeoutMs: 30_000, maxWaiting: 10_000 },
} as const;

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

export function resolveOptions(input: string | ClientOptions = {}): ResolvedOptions {
  const opts: ClientOptions = typeof input === "string" ? { url: input } : input;
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
    maxWaiting: nonNegative("pool.maxWaiting", opts.pool?.maxWaiting, DEFAULTS.pool.maxWaiting),
  };
  if (pool.max < 1 || pool.min > pool.max) throw new TypeError("Option pool needs max >= 1 and min <= max");
  // Sentinel (issue 11).
  const role = opts.role ?? "master";
  if (role !== "master" && role !== "replica") throw new TypeError(`Option role must be "master" or "replica", got ${String(role)}`);
  if (role === "replica" && opts.sentinel === undefined) throw new TypeError('Option role "replica" needs the sentinel option');
  const db = opts.db ?? fromUrl.db ?? DEFAULTS.db;
  if (!Number.isInteger(db) || db < 0) throw new TypeError(`Option db must be a non-negative integer, got ${String(db)}`);
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
    pool,
    sentinel: opts.sentinel === undefined ? undefined : resolveSentinelOptions(opts.sentinel),
    role,
  });
}
