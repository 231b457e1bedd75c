// The protocol layer against a real redis-server, over a raw socket: no
// client, no transport. If this fails, nothing above it can pass.
import { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeCommand, type Arg } from "../src/protocol/encode.js";
import { Decoder, type Reply } from "../src/protocol/decode.js";
import { ProtocolError, ReplyError } from "../src/errors.js";
import { startRedis, type RedisServer } from "./support/redis-server.js";

const REPLY_TIMEOUT_MS = 5_000;

interface Pending {
  resolve(reply: Reply): void;
  reject(err: Error): void;
  returnBuffers: boolean;
}

/** A minimal pipelined connection: FIFO of waiters, Buffer wish per command. */
class RawConnection {
  private readonly socket: Socket;
  private readonly fifo: Pending[] = [];
  private readonly decoder: Decoder;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.decoder = new Decoder({
      onReply: (reply) => this.settle((p) => p.resolve(reply)),
      onErrorReply: (error) => this.settle((p) => p.reject(error)),
      onProtocolError: (error) => this.failAll(error),
    });
    socket.on("data", (chunk: Buffer) => this.decoder.write(chunk));
    socket.on("error", (err) => this.failAll(err));
    socket.on("close", () => this.failAll(new Error("socket closed")));
  }

  static connect(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = new Socket();
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error("connect timed out"));
      }, REPLY_TIMEOUT_MS);
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.connect(port, "127.0.0.1", () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        resolve(new RawConnection(socket));
      });
    });
  }

  send(args: readonly Arg[], returnBuffers = false): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${String(args[0])} timed out`)), REPLY_TIMEOUT_MS);
      this.fifo.push({
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        returnBuffers,
      });
      if (this.fifo.length === 1) this.decoder.setReturnBuffers(returnBuffers);
      this.socket.write(encodeCommand(args));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private settle(action: (p: Pending) => void): void {
    const head = this.fifo.shift();
    if (head === undefined) {
      this.failAll(new ProtocolError("reply with no waiter"));
      return;
    }
    const next = this.fifo[0];
    if (next !== undefined) this.decoder.setReturnBuffers(next.returnBuffers);
    action(head);
  }

  private failAll(err: Error): void {
    for (const p of this.fifo.splice(0)) p.reject(err);
  }
}

let server: RedisServer;
let conn: RawConnection;

beforeAll(async () => {
  server = await startRedis();
  conn = await RawConnection.connect(server.port);
});

afterAll(async () => {
  conn?.close();
  await server?.stop();
});

describe("smoke: encodeCommand + Decoder against redis-server", () => {
  it("PING answers PONG", async () => {
    expect(await conn.send(["PING"])).toBe("PONG");
  });

  it("SET then GET returns the value", async () => {
    expect(await conn.send(["SET", "smoke:key", "hello é😀"])).toBe("OK");
    expect(await conn.send(["GET", "smoke:key"])).toBe("hello é😀");
  });

  it("GET of a missing key is null", async () => {
    expect(await conn.send(["GET", "smoke:missing"])).toBeNull();
  });

  it("INCR on a non-integer value is a ReplyError with the server's code", async () => {
    await conn.send(["SET", "smoke:text", "not a number"]);
    const err = await conn.send(["INCR", "smoke:text"]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ReplyError);
    expect((err as ReplyError).code).toBe("ERR");
    expect((err as ReplyError).message).toBe("ERR value is not an integer or out of range");
  });

  it("a command against the wrong type is a WRONGTYPE ReplyError", async () => {
    await conn.send(["SET", "smoke:string", "v"]);
    await expect(conn.send(["LPUSH", "smoke:string", "x"])).rejects.toMatchObject({
      name: "ReplyError",
      code: "WRONGTYPE",
    });
  });

  it("numbers and bigints are sent as bulk strings, integers come back as numbers", async () => {
    expect(await conn.send(["SET", "smoke:n", 41])).toBe("OK");
    expect(await conn.send(["INCRBY", "smoke:n", 1n])).toBe(42);
    expect(await conn.send(["INCRBYFLOAT", "smoke:n", 0.5])).toBe("42.5");
  });

  it("a binary value round-trips byte-exact when the reply is asked for as a Buffer", async () => {
    const value = Buffer.from([0x00, 0x0d, 0x0a, 0xff, 0xfe, 0x80, 0x24, 0x2d, 0x0d]);
    expect(await conn.send(["SET", Buffer.from("smoke:bin"), value])).toBe("OK");
    const got = await conn.send(["GET", "smoke:bin"], true);
    expect(Buffer.isBuffer(got)).toBe(true);
    expect(got).toEqual(value);
  });

  it("pipelined commands with mixed Buffer wishes settle in order", async () => {
    const results = await Promise.all([
      conn.send(["SET", "smoke:p", "v"]),
      conn.send(["GET", "smoke:p"], true),
      conn.send(["GET", "smoke:p"]),
      conn.send(["ECHO", "x"], true),
      conn.send(["EXISTS", "smoke:p", "smoke:nope"]),
    ]);
    expect(results).toEqual(["OK", Buffer.from("v"), "v", Buffer.from("x"), 1]);
  });

  it("a large value (1 MiB, many socket reads) round-trips", async () => {
    const big = "x".repeat(1024 * 1024 - 3) + "é!";
    expect(await conn.send(["SET", "smoke:big", big])).toBe("OK");
    expect(await conn.send(["GET", "smoke:big"])).toBe(big);
  });

  it("EXEC results carry nested error replies as ReplyError values", async () => {
    await conn.send(["SET", "smoke:tx", "text"]);
    const replies = await Promise.all([
      conn.send(["MULTI"]),
      conn.send(["INCR", "smoke:tx"]),
      conn.send(["GET", "smoke:tx"]),
      conn.send(["EXEC"]),
    ]);
    expect(replies.slice(0, 3)).toEqual(["OK", "QUEUED", "QUEUED"]);
    const exec = replies[3];
    expect(Array.isArray(exec)).toBe(true);
    if (!Array.isArray(exec)) return;
    expect(exec[0]).toBeInstanceOf(ReplyError);
    expect((exec[0] as ReplyError).code).toBe("ERR");
    expect(exec[1]).toBe("text");
  });
});
