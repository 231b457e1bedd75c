// The pipelined socket writes its queue in slices of about 64 KiB and stops
// when the socket asks it to wait for 'drain': a server that stops reading
// holds our queue (where a command can still be withdrawn, never having been
// sent), not megabytes in the socket's buffer (where it counts as sent).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, TimeoutError, type RedisError } from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  server.resume();
  await server.stop();
});

describe("pipelined backpressure", () => {
  it("a server that stops reading leaves most of a long queue unwritten: those time out with maybeExecuted false", async () => {
    const c = createClient({ host: server.host, port: server.port });
    try {
      await c.command(["PING"]);
      server.pause();
      const value = "v".repeat(100 * 1024);
      // 400 x 100 KiB = 40 MiB, far beyond what the kernel buffers for one socket.
      const sets = Array.from({ length: 400 }, (_, i) => c.command(["SET", `bp:${i}`, value], { timeoutMs: 500 }));
      const outcomes = await Promise.allSettled(sets);
      const errors = outcomes.map((o) => (o as PromiseRejectedResult).reason as RedisError);
      for (const e of errors) expect(e).toBeInstanceOf(TimeoutError);
      const written = errors.filter((e) => e.maybeExecuted).length;
      // Written: what fit in the socket's buffers before write() said to wait, plus one slice.
      expect(written).toBeGreaterThan(0);
      expect(written).toBeLessThan(200);
      // FIFO: everything written came before everything still queued.
      const firstUnwritten = errors.findIndex((e) => !e.maybeExecuted);
      expect(errors.slice(firstUnwritten).every((e) => !e.maybeExecuted)).toBe(true);
    } finally {
      server.resume();
      await c.close({ timeoutMs: 2000 });
    }
  });
});
