// Conformance, part 1: what a caller sees, the same over both transports.
// Replies of every RESP2 type, error replies, returnBuffers, deadlines,
// aborts, close/destroy, blocking commands, dedicated connections.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AbortError, ClientClosedError, ReplyError, TimeoutError } from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { clientFactory, TRANSPORTS, untilBlocked } from "./support.js";

let server: RedisServer;
const clients = clientFactory(() => server);

beforeAll(async () => {
  server = await startRedis({ args: ["--enable-debug-command", "yes"] });
});
afterEach(() => clients.destroyAll());
afterAll(async () => {
  await server.stop();
});

describe.each(TRANSPORTS)("%s transport", (transport) => {
  const make = (options?: Parameters<typeof clients.make>[1]) => clients.make(transport, options);
  const k = (name: string): string => `${transport}:${name}`;

  it("returns every RESP2 reply type", async () => {
    const c = make();
    // simple string, bulk string (UTF-8), empty bulk, null bulk
    expect(await c.command(["SET", k("s"), "héllo ✓"])).toBe("OK");
    expect(await c.command(["GET", k("s")])).toBe("héllo ✓");
    expect(await c.command(["SET", k("empty"), ""])).toBe("OK");
    expect(await c.command(["GET", k("empty")])).toBe("");
    expect(await c.command(["GET", k("missing")])).toBe(null);
    // integers, negative too
    expect(await c.command(["INCR", k("n")])).toBe(1);
    expect(await c.command(["INCRBY", k("n"), -5])).toBe(-4);
    // arrays: flat, empty, nested, holding an error, null array
    expect(await c.command(["RPUSH", k("l"), "a", "b", "c"])).toBe(3);
    expect(await c.command(["LRANGE", k("l"), 0, -1])).toEqual(["a", "b", "c"]);
    expect(await c.command(["LRANGE", k("nolist"), 0, -1])).toEqual([]);
    expect(await c.command(["EVAL", "return {1, {2, 'b', {}}, 'x'}", 0])).toEqual([1, [2, "b", []], "x"]);
    const withError = (await c.command(["EVAL", "return {7, redis.error_reply('MYERR went wrong')}", 0])) as unknown[];
    expect(withError[0]).toBe(7);
    expect(withError[1]).toBeInstanceOf(ReplyError);
    expect((withError[1] as ReplyError).code).toBe("MYERR");
    expect(await c.command(["EVAL", "return redis.status_reply('FINE')", 0])).toBe("FINE");
    expect(await c.command(["BLPOP", k("nolist"), "0.01"])).toBe(null);
    // a large bulk string, both ways
    const big = "x".repeat(1024 * 1024) + "end";
    expect(await c.command(["SET", k("big"), big])).toBe("OK");
    expect(await c.command(["GET", k("big")])).toBe(big);
  });

  it("returns Buffers on request, per command, and strings otherwise", async () => {
    const c = make();
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(await c.command(["SET", k("bin"), bytes])).toBe("OK");
    const got = await c.command(["GET", k("bin")], { returnBuffers: true });
    expect(Buffer.isBuffer(got)).toBe(true);
    expect((got as Buffer).equals(bytes)).toBe(true);
    await c.command(["RPUSH", k("bl"), "one", "two"]);
    const list = await c.command(["LRANGE", k("bl"), 0, -1], { returnBuffers: true });
    expect(list).toEqual([Buffer.from("one"), Buffer.from("two")]);
    // The wish does not stick to the socket.
    expect(await c.command(["LRANGE", k("bl"), 0, -1])).toEqual(["one", "two"]);
    const [asBuf, asText] = await Promise.all([
      c.command(["GET", k("bin")], { returnBuffers: true }),
      c.command(["LINDEX", k("bl"), 0]),
    ]);
    expect((asBuf as Buffer).equals(bytes)).toBe(true);
    expect(asText).toBe("one");
  });

  it("rejects error replies with a ReplyError naming code and command, and carries on", async () => {
    const c = make();
    await c.command(["SET", k("str"), "abc"]);
    const notInt = (await c.command(["INCR", k("str")]).catch((e: unknown) => e)) as ReplyError;
    expect(notInt).toBeInstanceOf(ReplyError);
    expect(notInt.code).toBe("ERR");
    expect(notInt.command).toBe("INCR");
    expect(notInt.maybeExecuted).toBe(true);
    expect(notInt.message).toBe("ERR value is not an integer or out of range");
    const wrongType = (await c.command(["LPUSH", k("str"), "x"]).catch((e: unknown) => e)) as ReplyError;
    expect(wrongType).toBeInstanceOf(ReplyError);
    expect(wrongType.code).toBe("WRONGTYPE");
    expect(wrongType.command).toBe("LPUSH");
    const unknown = (await c.command(["NOSUCHCMD", "a"]).catch((e: unknown) => e)) as ReplyError;
    expect(unknown.code).toBe("ERR");
    expect(unknown.command).toBe("NOSUCHCMD");
    expect(await c.command(["GET", k("str")])).toBe("abc");
  });

  it("times out with commandTimeoutMs while the server is stopped, and stays in sync after", async () => {
    const c = make({ commandTimeoutMs: 300 });
    expect(await c.command(["SET", k("before"), "b"])).toBe("OK");
    server.pause();
    let err: unknown;
    const started = Date.now();
    try {
      err = await c.command(["GET", k("before")]).catch((e: unknown) => e);
    } finally {
      server.resume();
    }
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).timeoutMs).toBe(300);
    expect((err as TimeoutError).command).toBe("GET");
    expect((err as TimeoutError).maybeExecuted).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    // The late "b" must reach nobody.
    expect(await c.command(["SET", k("after"), "a"])).toBe("OK");
    expect(await c.command(["GET", k("after")])).toBe("a");
    expect(await c.command(["ECHO", "mine"])).toBe("mine");
  });

  it("times out a slow command (DEBUG SLEEP) with timeoutMs and gives the next command its own reply", async () => {
    const c = make();
    const err = await c.command(["DEBUG", "SLEEP", "0.3"], { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).timeoutMs).toBe(100);
    expect(await c.command(["ECHO", "next"])).toBe("next");
    expect(await c.command(["INCR", k("after-sleep")])).toBe(1);
  });

  it("honours an AbortSignal, before and after the command was sent", async () => {
    const c = make();
    const pre = new AbortController();
    pre.abort();
    const early = await c.command(["SET", k("ab"), "no"], { signal: pre.signal }).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(AbortError);
    expect((early as AbortError).maybeExecuted).toBe(false);
    expect(await c.command(["EXISTS", k("ab")])).toBe(0);

    const ctl = new AbortController();
    const blocked = c.command(["BLPOP", k("abq"), "0"], { signal: ctl.signal });
    await untilBlocked(server, 1);
    ctl.abort();
    const late = await blocked.catch((e: unknown) => e);
    expect(late).toBeInstanceOf(AbortError);
    expect((late as AbortError).maybeExecuted).toBe(true);
    // The aborted BLPOP left the server: a pushed value stays in the list.
    await untilBlocked(server, 0);
    expect(await c.command(["RPUSH", k("abq"), "v"])).toBe(1);
    expect(await c.command(["LLEN", k("abq")])).toBe(1);
  });

  it("runs a blocking command alongside normal ones", async () => {
    const c = make();
    const popped = c.command(["BLPOP", k("q"), "5"]);
    await untilBlocked(server, 1);
    const values = await Promise.all(Array.from({ length: 50 }, (_, i) => c.command(["ECHO", `e${i}`])));
    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => `e${i}`));
    expect(await c.command(["RPUSH", k("q"), "item"])).toBe(1);
    expect(await popped).toEqual([k("q"), "item"]);
  });

  it("lends one connection for WATCH/MULTI/EXEC, and releases it on throw", async () => {
    const c = make();
    await c.command(["SET", k("w"), "1"]);
    const ok = await c.withConnection(async (conn) => {
      await conn.command(["WATCH", k("w")]);
      const v = Number(await conn.command(["GET", k("w")]));
      await conn.command(["MULTI"]);
      await conn.command(["SET", k("w"), String(v + 1)]);
      return conn.command(["EXEC"]);
    });
    expect(ok).toEqual(["OK"]);
    const conflict = await c.withConnection(async (conn) => {
      await conn.command(["WATCH", k("w")]);
      await server.admin(["SET", k("w"), "changed"]);
      await conn.command(["MULTI"]);
      await conn.command(["SET", k("w"), "mine"]);
      return conn.command(["EXEC"]);
    });
    expect(conflict).toBe(null);
    expect(await c.command(["GET", k("w")])).toBe("changed");
    const boom = new Error("boom");
    await expect(
      c.withConnection(async (conn) => {
        await conn.command(["PING"]);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await c.withConnection((conn) => conn.command(["ECHO", "again"]))).toBe("again");
  });

  it("close() lets accepted commands finish, then rejects new ones with ClientClosedError", async () => {
    const c = make();
    await c.connect();
    let closeEvents = 0;
    c.on("close", () => closeEvents++);
    const slow = c.command(["DEBUG", "SLEEP", "0.1"]);
    const after = c.command(["ECHO", "queued"]);
    const closing = c.close();
    expect(await slow).toBe("OK");
    expect(await after).toBe("queued");
    await closing;
    expect(c.status).toBe("closed");
    expect(closeEvents).toBe(1);
    const err = await c.command(["PING"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientClosedError);
    expect((err as ClientClosedError).maybeExecuted).toBe(false);
  });

  it("destroy() rejects every pending command with ClientClosedError at once", async () => {
    const c = make();
    await c.connect();
    const blocked = c.command(["BLPOP", k("never"), "0"]);
    await untilBlocked(server, 1);
    const sleeping = c.command(["DEBUG", "SLEEP", "0"]);
    c.destroy();
    const [b, s] = await Promise.allSettled([blocked, sleeping]);
    expect(b.status).toBe("rejected");
    expect((b as PromiseRejectedResult).reason).toBeInstanceOf(ClientClosedError);
    expect(((b as PromiseRejectedResult).reason as ClientClosedError).maybeExecuted).toBe(true);
    expect(s.status).toBe("rejected");
    expect((s as PromiseRejectedResult).reason).toBeInstanceOf(ClientClosedError);
    await expect(c.command(["PING"])).rejects.toBeInstanceOf(ClientClosedError);
    expect(c.status).toBe("closed");
    await untilBlocked(server, 0);
  });
});
