// Blocking commands on the pipelined client (issue 7): they run on a
// dedicated connection (the pipelined transport's pooled helper), so they
// never stall the shared pipe, and their deadline adds to their own timeout.
import { describe, expect, it } from "vitest";
import { ConnectionError, TimeoutError, type Reply } from "../../src/index.js";
import { useRedis, within } from "./support.js";
import { waitFor } from "../support/wait.js";

const redis = useRedis();

async function blockedClients(): Promise<string[]> {
  const list = String(await redis.server.admin(["CLIENT", "LIST"]));
  return list.split("\n").filter((l) => /cmd=(blpop|brpop|xread|bzpopmin|blmove)\b/.test(l));
}

describe("blocking commands on the pipelined client", () => {
  it("BLPOP holds its own connection: GETs on the shared pipe are answered while it waits", async () => {
    const c = redis.client("pipelined");
    await c.set("blk:v", "value");
    const mainId = await c.command(["CLIENT", "ID"]);
    let popped = false;
    const pop = c.command(["BLPOP", "blk:list", 5]).then((r) => {
      popped = true;
      return r;
    });
    await waitFor(async () => (await blockedClients()).length === 1, 2000);
    const [blocked] = await blockedClients();
    expect(blocked).not.toContain(`id=${String(mainId)} `);
    // The pipe is free: 100 GETs come back while BLPOP still waits.
    const gets = await within(Promise.all(Array.from({ length: 100 }, () => c.get("blk:v"))), 2000, "GETs behind BLPOP");
    expect(gets).toEqual(Array.from({ length: 100 }, () => "value"));
    expect(popped).toBe(false);
    expect(await c.rpush("blk:list", "item")).toBe(1);
    expect(await within(pop, 2000, "BLPOP")).toEqual(["blk:list", "item"]);
  });

  it("several blocking commands wait side by side (BLPOP, BRPOP, BZPOPMIN, XREAD BLOCK), each served", async () => {
    const c = redis.client("pipelined");
    const waits: Promise<Reply>[] = [
      c.command(["BLPOP", "side:a", 5]),
      c.command(["BRPOP", "side:b", 5]),
      c.command(["BZPOPMIN", "side:z", 5]),
      c.command(["XREAD", "BLOCK", 5000, "STREAMS", "side:s", "$"]),
    ];
    await waitFor(async () => (await blockedClients()).length === 4, 2000);
    expect(await c.ping()).toBe("PONG");
    await c.rpush("side:a", "1");
    await c.rpush("side:b", "2");
    await c.zadd("side:z", 3, "three");
    const id = await c.command(["XADD", "side:s", "*", "f", "v"]);
    const [a, b, z, x] = await within(Promise.all(waits), 2000, "blocking replies");
    expect(a).toEqual(["side:a", "1"]);
    expect(b).toEqual(["side:b", "2"]);
    expect(z).toEqual(["side:z", "three", "3"]);
    expect(x).toEqual([["side:s", [[id, ["f", "v"]]]]]);
  });

  it("gets its own timeout: commandTimeoutMs adds to BLPOP's, and a per-call timeout frees the socket", async () => {
    const c = redis.client("pipelined", { commandTimeoutMs: 400 });
    // Warm the dedicated connection (its dial counts against the deadline too).
    await c.rpush("tmo:warm", "w");
    expect(await c.command(["BLPOP", "tmo:warm", 1])).toEqual(["tmo:warm", "w"]);
    // BLPOP 1 s with a 400 ms command deadline: the server's own timeout wins (nil), no TimeoutError.
    const started = Date.now();
    expect(await c.command(["BLPOP", "tmo:never", 1])).toBe(null);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);

    const err = await c.command(["BLPOP", "tmo:never", 0], { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).command).toBe("BLPOP");
    // The timed-out socket is destroyed, not lent again: the server sees it go.
    await waitFor(async () => (await blockedClients()).length === 0, 2000);
    // Its late reply can never reach anyone: an element pushed now stays in the list.
    await c.rpush("tmo:never", "kept");
    expect(await c.lrange("tmo:never", 0, -1)).toEqual(["kept"]);
  });

  it("a BLPOP waiting when the server dies settles with a ConnectionError (maybeExecuted), and BLPOP works after the restart", async () => {
    const c = redis.client("pipelined", { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    const pop = c.command(["BLPOP", "chaos:l", 0]).catch((e: unknown) => e);
    await waitFor(async () => (await blockedClients()).length === 1, 2000);
    await redis.server.kill();
    const err = await within(pop, 3000, "BLPOP after kill");
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).maybeExecuted).toBe(true);
    await redis.server.restart();
    const again = c.command(["BLPOP", "chaos:l", 5]);
    await waitFor(async () => (await blockedClients()).length === 1, 3000);
    await c.rpush("chaos:l", "x");
    expect(await within(again, 3000, "BLPOP after restart")).toEqual(["chaos:l", "x"]);
  });
});
