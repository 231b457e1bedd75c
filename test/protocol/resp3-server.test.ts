// The Decoder against what a real redis-server 7 sends after HELLO 3 (maps,
// sets, doubles, booleans, big numbers, verbatim strings, nulls, push frames
// for pub/sub and client-side caching), next to the RESP2 reply of the same
// command on a second connection: "compat" must match RESP2 exactly.
import { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Decoder, type Reply, type ReplyMode } from "../../src/protocol/decode.js";
import { encodeCommand } from "../../src/protocol/encode.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";

const TIMEOUT_MS = 5_000;

interface Waiter {
  resolve(r: Reply): void;
  reject(e: Error): void;
  buffers: boolean;
}

/** A bare connection: FIFO of waiters, pushes collected. */
class Raw {
  readonly pushes: Reply[][] = [];
  private readonly fifo: Waiter[] = [];
  private readonly decoder: Decoder;
  private pushWaiter: (() => void) | undefined;

  private constructor(
    private readonly socket: Socket,
    replies: ReplyMode,
  ) {
    this.decoder = new Decoder(
      {
        onReply: (r) => this.settle((w) => w.resolve(r)),
        onErrorReply: (e) => this.settle((w) => w.reject(e)),
        onProtocolError: (e) => {
          for (const w of this.fifo.splice(0)) w.reject(e);
        },
        onPush: (frame) => {
          this.pushes.push(frame);
          this.pushWaiter?.();
        },
      },
      undefined,
      "number",
      { replies },
    );
    socket.on("data", (c: Buffer) => this.decoder.write(c));
  }

  static async open(port: number, replies: ReplyMode = "compat"): Promise<Raw> {
    const socket = new Socket();
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.connect(port, "127.0.0.1", () => {
        socket.removeListener("error", reject);
        resolve();
      });
    });
    return new Raw(socket, replies);
  }

  send(args: string[], buffers = false): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${args[0]} timed out`)), TIMEOUT_MS);
      this.fifo.push({
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        buffers,
      });
      if (this.fifo.length === 1) this.decoder.setReturnBuffers(buffers);
      this.socket.write(encodeCommand(args));
    });
  }

  /** Write without a waiter (SUBSCRIBE in RESP3: its confirmations are pushes). */
  sendUntracked(args: string[]): void {
    this.socket.write(encodeCommand(args));
  }

  async nextPushes(count: number): Promise<Reply[][]> {
    const deadline = Date.now() + TIMEOUT_MS;
    while (this.pushes.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.pushes.length} pushes`);
      await new Promise<void>((resolve) => {
        this.pushWaiter = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.pushes.splice(0, count);
  }

  close(): void {
    this.socket.destroy();
  }

  private settle(action: (w: Waiter) => void): void {
    const head = this.fifo.shift();
    if (head === undefined) throw new Error("reply with no waiter");
    const next = this.fifo[0];
    if (next !== undefined) this.decoder.setReturnBuffers(next.buffers);
    action(head);
  }
}

let server: RedisServer;
let resp2: Raw;
let compat: Raw;
let native: Raw;

beforeAll(async () => {
  server = await startRedis({ args: ["--enable-debug-command", "yes"] });
  [resp2, compat, native] = await Promise.all([Raw.open(server.port), Raw.open(server.port, "compat"), Raw.open(server.port, "native")]);
  for (const c of [compat, native]) {
    const hello = await c.send(["HELLO", "3"]);
    if (c === native) expect(hello).toBeInstanceOf(Map);
    else expect(Array.isArray(hello)).toBe(true);
  }
  await resp2.send(["HSET", "h", "f1", "v1", "f2", "v2"]);
  await resp2.send(["SADD", "s", "a", "b", "c"]);
  await resp2.send(["ZADD", "z", "3.25", "m", "-inf", "low"]);
  await resp2.send(["SET", "str", "hello é"]);
  await resp2.send(["SET", "fl", "1.5"]);
  await resp2.send(["ZADD", "z2", "3.25", "m"]);
  await resp2.send(["XADD", "x", "1-1", "a", "1"]);
});

afterAll(async () => {
  for (const c of [resp2, compat, native]) c?.close();
  await server?.stop();
});

describe("RESP3 from redis-server", () => {
  it("HELLO 3 names protocol 3", async () => {
    const hello = (await native.send(["HELLO", "3"])) as Map<Reply, Reply>;
    expect(hello.get("proto")).toBe(3);
    expect(hello.get("server")).toBe("redis");
  });

  it.each<[string, string[], (r: Reply) => void]>([
    ["HGETALL (map)", ["HGETALL", "h"], (r) => expect(r).toEqual(new Map([["f1", "v1"], ["f2", "v2"]]))],
    ["SMEMBERS (set)", ["SMEMBERS", "s"], (r) => expect(r).toEqual(new Set(["a", "b", "c"]))],
    ["ZSCORE (double)", ["ZSCORE", "z", "m"], (r) => expect(r).toBe(3.25)],
    ["ZSCORE -inf (double)", ["ZSCORE", "z", "low"], (r) => expect(r).toBe(-Infinity)],
    ["ZRANGE WITHSCORES (pairs with doubles)", ["ZRANGE", "z", "0", "-1", "WITHSCORES"], (r) => expect(r).toEqual([["low", -Infinity], ["m", 3.25]])],
    ["EVAL returning true (boolean, RESP3 script)", ["EVAL", "redis.setresp(3); return true", "0"], (r) => expect(r).toBe(true)],
    ["EVAL returning a double (RESP3 script)", ["EVAL", "redis.setresp(3); return {double=1.5}", "0"], (r) => expect(r).toBe(1.5)],
    ["DEBUG PROTOCOL bignum", ["DEBUG", "PROTOCOL", "bignum"], (r) => expect(r).toBe(1234567999999999999999999999999999999n)],
    ["DEBUG PROTOCOL map", ["DEBUG", "PROTOCOL", "map"], (r) => expect(r).toEqual(new Map([[0, false], [1, true], [2, false]]))],
    ["DEBUG PROTOCOL set", ["DEBUG", "PROTOCOL", "set"], (r) => expect(r).toEqual(new Set([0, 1, 2]))],
    ["DEBUG PROTOCOL double", ["DEBUG", "PROTOCOL", "double"], (r) => expect(r).toBe(3.141)],
    ["DEBUG PROTOCOL attrib (attribute dropped)", ["DEBUG", "PROTOCOL", "attrib"], (r) => expect(r).toBe("Some real reply following the attribute")],
    ["DEBUG PROTOCOL verbatim", ["DEBUG", "PROTOCOL", "verbatim"], (r) => expect(r).toBe("This is a verbatim\nstring")],
    ["DEBUG PROTOCOL null", ["DEBUG", "PROTOCOL", "null"], (r) => expect(r).toBeNull()],
    ["DEBUG PROTOCOL true / false", ["DEBUG", "PROTOCOL", "false"], (r) => expect(r).toBe(false)],
    ["GET of a missing key (null)", ["GET", "missing"], (r) => expect(r).toBeNull()],
    ["GET (UTF-8 string)", ["GET", "str"], (r) => expect(r).toBe("hello é")],
  ])("native: %s", async (_, cmd, check) => {
    check(await native.send(cmd));
  });

  it("compat: every reply is what RESP2 gives for the same command", async () => {
    const commands = [
      ["HGETALL", "h"],
      ["SMEMBERS", "s"],
      ["ZSCORE", "z", "m"],
      ["ZSCORE", "z", "low"],
      ["ZINCRBY", "z", "0", "m"],
      ["ZMSCORE", "z", "m", "nope"],
      ["EVAL", "return true", "0"],
      ["EVAL", "return false", "0"],
      ["EVAL", "redis.setresp(3); return true", "0"],
      ["EVAL", "redis.setresp(3); return {double=1.5}", "0"],
      ["EVAL", "return {1, 'two', {3}}", "0"],
      ["GET", "missing"],
      ["GET", "str"],
      ["MGET", "str", "missing"],
      ["CONFIG", "GET", "maxmemory*"],
      ["XRANGE", "x", "-", "+"],
      ["XINFO", "STREAM", "x"],
      ["COMMAND", "INFO", "GET"],
      ["INCRBYFLOAT", "fl", "0"],
      ["ZINCRBY", "z2", "0.5", "m"], // 3.75 for RESP2, then 4.25 for RESP3: compared below
      ["DEBUG", "PROTOCOL", "attrib"],
      ["DEBUG", "PROTOCOL", "verbatim"],
      ["DEBUG", "PROTOCOL", "true"],
      ["DEBUG", "PROTOCOL", "null"],
      ["DEBUG", "PROTOCOL", "bignum"],
      ["DEBUG", "PROTOCOL", "map"],
      ["DEBUG", "PROTOCOL", "double"],
    ];
    for (const cmd of commands) {
      const want = await resp2.send(cmd);
      const got = await compat.send(cmd);
      if (cmd[0] === "SMEMBERS" || cmd[0] === "CONFIG") {
        expect(new Set(got as Reply[]), cmd.join(" ")).toEqual(new Set(want as Reply[]));
        continue;
      }
      if (cmd[0] === "ZINCRBY" && cmd[2] === "0.5") {
        expect([want, got]).toEqual(["3.75", "4.25"]);
        continue;
      }
      if (cmd[0] === "XINFO") {
        // Its entries hold ids that change with every XADD: compare the field names.
        expect((got as Reply[]).filter((_, i) => i % 2 === 0), cmd.join(" ")).toEqual((want as Reply[]).filter((_, i) => i % 2 === 0));
        continue;
      }
      expect(got, cmd.join(" ")).toEqual(want);
    }
  });

  it("compat cannot undo what Redis nests differently in RESP3 (WITHSCORES pairs): those need the command", async () => {
    // RESP2 gives a flat [member, score, ...]; RESP3 gives [[member, score], ...]
    // (ZRANGE/ZUNION/ZINTER/ZDIFF/ZRANDMEMBER WITHSCORES, ZPOPMIN/ZPOPMAX with
    // a count, HRANDFIELD WITHVALUES). The decoder keeps the structure Redis
    // sent; flattening belongs to the layer that knows the command.
    const want = await resp2.send(["ZRANGE", "z", "0", "-1", "WITHSCORES"]);
    const got = await compat.send(["ZRANGE", "z", "0", "-1", "WITHSCORES"]);
    expect(want).toEqual(["low", "-inf", "m", "3.25"]);
    expect(got).toEqual([["low", "-inf"], ["m", "3.25"]]);
    expect((got as Reply[][]).flat()).toEqual(want);
  });

  it("compat with Buffers: a double comes back a Buffer, as RESP2's bulk string would", async () => {
    expect(await compat.send(["ZSCORE", "z", "m"], true)).toEqual(Buffer.from("3.25"));
    expect(await resp2.send(["ZSCORE", "z", "m"], true)).toEqual(Buffer.from("3.25"));
  });

  it("pub/sub messages and client-side caching invalidations arrive as push frames, between replies", async () => {
    const sub = await Raw.open(server.port, "compat");
    try {
      await sub.send(["HELLO", "3"]);
      sub.sendUntracked(["SUBSCRIBE", "ch"]);
      expect(await sub.nextPushes(1)).toEqual([["subscribe", "ch", 1]]);
      // In RESP3 a subscribed connection still runs ordinary commands.
      expect(await sub.send(["PING"])).toBe("PONG");
      await resp2.send(["PUBLISH", "ch", "hello"]);
      expect(await sub.nextPushes(1)).toEqual([["message", "ch", "hello"]]);

      await sub.send(["CLIENT", "TRACKING", "on"]);
      await sub.send(["GET", "tracked"]);
      await resp2.send(["SET", "tracked", "1"]);
      expect(await sub.nextPushes(1)).toEqual([["invalidate", ["tracked"]]]);
    } finally {
      sub.close();
    }
  });
});
