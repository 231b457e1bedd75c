// Which sockets the pooled transport lends again: withConnection() sockets
// left clean are reused, dirty ones (MULTI, WATCH, another db, a subscription)
// are destroyed; a socket the server closed while idle is never handed out.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ClientClosedError, ConnectionReleasedError, type DedicatedConnection } from "../../src/index.js";
import type { PoolStats } from "../../src/index.js";
import type { Client } from "../../src/client.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
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

/** The server-side id of the socket a one-socket pool lends next. */
async function nextSocketId(c: Client): Promise<number> {
  return Number(await c.command(["CLIENT", "ID"]));
}

describe("pooled transport: withConnection", () => {
  it("reuses a socket left clean, including after a finished transaction", async () => {
    const c = make({ pool: { max: 1 } });
    const id = await nextSocketId(c);
    const lentId = await c.withConnection(async (conn) => {
      await conn.command(["WATCH", "wc:k"]);
      await conn.command(["MULTI"]);
      await conn.command(["INCR", "wc:k"]);
      expect(await conn.command(["EXEC"])).toEqual([1]);
      return conn.command(["CLIENT", "ID"]);
    });
    expect(Number(lentId)).toBe(id);
    expect(await nextSocketId(c)).toBe(id);
    // Pipelined on the lent socket: replies in order.
    const replies = await c.withConnection((conn) => Promise.all([conn.command(["ECHO", "a"]), conn.command(["ECHO", "b"]), conn.command(["ECHO", "c"])]));
    expect(replies).toEqual(["a", "b", "c"]);
    expect(await nextSocketId(c)).toBe(id);
  });

  const dirtyCases: [string, (conn: DedicatedConnection) => Promise<unknown>][] = [
    ["left inside MULTI", (conn) => conn.command(["MULTI"]).then(() => conn.command(["SET", "dirty:k", "queued"]))],
    ["left WATCHing", (conn) => conn.command(["WATCH", "dirty:w"])],
    ["left on another db", (conn) => conn.command(["SELECT", 1])],
    [
      "left with a command in flight",
      async (conn) => {
        conn.command(["BLPOP", "dirty:q", "0"]).catch(() => undefined);
      },
    ],
  ];
  it.each(dirtyCases)("destroys a socket %s instead of lending it again", async (_name, dirty) => {
    const c = make({ clientName: "dirty", pool: { max: 1 } });
    await c.command(["SET", "dirty:k", "db0"]);
    const id = await nextSocketId(c);
    await c.withConnection(dirty);
    // The next borrower sees a fresh socket, on db 0, outside any transaction.
    const next = await nextSocketId(c);
    expect(next).not.toBe(id);
    expect(await c.command(["GET", "dirty:k"])).toBe("db0");
    expect((await clientList(server, "dirty")).map((r) => Number(r.id))).toEqual([next]);
    await untilBlocked(server, 0);
  });

  it("releases the socket when the callback throws, and refuses commands after release", async () => {
    const c = make({ pool: { max: 1 } });
    const id = await nextSocketId(c);
    let kept: DedicatedConnection | undefined;
    const boom = new Error("boom");
    await expect(
      c.withConnection(async (conn) => {
        kept = conn;
        await conn.command(["PING"]);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(stats(c)).toEqual({ size: 1, available: 1, borrowed: 0, pending: 0 });
    expect(await nextSocketId(c)).toBe(id);
    await expect(kept?.command(["PING"])).rejects.toBeInstanceOf(ConnectionReleasedError);
  });

  it("rejects a lent connection's commands with ClientClosedError after destroy()", async () => {
    const c = make();
    let inside: Promise<unknown> | undefined;
    let later: Promise<unknown> | undefined;
    const lent = c.withConnection(async (conn) => {
      inside = conn.command(["BLPOP", "lent:q", "0"]);
      await untilBlocked(server, 1);
      c.destroy();
      later = conn.command(["PING"]);
      return "done";
    });
    expect(await lent).toBe("done");
    const [a, b] = await Promise.allSettled([inside, later]);
    expect((a as PromiseRejectedResult).reason).toBeInstanceOf(ClientClosedError);
    expect(((a as PromiseRejectedResult).reason as ClientClosedError).maybeExecuted).toBe(true);
    expect((b as PromiseRejectedResult).reason).toBeInstanceOf(ClientClosedError);
    await untilBlocked(server, 0);
  });

  it("waits in line for a socket like a command, bounded by acquireTimeoutMs", async () => {
    const c = make({ pool: { max: 1, acquireTimeoutMs: 100 } });
    const held = c.command(["BLPOP", "line:q", "0"]);
    await untilBlocked(server, 1);
    await expect(c.withConnection((conn) => conn.command(["PING"]))).rejects.toMatchObject({ name: "PoolTimeoutError", timeoutMs: 100 });
    await server.admin(["RPUSH", "line:q", "x"]);
    expect(await held).toEqual(["line:q", "x"]);
    expect(await c.withConnection((conn) => conn.command(["PING"]))).toBe("PONG");
  });
});

describe("pooled transport: idle sockets the server closed", () => {
  it("never hands out a socket the server closed while it sat idle", async () => {
    const c = make({ clientName: "idle-kill", pool: { max: 1 } });
    const id = await nextSocketId(c);
    const lost = new Promise((resolve) => c.once("disconnect", resolve));
    expect(await server.admin(["CLIENT", "KILL", "ID", String(id)])).toBe(1);
    await lost;
    // A write: it must not be written to the dead socket (that would fail it as maybeExecuted).
    expect(await c.command(["SET", "idle:k", "v"])).toBe("OK");
    const next = await nextSocketId(c);
    expect(next).not.toBe(id);
    expect(stats(c)).toEqual({ size: 1, available: 1, borrowed: 0, pending: 0 });
  });
});
