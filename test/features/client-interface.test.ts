// One client interface for every topology: code written against
// RespiteClient runs unchanged on a single-node client of either transport
// (and type-checks against a cluster client, whose suite runs the same calls
// on a real cluster).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, createCluster, type RespiteClient } from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.stop();
});

/** What a library written for "any respite client" does. */
async function useAnyClient(c: RespiteClient, prefix: string): Promise<unknown[]> {
  const seen: string[] = [];
  c.on("ready", () => seen.push("ready"));
  await c.set(`${prefix}:a`, "1");
  const batch = await c.batch([["INCR", `${prefix}:a`], ["GET", `${prefix}:a`]]);
  const lent = await c.withConnection(`${prefix}:a`, async (conn) => conn.command(["GET", `${prefix}:a`]));
  const anyConn = await c.withConnection(async (conn) => conn.command(["PING"]));
  const keys: string[] = [];
  for await (const k of c.scan({ match: `${prefix}:*` })) keys.push(k);
  return [batch, lent, anyConn, keys, c.status];
}

describe("RespiteClient", () => {
  it.each(["pipelined", "pooled"] as const)("the same code runs on a %s client", async (transport) => {
    const c = createClient({ host: server.host, port: server.port, transport });
    try {
      expect(await useAnyClient(c, `iface:${transport}`)).toEqual([[2, "2"], "2", "PONG", [`iface:${transport}:a`], "ready"]);
    } finally {
      await c.close({ timeoutMs: 1000 });
    }
  });

  it("a cluster client is a RespiteClient too", () => {
    const cluster = createCluster({ rootNodes: [{ host: "127.0.0.1", port: 1 }], lazyConnect: true });
    const asAny: RespiteClient = cluster;
    expect(typeof asAny.withConnection).toBe("function");
    cluster.destroy();
  });
});
