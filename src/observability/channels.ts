// What respite tells tools that watch it: node:diagnostics_channel
// TracingChannels for commands, batches and connects, and point channels for
// the connection's life, errors, pool waits and the offline queue. The
// payloads use the keys ioredis and node-redis publish (command, args,
// database, serverAddress, serverPort; batchMode, batchSize), so a subscriber
// written for their ":command" channel works here by changing the channel
// name; respite adds its own facts (transport, maybeExecuted, retried).
//
// Nothing is built when nobody listens: every publisher checks
// `hasSubscribers` first, so an unobserved client pays one property read per
// command. Arguments are redacted as @opentelemetry/redis-common does (keep
// the first N arguments of a known command, "?" for the rest; AUTH, HELLO and
// unknown commands keep none), so no password or value reaches a payload.
import dc from "node:diagnostics_channel";
import type { TransportKind } from "../options.js";
import type { Command } from "../protocol/encode.js";

export const CHANNELS = {
  command: "respite:command",
  batch: "respite:batch",
  connect: "respite:connect",
  ready: "respite:connection:ready",
  disconnect: "respite:connection:disconnect",
  reconnecting: "respite:connection:reconnecting",
  error: "respite:error",
  poolWait: "respite:pool:connection-wait",
  offlineQueue: "respite:offline-queue",
  redirect: "respite:cluster:redirect",
} as const;

/** Who is talking to which server; shared by every payload of one client. */
export interface ClientIdentity {
  /** Unique per client instance in this process. */
  clientId: string;
  serverAddress: string;
  serverPort: number | undefined;
  database: number;
  transport: TransportKind;
  protocol: 2 | 3;
}

export interface CommandTraceContext extends ClientIdentity {
  /** Upper-case command name. */
  command: string;
  /** The arguments after the name, redacted ("?" where a value could be secret or personal). */
  args: readonly string[];
  /** Set on failure: may the command have run? */
  maybeExecuted?: boolean;
  /** Set once settled: was it re-sent after its connection died (a read-only command)? */
  retried?: boolean;
  /** Set by the TracingChannel: the reply, or the error. */
  result?: unknown;
  error?: unknown;
}

export interface BatchTraceContext extends ClientIdentity {
  batchMode: "MULTI" | "PIPELINE";
  batchSize: number;
  maybeExecuted?: boolean;
  result?: unknown;
  error?: unknown;
}

export interface ConnectTraceContext {
  clientId: string;
  serverAddress: string;
  serverPort: number | undefined;
  result?: unknown;
  error?: unknown;
}

export const commandChannel = dc.tracingChannel<CommandTraceContext>(CHANNELS.command);
export const batchChannel = dc.tracingChannel<BatchTraceContext>(CHANNELS.batch);
export const connectChannel = dc.tracingChannel<ConnectTraceContext>(CHANNELS.connect);

const points = {
  ready: dc.channel(CHANNELS.ready),
  disconnect: dc.channel(CHANNELS.disconnect),
  reconnecting: dc.channel(CHANNELS.reconnecting),
  error: dc.channel(CHANNELS.error),
  poolWait: dc.channel(CHANNELS.poolWait),
  offlineQueue: dc.channel(CHANNELS.offlineQueue),
  redirect: dc.channel(CHANNELS.redirect),
};

/** Publish on a point channel; `payload` is built only when someone listens. */
export function publish(name: keyof typeof points, payload: () => object): void {
  const channel = points[name];
  if (channel.hasSubscribers) channel.publish(payload());
}

/** How many arguments of a command are safe to show (-1: all), after @opentelemetry/redis-common. */
const SHOWN: readonly [RegExp, number][] = [
  [/^ECHO/i, 0],
  // Their arguments may hold passwords (CONFIG SET requirepass, ACL SETUSER ... >pw): the subcommand only.
  [/^(ACL|CONFIG)$/i, 1],
  [/^(GETSET|LPUSH|MSET|PFA|PSETEX|PUBLISH|RPUSH|SADD|SET|SPUBLISH|XADD|ZADD)/i, 1],
  [/^(HSET|HMSET|LSET|LINSERT)/i, 2],
  [/^(ACL|BIT|B[LRZ]|CLIENT|CLUSTER|CONFIG|COMMAND|DECR|DEL|EVAL|EX|FUNCTION|GEO|GET|HINCR|HMGET|HSCAN|INCR|L[TRLM]|MEMORY|P[EFISTU]|RPOP|S[CDIMORSU]|XACK|X[CDGILPRT]|Z[CDILMPRS])/i, -1],
];

/** Shown-argument counts by command name; bounded (names are caller input). */
const shownCache = new Map<string, number>();

function shownOf(name: string): number {
  let shown = shownCache.get(name);
  if (shown !== undefined) return shown;
  shown = 0;
  // AUTH and HELLO carry passwords, whatever a pattern above might match.
  if (name !== "AUTH" && name !== "HELLO") {
    for (const [pattern, n] of SHOWN) {
      if (pattern.test(name)) {
        shown = n;
        break;
      }
    }
  }
  if (shownCache.size < 1024) shownCache.set(name, shown);
  return shown;
}

/** The arguments after the name, with those that may hold a secret or a value replaced by "?". */
export function redactArgs(name: string, args: Command): string[] {
  const shown = shownOf(name);
  const out: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const a = args[i];
    out.push(shown === -1 || i <= shown ? (Buffer.isBuffer(a) ? a.toString("utf8") : String(a)) : "?");
  }
  return out;
}

let nextId = 0;

/** A client's identity for every payload it publishes. */
export function identity(options: { host: string; port: number; db: number; transport: TransportKind }, protocol: 2 | 3 = 2): ClientIdentity {
  return {
    clientId: `respite-${process.pid}-${++nextId}`,
    serverAddress: options.host,
    serverPort: options.port,
    database: options.db,
    transport: options.transport,
    protocol,
  };
}

/** Does anyone watch pool waits or the offline queue (so that transports time and count them)? */
export function observing(): boolean {
  return points.poolWait.hasSubscribers || points.offlineQueue.hasSubscribers;
}
