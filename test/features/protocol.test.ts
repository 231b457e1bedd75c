// The protocol option: what each client negotiates, the fallback for servers
// without HELLO, and replies that do not change with it (compat), or RESP3's
// own types (native).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Client, type ClientOptions } from "../../src/index.js";
import { DEFAULTS } from "../../src/options.js";
import { startFakeServer, goodServer, type FakeServer } from "../support/fake-server.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { clientList } from "../conformance/support.js";

let server: RedisServer;
const made: Client[] = [];
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  for (const c of made) c.destroy();
  await server.stop();
});

const make = (options: ClientOptions): Client => {
  const c = createClient({ host: server.host, port: server.port, ...options });
  made.push(c);
  return c;
};

describe("protocol", () => {
  it.each(["pipelined", "pooled"] as const)("%s: protocol 3 and 2 are what the server sees (CLIENT LIST resp=)", async (transport) => {
    const three = make({ transport, protocol: 3, clientName: `p3-${transport}` });
    const two = make({ transport, protocol: 2, clientName: `p2-${transport}` });
    await Promise.all([three.command(["PING"]), two.command(["PING"])]);
    expect((await clientList(server, `p3-${transport}`)).map((r) => r.resp)).toEqual(["3"]);
    expect((await clientList(server, `p2-${transport}`)).map((r) => r.resp)).toEqual(["2"]);
  });

  it("replies are the same on both protocols in compat mode, for the commands whose RESP3 structure differs", async () => {
    const seed = make({ protocol: 2 });
    await seed.batch([
      ["DEL", "proto:z", "proto:h", "proto:s", "proto:x"],
      ["ZADD", "proto:z", "1", "a", "2.5", "b", "inf", "c"],
      ["HSET", "proto:h", "f1", "v1", "f2", "v2"],
      ["SADD", "proto:s", "m"],
      ["XADD", "proto:x", "1-1", "k", "v"],
    ]);
    const commands = [
      ["ZRANGE", "proto:z", "0", "-1", "WITHSCORES"],
      ["ZRANGE", "proto:z", "0", "-1"],
      ["ZSCORE", "proto:z", "b"],
      ["ZSCORE", "proto:z", "c"],
      ["ZRANDMEMBER", "proto:z", "-1", "WITHSCORES"],
      ["HGETALL", "proto:h"],
      ["SMEMBERS", "proto:s"],
      ["XREAD", "COUNT", "1", "STREAMS", "proto:x", "0"],
      ["CONFIG", "GET", "maxmemory-policy"],
      ["EXISTS", "proto:h"],
      ["HRANDFIELD", "proto:h", "-1", "WITHVALUES"],
    ];
    // ZRANDMEMBER/HRANDFIELD with a negative count repeat members at random: compare their shapes only.
    const shape = (v: unknown): unknown => (Array.isArray(v) ? v.map(shape) : typeof v);
    const comparable = (all: unknown[]): unknown[] => all.map((r, i) => ([4, 10].includes(i) ? shape(r) : r));
    const replies = async (protocol: 2 | 3): Promise<unknown[]> => {
      const c = make({ protocol });
      const one = await Promise.all(commands.map((cmd) => c.command(cmd)));
      // The same inside a transaction (EXEC's results reshaped by their commands).
      expect(comparable(await c.batch(commands, { atomic: true }))).toEqual(comparable(one));
      return one;
    };
    const [two, three] = await Promise.all([replies(2), replies(3)]);
    expect(comparable(three)).toEqual(comparable(two));
    expect(three[0]).toEqual(["a", "1", "b", "2.5", "c", "inf"]);
    expect(three[7]).toEqual([["proto:x", [["1-1", ["k", "v"]]]]]);
  });

  it("native replies give RESP3's own types", async () => {
    const c = make({ protocol: 3, replies: "native" });
    await c.command(["HSET", "proto:n", "f", "v"]);
    await c.command(["ZADD", "proto:nz", "1.5", "a", "inf", "b"]);
    expect(await c.command(["HGETALL", "proto:n"])).toEqual(new Map([["f", "v"]]));
    expect(await c.command(["ZSCORE", "proto:nz", "a"])).toBe(1.5);
    expect(await c.command(["ZSCORE", "proto:nz", "b"])).toBe(Infinity);
    expect(await c.command(["SMEMBERS", "proto:none"])).toEqual(new Set());
  });

  it("a server without HELLO: RESP2 from the first dial on, with one protocol-fallback event", async () => {
    let fake: FakeServer | undefined;
    try {
      fake = await startFakeServer(goodServer());
      const c = createClient({ host: "127.0.0.1", port: fake.port, protocol: 3, reconnect: { initialDelayMs: 5, maxDelayMs: 10 } });
      made.push(c);
      const fallbacks: unknown[] = [];
      c.on("protocol-fallback", (info) => fallbacks.push(info));
      expect(await c.command(["SET", "k", "v"])).toBe("OK");
      // A reconnect: no second HELLO, no second event.
      for (const conn of fake.connections) conn.reset();
      expect(await c.command(["GET", "k"])).toBe("v");
      expect(fallbacks).toEqual([{ protocol: 2 }]);
      expect(fake.commands.filter((a) => a[0] === "HELLO")).toHaveLength(1);
    } finally {
      await fake?.close();
    }
  });

  it("the default is RESP3 (or RESP2 in the resp2 test project)", () => {
    expect([2, 3]).toContain(DEFAULTS.protocol);
  });
});
