// The clients under test, each behind one tiny adapter: send(raw command
// array) -> reply, close(). Every adapter gets the very same array objects and
// passes them on with as little glue as that client's API allows (the glue is
// part of what a user of that client pays, too).
//
// Fairness: every anchor gets its timeouts raised (or removed) so that no
// cell fails on a default meant for production, and its queues sized for
// C=1024 callers. Pools hold exactly 8 sockets, opened before measuring.
import { Redis } from "ioredis";
import { createClient as createNodeRedis, createClientPool } from "redis";
import diagnostics from "node:diagnostics_channel";
import { createClient as createRespite } from "../src/index.js";
import type { RawCommand } from "./workloads.js";
import { openCachedClient } from "./cached.js";

export const CLIENT_NAMES = [
  "respite-pipelined",
  "respite-resp2",
  "respite-traced",
  "respite-pooled",
  "ioredis",
  "ioredis-auto",
  "node-redis",
  "node-redis-pool",
  "glide",
  // Client-side caching (bench/cached.ts): they run the "cached" workload only.
  "respite-cached",
  "respite-pooled-cached",
  "node-redis-cached",
] as const;
export type ClientName = (typeof CLIENT_NAMES)[number];

/** The established clients respite is measured against ("best anchor" = the fastest of these in a cell). */
export const ANCHORS: readonly ClientName[] = ["ioredis", "ioredis-auto", "node-redis", "node-redis-pool"];
export const BASELINE: ClientName = "ioredis";

/** Single node ("single") or a Redis Cluster (`--cluster`). */
export type Mode = "single" | "cluster";

/** The clients that have a cluster mode, in table order (node-redis has no cluster pool). */
export const CLUSTER_CLIENT_NAMES: readonly ClientName[] = ["respite-pipelined", "respite-pooled", "ioredis", "ioredis-auto", "node-redis", "glide"];

export const CLIENT_LABELS: Record<ClientName, string> = {
  "respite-pipelined": "respite pipelined",
  "respite-resp2": "respite pipelined, RESP2",
  "respite-traced": "respite pipelined, traced",
  "respite-pooled": "respite pooled (8)",
  ioredis: "ioredis",
  "ioredis-auto": "ioredis autopipelining",
  "node-redis": "node-redis",
  "node-redis-pool": "node-redis pool (8)",
  glide: "valkey-glide",
  "respite-cached": "respite pipelined, cached",
  "respite-pooled-cached": "respite pooled (8), cached",
  "node-redis-cached": "node-redis, cached (RESP3)",
};

/** The same clients in cluster mode: each library's cluster client. */
const CLUSTER_LABELS: Partial<Record<ClientName, string>> = {
  "respite-pooled": "respite pooled (8/node)",
  ioredis: "ioredis Cluster",
  "ioredis-auto": "ioredis Cluster autopipelining",
  "node-redis": "node-redis createCluster",
  glide: "valkey-glide cluster",
};

export function clientLabel(name: ClientName, mode: Mode = "single"): string {
  return (mode === "cluster" ? CLUSTER_LABELS[name] : undefined) ?? CLIENT_LABELS[name];
}

export interface BenchClient {
  readonly name: ClientName;
  send(cmd: RawCommand): Promise<unknown>;
  close(): Promise<void>;
  /** Client-side cache counters, for the clients that have one (the "cached" workload's hit ratio). */
  cacheStats?(): { hits: number; misses: number } | undefined;
  /** Around each of its steps (warm-up and measurement): a traced client attaches its subscriber only then. */
  enter?(): void;
  leave?(): void;
}

export const POOL_SIZE = 8;
export const LONG_MS = 60_000;
/** Enough in-flight room for the largest concurrency we run, with margin. */
export const MAX_INFLIGHT = 16_384;

export interface Target {
  host: string;
  port: number;
  /** redis://[user:password@]host:port[/db]: the clients that take a URL get this. */
  url: string;
  username: string | undefined;
  password: string | undefined;
  db: number;
}

/** Why a client cannot run here at all (not installed, does not load), or undefined. */
export async function unavailableReason(name: ClientName): Promise<string | undefined> {
  if (name !== "glide") return undefined;
  try {
    await loadGlide();
    return undefined;
  } catch (err) {
    return `@valkey/valkey-glide does not load here (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`;
  }
}

/** The RESP version respite's clients speak (--protocol), RESP3 unless told. */
let respiteProtocol: 2 | 3 = 3;

export function setRespiteProtocol(protocol: 2 | 3): void {
  respiteProtocol = protocol;
}

/** Create and connect one client; throws if it cannot connect. */
export async function openClient(name: ClientName, target: Target): Promise<BenchClient> {
  const cached = await openCachedClient(name, target, respiteProtocol, POOL_SIZE, LONG_MS, MAX_INFLIGHT);
  if (cached !== undefined) return cached;
  switch (name) {
    case "respite-resp2": {
      const client = createRespite({ url: target.url, protocol: 2, connectTimeoutMs: LONG_MS, maxPending: MAX_INFLIGHT });
      client.on("error", () => undefined);
      await client.connect();
      return { name, send: (cmd) => client.command(cmd), close: () => client.close() };
    }
    case "respite-traced": {
      // The pipelined client with a respite:command subscriber attached, doing
      // what an APM agent does at the least: time every command.
      const client = createRespite({ url: target.url, protocol: respiteProtocol, connectTimeoutMs: LONG_MS, maxPending: MAX_INFLIGHT });
      client.on("error", () => undefined);
      await client.connect();
      const channel = diagnostics.tracingChannel<object>("respite:command");
      const started = new WeakMap<object, number>();
      let totalMs = 0;
      const handlers = {
        start: (ctx: object) => void started.set(ctx, performance.now()),
        end: () => undefined,
        asyncStart: () => undefined,
        asyncEnd: (ctx: object) => void (totalMs += performance.now() - (started.get(ctx) ?? 0)),
        error: () => undefined,
      };
      return {
        name,
        send: (cmd) => client.command(cmd),
        close: () => client.close(),
        enter: () => channel.subscribe(handlers),
        leave: () => {
          channel.unsubscribe(handlers);
          if (totalMs < 0) throw new Error("unreachable: keeps the subscriber's work observable");
        },
      };
    }
    case "respite-pipelined":
    case "respite-pooled": {
      const client = createRespite({
        url: target.url,
        transport: name === "respite-pooled" ? "pooled" : "pipelined",
        protocol: respiteProtocol,
        connectTimeoutMs: LONG_MS,
        pool: { min: name === "respite-pooled" ? POOL_SIZE : 0, max: POOL_SIZE, acquireTimeoutMs: LONG_MS },
        maxPending: MAX_INFLIGHT,
      });
      client.on("error", () => undefined);
      await client.connect();
      return { name, send: (cmd) => client.command(cmd), close: () => client.close() };
    }
    case "ioredis":
    case "ioredis-auto": {
      const client = new Redis(target.url, {
        lazyConnect: true,
        enableAutoPipelining: name === "ioredis-auto",
        connectTimeout: LONG_MS,
        // No commandTimeout (ioredis' default: none); retries stay at the default.
      });
      client.on("error", () => undefined);
      await client.connect();
      // call(name, ...args) is ioredis' raw-command API; apply passes our array as is.
      const call = client.call as (...args: string[]) => Promise<unknown>;
      return {
        name,
        send: (cmd) => call.apply(client, cmd),
        close: async () => {
          await client.quit();
        },
      };
    }
    case "node-redis": {
      const client = createNodeRedis({ url: target.url, socket: { connectTimeout: LONG_MS } });
      client.on("error", () => undefined);
      await client.connect();
      return {
        name,
        send: (cmd) => client.sendCommand(cmd),
        close: () => client.close(),
      };
    }
    case "node-redis-pool": {
      const pool = createClientPool(
        { url: target.url, socket: { connectTimeout: LONG_MS } },
        { minimum: POOL_SIZE, maximum: POOL_SIZE, acquireTimeout: LONG_MS },
      );
      pool.on("error", () => undefined);
      await pool.connect();
      return {
        name,
        send: (cmd) => pool.sendCommand(cmd),
        close: () => pool.close(),
      };
    }
    case "glide": {
      const glide = await loadGlide();
      const client = await glide.GlideClient.createClient({
        addresses: [{ host: target.host, port: target.port }],
        ...(target.password !== undefined ? { credentials: { username: target.username, password: target.password } } : {}),
        ...(target.db !== 0 ? { databaseId: target.db } : {}),
        requestTimeout: LONG_MS,
        inflightRequestsLimit: MAX_INFLIGHT,
      });
      return {
        name,
        send: (cmd) => client.customCommand(cmd),
        close: async () => {
          client.close();
        },
      };
    }
    default:
      throw new Error(`${name} has no single-node adapter`);
  }
}

// GLIDE is an optional dependency with a native addon: it may be missing or
// fail to load on a platform. It is imported by a computed specifier so the
// typecheck does not depend on it being installed; this is the slice we use.
export interface GlideModule {
  Logger: { setLoggerConfig(level: "off" | "error" | "warn"): void };
  GlideClusterClient?: {
    createClient(config: {
      addresses: { host: string; port: number }[];
      requestTimeout?: number;
      inflightRequestsLimit?: number;
    }): Promise<{ customCommand(args: string[]): Promise<unknown>; close(): void }>;
  };
  GlideClient: {
    createClient(config: {
      addresses: { host: string; port: number }[];
      credentials?: { username?: string | undefined; password: string };
      databaseId?: number;
      requestTimeout?: number;
      inflightRequestsLimit?: number;
    }): Promise<{ customCommand(args: string[]): Promise<unknown>; close(): void }>;
  };
}

let glidePromise: Promise<GlideModule> | undefined;
export function loadGlide(): Promise<GlideModule> {
  const specifier = "@valkey/valkey-glide";
  glidePromise ??= (import(specifier) as Promise<GlideModule>).then((m) => {
    if (typeof m.GlideClient?.createClient !== "function") throw new Error("no GlideClient.createClient export");
    // Its Rust core logs to stdout (e.g. a WARN for every error reply), which
    // would land in our table; errors still reach us as rejected promises.
    m.Logger?.setLoggerConfig("off");
    return m;
  });
  return glidePromise;
}
