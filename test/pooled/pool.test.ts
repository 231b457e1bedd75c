// The pooled transport's own promises: the pool's size stays within
// [min, max] as the server sees it (CLIENT LIST), exhaustion and the bounded
// waiting list, blocking commands holding their own sockets, stats.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PoolTimeoutError, QueueFullError, TimeoutError } from "../../src/index.js";
import type { PoolStats } from "../../src/index.js";
import type { Client } from "../../src/client.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";
import { clientFactory, clientList, untilBlocked } from "../conformance/support.js";

let server: RedisServer;
const clients = clientFactory(() => server);
const make = (options?: Parameters<typeof clients.make>[1]) => clients.make("pooled", options);

function stats(c: Client): PoolStats {
  return c.poolStats();
}

beforeAll(async () => {
  server = await startRedis();
});
afterEach(() => clients.destroyAll());
afterAll(async () => {
  await server.stop();
});

describe("pooled transport: sizing", () => {
  it("never holds more than max sockets under load, as CLIENT LIST shows", async () => {
    const c = make({ clientName: "sz-max", pool: { max: 3 } });
    let seen = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const n = (await clientList(server, "sz-max")).length;
        seen = Math.max(seen, n);
        expect(n).toBeLessThanOrEqual(3);
        expect(stats(c).size).toBeLessThanOrEqual(3);
      }
    })();
    // Blocking pops hold their sockets for a while, so the pool must grow to max.
    const work: Promise<unknown>[] = [];
    for (let round = 0; round < 5; round++) {
      work.push(...Array.from({ length: 4 }, (_, i) => c.command(["BLPOP", `sz:${round}:${i}`, "0.05"])));
      work.push(...Array.from({ length: 100 }, (_, i) => c.command(["INCR", `sz:n${i % 7}`])));
    }
    await Promise.all(work);
    sampling = false;
    await sampler;
    expect(seen).toBe(3);
    expect(stats(c)).toEqual({ size: 3, available: 3, borrowed: 0, pending: 0 });
  });

  it("keeps min sockets, closes idle ones above min, and replaces killed ones", async () => {
    const c = make({ clientName: "sz-min", pool: { min: 2, max: 4, idleTimeoutMs: 300 } });
    await c.connect();
    await waitFor(async () => (await clientList(server, "sz-min")).length === 2);
    // Four sockets at once, then idle: back to min.
    await Promise.all(Array.from({ length: 4 }, (_, i) => c.command(["BLPOP", `min:${i}`, "0.05"])));
    expect((await clientList(server, "sz-min")).length).toBe(4);
    await waitFor(async () => (await clientList(server, "sz-min")).length === 2);
    expect(stats(c)).toEqual({ size: 2, available: 2, borrowed: 0, pending: 0 });
    // The server closes both: the pool notices while they are idle and dials new ones.
    const old = (await clientList(server, "sz-min")).map((r) => r.id);
    for (const id of old) await server.admin(["CLIENT", "KILL", "ID", String(id)]);
    await waitFor(async () => {
      const now = await clientList(server, "sz-min");
      return now.length === 2 && now.every((r) => !old.includes(r.id));
    });
    expect(await c.command(["PING"])).toBe("PONG");
  });
});

describe("pooled transport: exhaustion", () => {
  it("rejects with PoolTimeoutError after acquireTimeoutMs when every socket is busy", async () => {
    const c = make({ pool: { max: 1, acquireTimeoutMs: 200 } });
    const held = c.command(["BLPOP", "ex:q", "0"]);
    await untilBlocked(server, 1);
    const started = Date.now();
    const err = await c.command(["GET", "ex:k"]).catch((e: unknown) => e);
    const waited = Date.now() - started;
    expect(err).toBeInstanceOf(PoolTimeoutError);
    expect((err as PoolTimeoutError).timeoutMs).toBe(200);
    expect((err as PoolTimeoutError).maybeExecuted).toBe(false);
    expect(waited).toBeGreaterThanOrEqual(195);
    expect(waited).toBeLessThan(1000);
    await server.admin(["RPUSH", "ex:q", "v"]);
    expect(await held).toEqual(["ex:q", "v"]);
    expect(await c.command(["ECHO", "free again"])).toBe("free again");
  });

  it("rejects at once with QueueFullError past maxPending (waiting plus in flight), and serves those who wait", async () => {
    const c = make({ pool: { max: 1 }, maxPending: 3 });
    const held = c.command(["BLPOP", "mw:q", "0"]);
    await untilBlocked(server, 1);
    const waiting = [c.command(["ECHO", "w1"]), c.command(["ECHO", "w2"])];
    let servedFirst = false;
    void waiting[0]?.then(() => (servedFirst = true));
    const err = await c.command(["ECHO", "w3"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect((err as QueueFullError).queue).toBe("pending");
    expect((err as QueueFullError).limit).toBe(3);
    expect(servedFirst).toBe(false);
    expect(stats(c)).toEqual({ size: 1, available: 0, borrowed: 1, pending: 2 });
    await server.admin(["RPUSH", "mw:q", "v"]);
    expect(await held).toEqual(["mw:q", "v"]);
    expect(await Promise.all(waiting)).toEqual(["w1", "w2"]);
  });

  it("lets blocking commands hold their sockets while other commands run", async () => {
    const c = make({ pool: { max: 3 } });
    const pops = [c.command(["BLPOP", "bl:a", "0"]), c.command(["BLPOP", "bl:b", "0"])];
    await untilBlocked(server, 2);
    const got = await Promise.all(Array.from({ length: 200 }, (_, i) => c.command(["ECHO", `g${i}`])));
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => `g${i}`));
    expect(stats(c)).toEqual({ size: 3, available: 1, borrowed: 2, pending: 0 });
    await server.admin(["RPUSH", "bl:b", "for-b"]);
    await server.admin(["RPUSH", "bl:a", "for-a"]);
    expect(await Promise.all(pops)).toEqual([
      ["bl:a", "for-a"],
      ["bl:b", "for-b"],
    ]);
  });

  it("destroys a timed-out socket instead of lending it again", async () => {
    const c = make({ clientName: "to", pool: { max: 1 } });
    const first = await c.command(["CLIENT", "ID"]);
    const err = await c.command(["BLPOP", "to:q", "0"], { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    // The server lets go of the BLPOP: its socket was closed.
    await untilBlocked(server, 0);
    const second = await c.command(["CLIENT", "ID"]);
    expect(second).not.toBe(first);
    expect((await clientList(server, "to")).map((r) => Number(r.id))).toEqual([second]);
  });
});
