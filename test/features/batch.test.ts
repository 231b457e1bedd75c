// Batches and transactions (issue 7): per-command results, MULTI/EXEC written
// contiguously, EXECABORT and runtime errors per command, WATCH through
// withConnection, never a lone member retried after a reconnect.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { AbortError, ConnectionError, RedisError, ReplyError, TimeoutError, WatchError, runBatch, type Reply } from "../../src/index.js";
import { rejectionOf, TRANSPORTS, useRedis, within } from "./support.js";

const redis = useRedis();

function commandCalls(info: Reply, name: string): number {
  const m = new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(String(info));
  return m === null ? 0 : Number(m[1]);
}

for (const transport of TRANSPORTS) {
  describe(`batch (${transport})`, () => {
    const k = (name: string): string => `${transport}:b:${name}`;

    it("returns one result per command, errors as values, never hiding the others", async () => {
      const c = redis.client(transport);
      await c.set(k("str"), "x");
      const results = await c.batch([
        ["SET", k("a"), "1"],
        ["INCR", k("a")],
        ["HGET", k("str"), "f"],
        ["GET", k("a")],
        ["NOSUCHCOMMAND"],
        ["GET", k("missing")],
      ]);
      expect(results.slice(0, 2)).toEqual(["OK", 2]);
      expect(results[2]).toBeInstanceOf(ReplyError);
      expect((results[2] as ReplyError).code).toBe("WRONGTYPE");
      expect((results[2] as ReplyError).command).toBe("HGET");
      expect(results[3]).toBe("2");
      expect(results[4]).toBeInstanceOf(ReplyError);
      expect((results[4] as ReplyError).code).toBe("ERR");
      expect(results[5]).toBe(null);
      expect(await c.batch([])).toEqual([]);
    });

    it("atomic: MULTI/EXEC results, runtime errors per command", async () => {
      const c = redis.client(transport);
      await c.set(k("str"), "x");
      const results = await c.batch(
        [
          ["SET", k("t"), "10"],
          ["INCRBY", k("t"), 5],
          ["LPUSH", k("str"), "boom"],
          ["GET", k("t")],
        ],
        { atomic: true },
      );
      expect(results.slice(0, 2)).toEqual(["OK", 15]);
      expect(results[2]).toBeInstanceOf(ReplyError);
      expect((results[2] as ReplyError).code).toBe("WRONGTYPE");
      expect((results[2] as ReplyError).command).toBe("LPUSH");
      expect(results[3]).toBe("15");
      const buffers = await c.batch([["GET", k("t")]], { atomic: true, returnBuffers: true });
      expect(buffers).toEqual([Buffer.from("15")]);
    });

    it("atomic: a command refused while queueing (EXECABORT) gets its own error, the others EXECABORT, and nothing runs", async () => {
      const c = redis.client(transport);
      const results = await c.batch(
        [
          ["SET", k("abort"), "1"],
          ["GET"],
          ["INCR", k("abort")],
        ],
        { atomic: true },
      );
      expect(results).toHaveLength(3);
      expect((results[0] as ReplyError).code).toBe("EXECABORT");
      expect((results[1] as ReplyError).code).toBe("ERR");
      expect((results[1] as ReplyError).message).toMatch(/wrong number of arguments for 'get' command/);
      expect((results[2] as ReplyError).code).toBe("EXECABORT");
      expect(await c.get(k("abort"))).toBe(null);
      // The socket is clean afterwards: no MULTI left open.
      expect(await c.command(["INCR", k("after")])).toBe(1);
    });

    it("rejects a batch with an invalid argument before sending anything", async () => {
      const c = redis.client(transport);
      const bad = [["SET", k("v"), "1"], ["SET", k("w"), {} as unknown as string]] as const;
      await expect(c.batch(bad, { atomic: true })).rejects.toThrow(new TypeError("Invalid argument 2 of SET: got an object; arguments must be strings, Buffers, finite numbers or bigints"));
      await expect(c.batch(bad)).rejects.toThrow(TypeError);
      expect(await c.get(k("v"))).toBe(null);
    });

    // The pipelined client lends a connection of its pooled transport (issue 4).
    it("WATCH through withConnection: a concurrent change aborts EXEC with WatchError, an untouched key commits", async () => {
      const c = redis.client(transport);
      await c.set(k("watched"), "1");
      const err = await rejectionOf(
        c.withConnection(async (conn) => {
          await conn.command(["WATCH", k("watched")]);
          const v = Number(await conn.command(["GET", k("watched")]));
          await c.set(k("watched"), "100"); // another connection changes it
          return runBatch(conn, [["SET", k("watched"), v + 1]], { atomic: true });
        }),
      );
      expect(err).toBeInstanceOf(WatchError);
      expect((err as WatchError).maybeExecuted).toBe(false);
      expect(await c.get(k("watched"))).toBe("100");

      const ok = await c.withConnection(async (conn) => {
        await conn.command(["WATCH", k("watched")]);
        const v = Number(await conn.command(["GET", k("watched")]));
        return runBatch(conn, [["SET", k("watched"), v + 1], ["GET", k("watched")]], { atomic: true });
      });
      expect(ok).toEqual(["OK", "101"]);
    });
  });
}

describe("atomic batch on the shared pipelined socket", () => {
  it("is written contiguously: commands of other callers in the same tick never land inside MULTI", async () => {
    const c = redis.client("pipelined");
    await c.connect();
    const original = net.Socket.prototype.write;
    let writes = 0;
    net.Socket.prototype.write = function (this: net.Socket, ...args: Parameters<net.Socket["write"]>) {
      writes++;
      return original.apply(this, args);
    } as net.Socket["write"];
    let others: Promise<Reply>[];
    let batch: Promise<unknown>;
    try {
      others = Array.from({ length: 50 }, () => c.command(["INCR", "contig:n"]));
      batch = c.batch(
        Array.from({ length: 20 }, () => ["INCR", "contig:n"] as const),
        { atomic: true },
      );
      others.push(...Array.from({ length: 50 }, () => c.command(["INCR", "contig:n"])));
      await Promise.all([batch, ...others]);
    } finally {
      net.Socket.prototype.write = original;
    }
    expect(writes).toBe(1);
    // Had any INCR of another caller been queued inside the transaction, it would have got "QUEUED".
    expect(await Promise.all(others)).toEqual(Array.from({ length: 100 }, (_, i) => (i < 50 ? i + 1 : i + 21)));
    expect(await batch).toEqual(Array.from({ length: 20 }, (_, i) => 51 + i));
  });

  it("keeps a blocking command inside MULTI on the shared socket (it does not block there)", async () => {
    const c = redis.client("pipelined");
    await c.command(["RPUSH", "blk:l", "x"]);
    expect(await c.batch([["BLPOP", "blk:l", 0], ["BLPOP", "blk:l", 0]], { atomic: true })).toEqual([["blk:l", "x"], null]);
  });

  it("never retries a member alone after its socket died: the batch rejects as maybeExecuted", async () => {
    const c = redis.client("pipelined");
    await c.command(["SET", "retry:k", "v"]);
    const id = await c.command(["CLIENT", "ID"]);
    await redis.server.admin(["CONFIG", "RESETSTAT"]);
    // The kill goes out in the same write as the batch: Redis answers it and
    // closes the socket without reading further, so the batch is written and unanswered.
    const kill = c.command(["CLIENT", "KILL", "ID", String(id), "SKIPME", "no"]);
    const batch = c.batch([["GET", "retry:k"]], { atomic: true });
    const plainRead = c.command(["GET", "retry:k"]);
    expect(await kill).toBe(1);
    const err = await rejectionOf(batch);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).maybeExecuted).toBe(true);
    // The plain read after it is retried (read-only, issue 3); the batch's GET is not.
    expect(await plainRead).toBe("v");
    expect(commandCalls(await redis.server.admin(["INFO", "commandstats"]), "get")).toBe(1);
    expect(commandCalls(await redis.server.admin(["INFO", "commandstats"]), "exec")).toBe(0);
  });

  it("a batch deadline rejects with TimeoutError; a batch still queued is withdrawn (not executed)", async () => {
    const c = redis.client("pipelined", { port: 1, host: "127.0.0.1", url: undefined, reconnect: { initialDelayMs: 5000, maxDelayMs: 5000 } });
    const err = await rejectionOf(c.batch([["SET", "deadline:k", "1"]], { atomic: true, timeoutMs: 50 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).maybeExecuted).toBe(false);
    const controller = new AbortController();
    const aborted = c.batch([["SET", "deadline:k", "1"]], { atomic: true, signal: controller.signal });
    controller.abort();
    const abortErr = await rejectionOf(aborted);
    expect(abortErr).toBeInstanceOf(AbortError);
    expect((abortErr as AbortError).maybeExecuted).toBe(false);
  });

  it("a paused server: the atomic batch times out as maybeExecuted, and the socket stays in sync", async () => {
    const c = redis.client("pipelined");
    await c.connect();
    redis.server.pause();
    let err: unknown;
    try {
      err = await rejectionOf(c.batch([["INCR", "paused:n"]], { atomic: true, timeoutMs: 100 }));
    } finally {
      redis.server.resume();
    }
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).maybeExecuted).toBe(true);
    // The transaction still ran once the server woke up; replies did not cross.
    expect(await c.command(["GET", "paused:n"])).toBe("1");
    expect(await c.batch([["INCR", "paused:n"]], { atomic: true })).toEqual([2]);
  });
});

describe("batches across a server kill", () => {
  for (const transport of TRANSPORTS) {
    it(`every result settles, as a value or a typed error (${transport})`, async () => {
      const c = redis.client(transport, { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
      await c.connect();
      const batches = Array.from({ length: 30 }, (_, i) =>
        c.batch(
          Array.from({ length: 5 }, () => ["INCR", `kill:${transport}:${i}`] as const),
          { atomic: i % 2 === 0 },
        ),
      );
      const all = Promise.allSettled(batches); // handled from the start: they may reject during the kill
      await redis.server.kill();
      const restarted = redis.server.restart();
      const settled = await within(all, 10_000, "batches");
      await restarted;
      for (const [i, s] of settled.entries()) {
        if (s.status === "rejected") {
          // Only a transaction's fate is reported as a whole; a plain batch reports per command.
          expect(i % 2).toBe(0);
          expect(s.reason).toBeInstanceOf(RedisError);
          continue;
        }
        expect(s.value).toHaveLength(5);
        for (const r of s.value) {
          if (typeof r !== "number") expect(r).toBeInstanceOf(RedisError);
        }
        // An atomic batch that resolved ran whole: 1..5 in order.
        if (i % 2 === 0) expect(s.value).toEqual([1, 2, 3, 4, 5]);
      }
      expect(await c.incr(`kill:${transport}:after`)).toBe(1);
    });
  }
});
