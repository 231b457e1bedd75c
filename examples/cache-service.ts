// A small HTTP service with respite as a read-through cache in front of a
// slow function. Redis is an optimisation here, never a dependency: any Redis
// failure (down, restarting, stalled, full queue) turns into a cache miss and
// the request takes the slow path, bounded by a short per-command deadline.
//
//   REDIS_URL=redis://127.0.0.1:6380 PORT=3000 node --import tsx examples/cache-service.ts
//   curl localhost:3000/item/42   -> {"source":"origin","item":{...}}   (slow)
//   curl localhost:3000/item/42   -> {"source":"cache","item":{...}}    (fast)
//
// Environment: REDIS_URL (default redis://127.0.0.1:6379), PORT (default 3000,
// 0 = any free port), CACHE_TTL_MS (30000), CACHE_TIMEOUT_MS (100),
// ORIGIN_DELAY_MS (200: how slow the slow function is), SHUTDOWN_TIMEOUT_MS (10000).
//
// Logs are JSON lines on stdout. SIGTERM / SIGINT: stop accepting
// connections, finish the requests in flight, close the Redis client
// (its accepted commands get their replies), exit 0.
//
// In an application, import from the package: `import { createClient } from "respite"`.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { createClient, RedisError } from "../src/index.js";

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return value;
}

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const PORT = envInt("PORT", 3000);
const CACHE_TTL_MS = envInt("CACHE_TTL_MS", 30_000);
const CACHE_TIMEOUT_MS = envInt("CACHE_TIMEOUT_MS", 100);
const ORIGIN_DELAY_MS = envInt("ORIGIN_DELAY_MS", 200);
const SHUTDOWN_TIMEOUT_MS = envInt("SHUTDOWN_TIMEOUT_MS", 10_000);
/** How long shutdown waits for Redis replies still owed; then what is left is dropped (a frozen Redis must not hold the exit). */
const REDIS_CLOSE_TIMEOUT_MS = envInt("REDIS_CLOSE_TIMEOUT_MS", 2_000);

function log(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
}

// ---------------------------------------------------------------------------
// The slow function the cache sits in front of (a database, another service).

interface Item {
  id: string;
  name: string;
  loadedAt: string;
}

async function loadFromOrigin(id: string): Promise<Item> {
  log("origin", { id });
  await delay(ORIGIN_DELAY_MS);
  return { id, name: `item ${id}`, loadedAt: new Date().toISOString() };
}

// ---------------------------------------------------------------------------
// The cache: respite, failing fast.

const redis = createClient({
  url: REDIS_URL,
  // While Redis is unreachable, fail a command at once instead of queueing it:
  // the origin answers in the meantime.
  offlineQueue: false,
  connectTimeoutMs: 1_000,
  reconnect: { maxDelayMs: 1_000 },
});
// Listening to "error" is optional (without a listener respite never throws
// it); here it only feeds the log: the first error of each outage, not one per
// reconnect attempt.
let reportedSinceReady = false;
redis.on("ready", () => {
  reportedSinceReady = false;
  log("redis-ready");
});
redis.on("disconnect", ({ reason }) => log("redis-disconnect", { reason }));
redis.on("error", (err) => {
  if (reportedSinceReady) return;
  reportedSinceReady = true;
  log("redis-error", { code: err.code, message: err.message });
});

let cacheHealthy = true;

function cacheOk(): void {
  if (!cacheHealthy) {
    cacheHealthy = true;
    log("cache-restored");
  }
}

function cacheFailed(err: unknown): void {
  if (cacheHealthy) {
    cacheHealthy = false;
    const code = err instanceof RedisError ? err.code : "EUNKNOWN";
    log("cache-degraded", { code, message: err instanceof Error ? err.message : String(err) });
  }
}

const cacheKey = (id: string): string => `item:${id}`;

/** The cached item, or undefined on a miss, a failure or a deadline: never throws. */
async function cacheGet(id: string): Promise<Item | undefined> {
  try {
    const raw = await redis.command(["GET", cacheKey(id)], { timeoutMs: CACHE_TIMEOUT_MS });
    cacheOk();
    return typeof raw === "string" ? (JSON.parse(raw) as Item) : undefined;
  } catch (err) {
    cacheFailed(err);
    return undefined;
  }
}

/** Fire and forget: the response does not wait for the write, and a failed write is only logged. */
function cacheSet(item: Item): void {
  redis
    .command(["SET", cacheKey(item.id), JSON.stringify(item), "PX", CACHE_TTL_MS], { timeoutMs: CACHE_TIMEOUT_MS })
    .then(cacheOk, cacheFailed);
}

// Concurrent misses for one id share one origin call (no stampede).
const loading = new Map<string, Promise<Item>>();

async function getItem(id: string): Promise<{ source: "cache" | "origin"; item: Item }> {
  const cached = await cacheGet(id);
  if (cached !== undefined) return { source: "cache", item: cached };
  let pending = loading.get(id);
  if (pending === undefined) {
    pending = loadFromOrigin(id).finally(() => loading.delete(id));
    loading.set(id, pending);
    pending.then(cacheSet, () => undefined);
  }
  return { source: "origin", item: await pending };
}

// ---------------------------------------------------------------------------
// HTTP

let shuttingDown = false;
let inFlight = 0;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    // While draining, a keep-alive socket closes after its response.
    ...(shuttingDown ? { connection: "close" } : {}),
  });
  res.end(text);
}

const ITEM_PATH = /^\/item\/([A-Za-z0-9_-]{1,64})$/;

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (req.method !== "GET") return send(res, 405, { error: "method not allowed" });
  if (path === "/health") return send(res, 200, { status: "ok", redis: redis.status });
  const match = ITEM_PATH.exec(path);
  if (match === null) return send(res, 404, { error: "not found" });
  send(res, 200, await getItem(match[1] as string));
}

const server = createServer((req, res) => {
  inFlight++;
  res.once("close", () => inFlight--);
  handle(req, res).catch((err: unknown) => {
    log("request-failed", { message: err instanceof Error ? err.message : String(err) });
    if (!res.headersSent) send(res, 500, { error: "internal error" });
    else res.destroy();
  });
});

server.listen(PORT, () => {
  log("listening", { port: (server.address() as AddressInfo).port });
});

async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  // Stop accepting; idle keep-alive sockets close now, busy ones after their response.
  const drained = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  log("shutdown", { signal, inFlight });
  // If draining hangs (a client that never reads its response), give up loudly.
  const watchdog = setTimeout(() => {
    log("shutdown-timeout", { inFlight });
    process.exit(1);
  }, SHUTDOWN_TIMEOUT_MS);
  watchdog.unref();
  await drained;
  // Replies to the cache writes already sent still arrive, then the socket
  // closes; past REDIS_CLOSE_TIMEOUT_MS what is left is dropped.
  await redis.close({ timeoutMs: REDIS_CLOSE_TIMEOUT_MS });
  clearTimeout(watchdog);
  log("stopped");
  // Nothing is left on the event loop: the process exits with code 0.
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    shutdown(signal).catch((err: unknown) => {
      log("shutdown-failed", { message: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    });
  });
}
