// The graceful-shutdown pattern of examples/cache-service.ts when Redis is
// frozen at the worst moment: SIGTERM stops accepting, close({ timeoutMs })
// bounds the wait for Redis replies still owed, and the process exits 0 on
// its own, promptly.
import { spawn } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
let redis: RedisServer | undefined;

afterAll(async () => {
  redis?.resume();
  await redis?.stop();
});

describe("examples/cache-service.ts shutdown", () => {
  it("exits 0 within REDIS_CLOSE_TIMEOUT_MS of SIGTERM although Redis is frozen with a write owed", async () => {
    redis = await startRedis();
    const logs: { event: string; [k: string]: unknown }[] = [];
    const child = spawn(process.execPath, ["--import", "tsx", "examples/cache-service.ts"], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: redis.url, PORT: "0", ORIGIN_DELAY_MS: "10", CACHE_TIMEOUT_MS: "100", REDIS_CLOSE_TIMEOUT_MS: "500" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once("exit", (code) => resolve({ code, at: Date.now() })));
    let pending = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n")) {
        logs.push(JSON.parse(pending.slice(0, nl)) as { event: string });
        pending = pending.slice(nl + 1);
      }
    });
    try {
      await waitFor(() => logs.some((l) => l.event === "redis-ready"), 15_000);
      const port = logs.find((l) => l.event === "listening")?.port as number;
      redis.pause();
      // Served from the origin (the cache read times out); the cache write it makes is owed by a frozen Redis.
      const status = await new Promise<number>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port, path: "/item/frozen", agent: false }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        }).on("error", reject);
      });
      expect(status).toBe(200);
      const t0 = Date.now();
      child.kill("SIGTERM");
      const { code, at } = await exited;
      expect(code).toBe(0);
      expect(at - t0).toBeLessThan(500 + 1500);
      expect(logs.some((l) => l.event === "stopped")).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      redis.resume();
    }
  }, 30_000);
});
