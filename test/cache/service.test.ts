// End to end: examples/cache-service.ts as a child process in front of a real
// redis-server. Traffic keeps flowing while redis-server is SIGKILLed and
// restarted: every request answers 200 (from the origin during the outage,
// from the cache again after), stderr stays empty (so no unhandled rejection
// or crash), and SIGTERM drains an in-flight request, refuses new
// connections, closes the client and exits 0. The tests run in order and
// share one service.
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ORIGIN_DELAY_MS = 250;
const START_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 5_000;
const EXIT_TIMEOUT_MS = 10_000;

type LogLine = { event: string; [field: string]: unknown };
interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { source?: "cache" | "origin"; item?: { id: string; name: string; loadedAt: string } };
}

let redis: RedisServer;
let child: ChildProcess;
let port: number;
let stderr = "";
const logs: LogLine[] = [];
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

function logged(event: string, match: (l: LogLine) => boolean = () => true): LogLine[] {
  return logs.filter((l) => l.event === event && match(l));
}

async function waitForLog(event: string, match?: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
  await waitFor(() => logged(event, match).length > 0, timeoutMs);
  return logged(event, match)[0] as LogLine;
}

/** One GET on a fresh connection (no keep-alive pool to reason about). */
function get(path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent: false, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) as Reply["body"] });
        } catch (err) {
          reject(err);
        }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on("error", reject);
  });
}

beforeAll(async () => {
  redis = await startRedis();
  child = spawn(process.execPath, ["--import", "tsx", "examples/cache-service.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      PORT: "0",
      ORIGIN_DELAY_MS: String(ORIGIN_DELAY_MS),
      CACHE_TIMEOUT_MS: "100",
      CACHE_TTL_MS: "60000",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  let pending = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n")) {
      logs.push(JSON.parse(pending.slice(0, nl)) as LogLine);
      pending = pending.slice(nl + 1);
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const listening = await waitForLog("listening", undefined, START_TIMEOUT_MS);
  port = listening.port as number;
  await waitForLog("redis-ready", undefined, START_TIMEOUT_MS);
}, 30_000);

afterAll(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await redis?.stop();
});

describe("examples/cache-service.ts", () => {
  it("answers from the origin first, then from the cache", async () => {
    const first = await get("/item/1");
    expect(first.status).toBe(200);
    expect(first.body.source).toBe("origin");
    expect(first.body.item).toMatchObject({ id: "1", name: "item 1" });
    // The write is fire-and-forget: poll until it is visible.
    await waitFor(async () => (await redis.admin(["EXISTS", "item:1"])) === 1, 5_000);
    const second = await get("/item/1");
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ source: "cache", item: first.body.item });
    expect((await get("/nope")).status).toBe(404);
  });

  it("keeps answering 200 through a redis-server SIGKILL and restart, from the cache again after", async () => {
    // Background traffic over a few ids, bounded in count, for the whole outage.
    const results: Reply[] = [];
    const failures: string[] = [];
    let stop = false;
    const loop = async (worker: number): Promise<void> => {
      for (let i = 0; !stop && i < 2_000; i++) {
        try {
          results.push(await get(`/item/t${(i + worker) % 4}`));
        } catch (err) {
          failures.push(err instanceof Error ? err.message : String(err));
        }
      }
    };
    const loops = [loop(0), loop(1)];
    await waitFor(() => results.some((r) => r.body.source === "cache"), 10_000);

    await redis.kill();
    const degraded = await waitForLog("cache-degraded");
    // Offline (a command issued while reconnecting fails at once) or, for a
    // GET that was on the wire when Redis died, its 100 ms deadline.
    expect(["ERR_RESPITE_CONNECTION", "ERR_RESPITE_TIMEOUT"]).toContain(degraded.code);
    // Redis is gone: whatever was cached, the origin answers, fast.
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const reply = await get("/item/1");
      expect(reply.status).toBe(200);
      expect(reply.body.source).toBe("origin");
      expect(reply.body.item).toMatchObject({ id: "1", name: "item 1" });
      expect(Date.now() - started).toBeLessThan(ORIGIN_DELAY_MS + 1_000);
    }

    await redis.restart();
    // Once the client is back, the first miss refills the cache and the next one hits.
    await waitFor(async () => (await get("/item/1")).body.source === "cache", 15_000, 50);
    await waitForLog("cache-restored");
    stop = true;
    await Promise.all(loops);

    expect(failures).toEqual([]);
    expect(results.length).toBeGreaterThan(0);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(new Set(results.map((r) => r.body.source))).toEqual(new Set(["cache", "origin"]));
    expect(stderr).toBe("");
  });

  it("on SIGTERM finishes the request in flight, refuses new connections and exits 0", async () => {
    const inflight = get("/item/slow");
    await waitForLog("origin", (l) => l.id === "slow");
    child.kill("SIGTERM");
    const shutdown = await waitForLog("shutdown");
    expect(shutdown).toMatchObject({ signal: "SIGTERM", inFlight: 1 });

    await expect(get("/item/1")).rejects.toMatchObject({ code: "ECONNREFUSED" });
    const reply = await inflight;
    expect(reply.status).toBe(200);
    expect(reply.body.source).toBe("origin");
    expect(reply.headers.connection).toBe("close");

    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      exited,
      new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), EXIT_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    expect(outcome).toEqual({ code: 0, signal: null });
    expect(logged("stopped")).toHaveLength(1);
    expect(stderr).toBe("");
  });
});
