// Arguments round-trip exactly through a real redis-server (CR LF, NUL, every
// byte value, 1 MB, 50 MB), no argument can inject a second command, and real
// replies read one byte at a time (fault proxy split) decode exactly as read
// directly.
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Client, type ClientOptions, type Reply } from "../../src/index.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { fuzzRuns, transports, trapEscapes } from "./support.js";

const escaped = trapEscapes();
const RUNS = fuzzRuns(100);

let server: RedisServer;
const clients: Client[] = [];

beforeAll(async () => {
  server = await startRedis();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
  expect(escaped).toEqual([]);
});
afterAll(async () => {
  await server.stop();
});

// Fragments an attacker would use to smuggle a command into an argument.
const INJECTIONS = ["\r\n", "\r", "\n", "\0", "*3\r\n", "$3\r\nSET\r\n", "$8\r\ninjected\r\n", "$1\r\n1\r\n", "SET injected 1", "+OK\r\n", "-ERR x\r\n", "$-1\r\n"];
const hostileText = fc
  .array(fc.oneof(fc.constantFrom(...INJECTIONS), fc.string({ unit: "binary", maxLength: 8 })), { maxLength: 12 })
  .map((parts) => parts.join(""));

describe.each(transports)("arguments (%s)", (transport) => {
  function client(opts: ClientOptions = {}): Client {
    const c = createClient({ url: server.url, transport, ...opts });
    clients.push(c);
    return c;
  }

  it("values with CR LF, NUL and every byte value round-trip exactly (property)", async () => {
    const c = client();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), hostileText, async (bytes, text) => {
        const buf = Buffer.from(bytes);
        await c.command(["SET", `${transport}:bin`, buf]);
        const back = await c.command(["GET", `${transport}:bin`], { returnBuffers: true });
        expect(Buffer.isBuffer(back) && back.equals(buf)).toBe(true);
        await c.command(["SET", `${transport}:txt`, text]);
        expect(await c.command(["GET", `${transport}:txt`])).toBe(Buffer.from(text, "utf8").toString("utf8"));
        expect(await c.command(["ECHO", text])).toBe(Buffer.from(text, "utf8").toString("utf8"));
      }),
      { numRuns: RUNS },
    );
  });

  it("no argument can inject a second command", async () => {
    const c = client();
    const key = `${transport}:inject`;
    const value = "v\r\nSET injected 1\r\n";
    expect(await c.command(["SET", key, value])).toBe("OK");
    expect(await c.command(["GET", key])).toBe(value);
    expect(await c.command(["EXISTS", "injected"])).toBe(0);
    // In the key, as a Buffer, and as a whole RESP frame.
    const frame = "*3\r\n$3\r\nSET\r\n$8\r\ninjected\r\n$1\r\n1\r\n";
    await c.command(["SET", `k\r\n${frame}`, Buffer.from(frame)]);
    expect(await c.command(["GET", `k\r\n${frame}`])).toBe(frame);
    expect(await c.command(["EXISTS", "injected"])).toBe(0);
  });

  it("no argument can inject a second command (property)", async () => {
    const c = client();
    await c.command(["FLUSHDB"]);
    await fc.assert(
      fc.asyncProperty(fc.array(hostileText, { minLength: 1, maxLength: 4 }), async (args) => {
        // ECHO with one argument, and a write whose key and value are hostile.
        const echoed = await c.command(["ECHO", args.join("")]);
        expect(echoed).toBe(Buffer.from(args.join(""), "utf8").toString("utf8"));
        await c.command(["HSET", "hostile", args[0] as string, args.slice(1).join("")]);
        // Only the one key we wrote exists; nothing else was ever created.
        expect(await c.command(["DBSIZE"])).toBe(1);
      }),
      { numRuns: RUNS },
    );
    expect(await c.command(["EXISTS", "injected"])).toBe(0);
  });

  it("1 MB and 50 MB values round-trip exactly", async () => {
    const c = client();
    for (const size of [1024 * 1024, 50 * 1024 * 1024]) {
      const value = randomBytes(size);
      // Put CR LF and NUL right at the start and the end too.
      value.write("\r\n\0", 0, "latin1");
      value.write("\0\r\n", size - 3, "latin1");
      expect(await c.command(["SET", `${transport}:big`, value])).toBe("OK");
      expect(await c.command(["STRLEN", `${transport}:big`])).toBe(size);
      const back = await c.command(["GET", `${transport}:big`], { returnBuffers: true });
      expect(Buffer.isBuffer(back)).toBe(true);
      expect((back as Buffer).equals(value)).toBe(true);
    }
    await c.command(["DEL", `${transport}:big`]);
  }, 60_000);

  it("real replies of every RESP2 type, one byte per read through the proxy, decode as read directly", async () => {
    const proxy: FaultProxy = await startFaultProxy({ target: { port: server.port } });
    try {
      proxy.setFault({ type: "split" });
      const direct = client();
      const split = client({ url: proxy.url });
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.string({ unit: "grapheme", maxLength: 30 }), { minLength: 1, maxLength: 5 }),
          fc.integer({ min: -1_000_000, max: 1_000_000 }),
          async (items, n) => {
            const p = `${transport}:split`;
            await direct.command(["DEL", `${p}:list`, `${p}:hash`, `${p}:num`]);
            await direct.command(["RPUSH", `${p}:list`, ...items]);
            await direct.command(["HSET", `${p}:hash`, ...items.flatMap((s, i) => [`f${i}`, s])]);
            await direct.command(["SET", `${p}:num`, n]);
            const script: [string, ...(string | number)[]][] = [
              ["GET", `${p}:missing`], // null bulk
              ["LINDEX", `${p}:list`, 0], // bulk
              ["LRANGE", `${p}:list`, 0, -1], // array
              ["HGETALL", `${p}:hash`], // array
              ["INCRBY", `${p}:num`, 0], // integer
              ["PING"], // simple string
              ["LPUSH", `${p}:num`, "x"], // error: WRONGTYPE
              ["EVAL", "return {1, {2, 'x'}, redis.error_reply('E1 nested'), false}", 0], // nested, with an error and a nil
              ["EVAL", "return nil", 0], // null bulk from a script
              ["LRANGE", `${p}:missing`, 0, -1], // empty array
            ];
            const run = async (c: Client): Promise<unknown[]> =>
              Promise.all(script.map((args) => c.command(args).then(normalise, (e: Error) => ({ rejected: e.constructor.name, message: e.message }))));
            expect(await run(split)).toEqual(await run(direct));
          },
        ),
        { numRuns: Math.ceil(RUNS / 4) },
      );
      expect(proxy.connections[0]?.bytesDown).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });
});

function normalise(r: Reply): unknown {
  if (r instanceof Error) return { error: r.message };
  if (Array.isArray(r)) return r.map(normalise);
  return r;
}
