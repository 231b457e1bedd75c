// Conformance, part 3: what a command does to its connection, decided by one
// table and honoured by every path (command(), batch() plain and atomic,
// withConnection()) on both transports; close() always resolves; the two
// transports queue, bound and report the same way. Every test runs on both
// transports with the same expected outcome.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ClientClosedError,
  ConnectionError,
  QueueFullError,
  TimeoutError,
  createClient,
  type Client,
  type RedisError,
} from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";
import { clientFactory, info, TRANSPORTS } from "./support.js";

let server: RedisServer;
let replica: RedisServer;
const clients = clientFactory(() => server);

beforeAll(async () => {
  server = await startRedis();
  replica = await startRedis({ args: ["--replicaof", server.host, String(server.port)] });
  await waitFor(async () => (await info(replica, "replication", "master_link_status")) === "up", 10_000);
});
afterEach(async () => {
  clients.destroyAll();
  replica.resume();
  server.resume();
});
afterAll(async () => {
  await Promise.all([server.stop(), replica.stop()]);
});

/** Settles within `ms`, or the test fails saying what hung. */
function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function refusal(p: Promise<unknown>): Promise<TypeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TypeError);
  return err as TypeError;
}

describe.each(TRANSPORTS)("%s transport", (transport) => {
  const make = (options?: Parameters<typeof clients.make>[1]) => clients.make(transport, options);
  const k = (name: string): string => `sem:${transport}:${name}`;

  it("an atomic batch that SELECTs runs on its own connection: later commands of every caller stay in the configured db", async () => {
    const c = make();
    const other = make({ db: 1 });
    await c.command(["DEL", k("x")]);
    await other.command(["DEL", k("x")]);
    expect(await c.batch([["SELECT", "1"], ["SET", k("x"), "in-db-1"]], { atomic: true })).toEqual(["OK", "OK"]);
    // The shared socket (pipelined) or any pooled socket is still on db 0.
    expect(await Promise.all([c.command(["GET", k("x")]), c.command(["SET", k("y"), "db0"])])).toEqual([null, "OK"]);
    expect(await other.command(["GET", k("x")])).toBe("in-db-1");
    expect(await other.command(["GET", k("y")])).toBe(null);
    // The same for a plain batch.
    expect(await c.batch([["SELECT", "1"], ["GET", k("x")]])).toEqual(["OK", "in-db-1"]);
    expect(await c.command(["GET", k("x")])).toBe(null);
  });

  it("command() refuses every connection-state command with a TypeError whose route works", async () => {
    const c = make();
    const cases: [string[], RegExp][] = [
      [["SELECT", "1"], /db option|batch|withConnection/],
      [["MULTI"], /batch\(.*atomic/],
      [["WATCH", k("w")], /withConnection/],
      [["CLIENT", "REPLY", "OFF"], /CLIENT REPLY/],
      [["CLIENT", "SETNAME", "x"], /clientName/],
      [["HELLO", "3"], /HELLO/],
      [["SUBSCRIBE", "ch"], /subscribe\(\)/],
      [["QUIT"], /close\(\)/],
      [["READONLY"], /withConnection/],
    ];
    for (const [args, route] of cases) {
      const err = await refusal(c.command(args));
      expect(err.message, args.join(" ")).toMatch(route);
    }
    // The routes named work: SELECT in withConnection, MULTI in an atomic batch.
    expect(await c.withConnection(async (conn) => [await conn.command(["SELECT", "1"]), await conn.command(["PING"])])).toEqual(["OK", "PONG"]);
    expect(await c.batch([["INCR", k("n")]], { atomic: true })).toEqual([1]);
    expect(await c.command(["GET", k("n")])).toBe("1");
  });

  it("CLIENT REPLY OFF/SKIP is refused on every path; nothing was sent and replies stay matched", async () => {
    const c = make();
    await c.command(["SET", k("r"), "1"]);
    for (const mode of ["OFF", "SKIP"]) {
      await refusal(c.command(["CLIENT", "REPLY", mode]));
      await refusal(c.batch([["CLIENT", "REPLY", mode], ["GET", k("r")]]));
      await refusal(c.batch([["CLIENT", "REPLY", mode], ["GET", k("r")]], { atomic: true }));
      await refusal(c.withConnection((conn) => conn.command(["CLIENT", "REPLY", mode])));
    }
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => c.command(["ECHO", `e${i}`])));
    expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => `e${i}`));
  });

  it("WAIT answers about the writes it follows: a frozen replica gives 0 after the timeout, never a false 1", async () => {
    const c = make();
    // Give the pipelined client its dedicated connection first (the old route for "blocking" WAIT).
    expect(await c.command(["BLPOP", k("none"), "0.01"])).toBe(null);
    replica.pause();
    // batch() keeps the write and its WAIT on one connection on both transports.
    const started = Date.now();
    expect(await c.batch([["SET", k("durable"), "1"], ["WAIT", "1", "300"]])).toEqual(["OK", 0]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    // So does withConnection().
    expect(
      await c.withConnection(async (conn) => {
        await conn.command(["SET", k("durable"), "2"]);
        return conn.command(["WAIT", "1", "300"]);
      }),
    ).toBe(0);
    if (transport === "pipelined") {
      // The shared socket carried the write: WAIT runs there.
      await c.command(["SET", k("durable"), "3"]);
      const t0 = Date.now();
      expect(await c.command(["WAIT", "1", "300"])).toBe(0);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    } else {
      // Any pooled socket may run it: refused rather than answered about another connection.
      const err = await refusal(c.command(["WAIT", "1", "300"]));
      expect(err.message).toMatch(/batch\(\)|withConnection/);
    }
    replica.resume();
    await waitFor(async () => (await info(server, "replication", "slave0")).includes("online"), 5000);
    expect(await c.batch([["SET", k("durable"), "4"], ["WAIT", "1", "2000"]])).toEqual(["OK", 1]);
  });

  it("close() resolves when the server stops reading while commands still wait to be written", async () => {
    const c = make({ pool: { max: 2 } });
    await c.command(["PING"]);
    server.pause();
    const big = "x".repeat(1024 * 1024);
    const sets = Array.from({ length: 40 }, (_, i) => c.command(["SET", k(`big${i}`), big], { timeoutMs: 300 }));
    // A later tick: the socket's buffer is full by now, so these wait in the queue, unwritten.
    await new Promise((r) => setImmediate(r));
    const later = Array.from({ length: 5 }, () => c.command(["PING"], { timeoutMs: 300 }));
    const outcomes = await within("the SETs", 5000, Promise.allSettled([...sets, ...later]));
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(TimeoutError);
    }
    await within("close()", 2000, c.close());
    expect(c.status).toBe("closed");
  });

  it("close() resolves when the server froze after its last reply (nothing owed, no FIN will ever come)", async () => {
    const c = make();
    expect(await c.command(["PING"])).toBe("PONG");
    server.pause();
    await within("close()", 1500, c.close());
    expect(c.status).toBe("closed");
  });

  it("close() resolves after an atomic batch timed out on a frozen server", async () => {
    const c = make();
    await c.command(["PING"]);
    server.pause();
    const err = (await c.batch([["SET", k("t"), "1"], ["INCR", k("u")]], { atomic: true, timeoutMs: 200 }).catch((e: unknown) => e)) as RedisError;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.maybeExecuted).toBe(true);
    await within("close()", 2000, c.close());
  });

  it("close({ timeoutMs }) destroys what is left after the bound, with maybeExecuted exact", async () => {
    const c = make({ pool: { max: 1 } });
    await c.command(["PING"]);
    server.pause();
    const written = c.command(["SET", k("c"), "1"]).catch((e: unknown) => e);
    // pipelined: queued behind nothing, written at once; pooled: one socket, so this one waits unwritten.
    const second = c.command(["GET", k("c")]).catch((e: unknown) => e);
    const t0 = Date.now();
    await within("close({ timeoutMs })", 2000, c.close({ timeoutMs: 300 }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    const first = (await written) as RedisError;
    expect(first).toBeInstanceOf(ClientClosedError);
    expect(first.maybeExecuted).toBe(true);
    const next = (await second) as RedisError;
    expect(next).toBeInstanceOf(ClientClosedError);
    expect(next.maybeExecuted).toBe(transport === "pipelined");
  });
});

describe.each(TRANSPORTS)("%s transport: while the server is down", (transport) => {
  it("a command waits for the reconnect (offline queue), bounded by maxLength; offlineQueue: false fails fast", async () => {
    const own = await startRedis();
    const c = createClient({ host: own.host, port: own.port, transport, offlineQueue: { maxLength: 3 }, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    const noQueue = createClient({ host: own.host, port: own.port, transport, offlineQueue: false, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    try {
      await Promise.all([c.connect(), noQueue.connect()]);
      const down = Promise.all([new Promise((r) => c.once("disconnect", r)), new Promise((r) => noQueue.once("disconnect", r))]);
      await own.kill();


      await within("disconnect", 3000, down);
      await waitFor(() => c.status === "reconnecting" && noQueue.status === "reconnecting", 3000);
      const dials: number[] = [];
      c.on("reconnecting", (i) => dials.push(i.attempt));
      const waiting = [c.command(["SET", "down:a", "1"]), c.command(["GET", "down:a"]), c.command(["INCR", "down:n"])];
      const full = (await c.command(["PING"]).catch((e: unknown) => e)) as RedisError;
      expect(full).toBeInstanceOf(QueueFullError);
      expect((full as QueueFullError).queue).toBe("offline");
      const fast = (await noQueue.command(["PING"]).catch((e: unknown) => e)) as ConnectionError;
      expect(fast).toBeInstanceOf(ConnectionError);
      expect(fast.reason).toBe("offline");
      expect(fast.maybeExecuted).toBe(false);
      // Several failed dials go by; the accepted commands keep waiting.
      await waitFor(() => dials.length >= 3, 5000);
      await own.restart();
      expect(await within("queued commands", 5000, Promise.all(waiting))).toEqual(["OK", "1", 1]);
      expect(c.status).toBe("ready");
    } finally {
      c.destroy();
      noQueue.destroy();
      await own.stop();
    }
  });
});

describe.each(TRANSPORTS)("%s transport: one bound, one event story", (transport) => {
  const make = (options?: Parameters<typeof clients.make>[1]) => clients.make(transport, options);

  it("maxPending bounds queued plus in-flight commands: past it QueueFullError('pending'); 40,000 at once fit by default", async () => {
    const small = make({ maxPending: 5 });
    await small.connect();
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => small.command(["PING"])));
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(5);
    for (const r of results.slice(5)) {
      expect(r.status).toBe("rejected");
      const e = (r as PromiseRejectedResult).reason as QueueFullError;
      expect(e).toBeInstanceOf(QueueFullError);
      expect(e.queue).toBe("pending");
      expect(e.limit).toBe(5);
    }
    const c = make();
    await c.connect();
    const many = await within("40,000 commands", 20_000, Promise.all(Array.from({ length: 40_000 }, () => c.command(["PING"]))));
    expect(many.length).toBe(40_000);
    expect(many.every((r) => r === "PONG")).toBe(true);
  });

  it("rejects pool.maxWaiting, replaced by maxPending, with a TypeError naming it", () => {
    expect(() => createClient({ lazyConnect: true, pool: { maxWaiting: 10 } as never })).toThrow(/maxPending/);
  });

  it("CLIENT KILL TYPE normal: disconnect, reconnecting, ready, and status follows", async () => {
    const c: Client = make({ clientName: `kill-${transport}`, pool: { min: 2, max: 2 } });
    await c.connect();
    await c.command(["PING"]);
    // Pooled: both sockets of min 2 open before the kill (a dial still under way would be a second fault).
    if (transport === "pooled") await waitFor(() => c.poolStats().size === 2, 5000);
    const seen: string[] = [];
    for (const e of ["disconnect", "reconnecting", "ready"] as const) c.on(e, () => seen.push(`${e}:${c.status}`));
    await server.admin(["CLIENT", "KILL", "TYPE", "normal"]);
    await waitFor(() => seen.includes(`ready:ready`), 5000);
    expect(seen).toEqual(["disconnect:reconnecting", "reconnecting:reconnecting", "ready:ready"]);
    expect(c.status).toBe("ready");
    expect(await c.command(["PING"])).toBe("PONG");
  });
});
