// The diagnostics channels: the payloads tools read, on both transports. A
// subscriber written for ioredis's (or node-redis's) ":command" channel works
// here by changing only the channel name; nothing secret reaches a payload.
import dc from "node:diagnostics_channel";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, ReplyError, type Client } from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";

let server: RedisServer;
const clients: Client[] = [];
beforeAll(async () => {
  server = await startRedis({ args: ["--requirepass", "s3cret-pw"] });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});
afterAll(async () => {
  await server.stop();
});

/**
 * The shape of a subscriber as written for ioredis 6 (`ioredis:command`) or
 * node-redis 6 (`node-redis:command`): it reads command, args, database,
 * serverAddress, serverPort and the tracePromise phases. Only the channel
 * name is respite's.
 */
function apmLikeSubscriber(channelName: string) {
  const spans: { command: string; args: readonly string[]; database: number; server: string; error?: unknown; result?: unknown; ended: boolean }[] = [];
  const byCtx = new WeakMap<object, (typeof spans)[number]>();
  const channel = dc.tracingChannel(channelName);
  const handlers = {
    start(ctx: any) {
      const span = { command: String(ctx.command), args: ctx.args, database: ctx.database, server: `${ctx.serverAddress}:${ctx.serverPort}`, ended: false };
      byCtx.set(ctx, span);
      spans.push(span);
    },
    end() {},
    asyncStart() {},
    asyncEnd(ctx: any) {
      const span = byCtx.get(ctx);
      if (span === undefined) return;
      span.result = ctx.result;
      span.error = ctx.error;
      span.ended = true;
    },
    error() {},
  };
  channel.subscribe(handlers);
  return { spans, stop: () => channel.unsubscribe(handlers) };
}

describe.each(["pipelined", "pooled"] as const)("%s transport", (transport) => {
  const make = (): Client => {
    const c = createClient({ host: server.host, port: server.port, password: "s3cret-pw", transport, db: 2 });
    clients.push(c);
    return c;
  };

  it("respite:command: the payload APM subscribers read, redacted, with replies and typed errors", async () => {
    const sub = apmLikeSubscriber("respite:command");
    try {
      const c = make();
      await c.command(["SET", "obs:k", "a secret value"]);
      await c.command(["GET", "obs:k"]);
      // HGET is not on the list of commands whose arguments may be shown: all "?".
      const err = await c.command(["HGET", "obs:k", "field"]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReplyError);
      await c.command(["CONFIG", "SET", "masterauth", "another-secret"]);
      await waitFor(() => sub.spans.length === 4 && sub.spans.every((s) => s.ended), 2000);
      expect(sub.spans.map(({ command, args, database, server: where }) => ({ command, args, database, where }))).toEqual([
        { command: "SET", args: ["obs:k", "?"], database: 2, where: `${server.host}:${server.port}` },
        { command: "GET", args: ["obs:k"], database: 2, where: `${server.host}:${server.port}` },
        { command: "HGET", args: ["?", "?"], database: 2, where: `${server.host}:${server.port}` },
        { command: "CONFIG", args: ["SET", "?", "?"], database: 2, where: `${server.host}:${server.port}` },
      ]);
      expect(sub.spans.map((s) => s.result)).toEqual(["OK", "a secret value", undefined, "OK"]);
      expect(sub.spans[2]?.error).toBe(err);
      const everything = JSON.stringify(sub.spans.map((s) => ({ ...s, result: undefined })));
      expect(everything).not.toContain("a secret value");
      expect(everything).not.toContain("another-secret");
      expect(everything).not.toContain("s3cret-pw");
    } finally {
      sub.stop();
    }
  });

  it("respite's own facts: transport, protocol, clientId, maybeExecuted on errors", async () => {
    const seen: any[] = [];
    const handlers = { start() {}, end() {}, asyncStart() {}, asyncEnd: (ctx: any) => seen.push(ctx), error() {} };
    dc.tracingChannel("respite:command").subscribe(handlers);
    try {
      const c = make();
      const key = `obs:str:${transport}`;
      await c.command(["HGET", key, "f"]).catch(() => undefined); // a missing key: nil
      await c.command(["SET", key, "x"]);
      await c.command(["HGET", key, "f"]).catch(() => undefined); // WRONGTYPE
      expect(seen.map((ctx) => [ctx.transport, ctx.protocol, typeof ctx.clientId, ctx.maybeExecuted, ctx.retried])).toEqual([
        [transport, 3, "string", undefined, false],
        [transport, 3, "string", undefined, false],
        [transport, 3, "string", true, false],
      ]);
    } finally {
      dc.tracingChannel("respite:command").unsubscribe(handlers);
    }
  });

  it("respite:batch for plain and atomic batches; respite:connect for each dial", async () => {
    const batches: any[] = [];
    const connects: any[] = [];
    const b = { start: (ctx: any) => batches.push(ctx), end() {}, asyncStart() {}, asyncEnd() {}, error() {} };
    const k = { start: (ctx: any) => connects.push(ctx), end() {}, asyncStart() {}, asyncEnd() {}, error() {} };
    dc.tracingChannel("respite:batch").subscribe(b);
    dc.tracingChannel("respite:connect").subscribe(k);
    try {
      const c = make();
      await c.batch([["SET", "obs:b", "1"], ["INCR", "obs:b"]]);
      await c.batch([["INCR", "obs:b"], ["INCR", "obs:b"], ["GET", "obs:b"]], { atomic: true });
      expect(batches.map((ctx) => [ctx.batchMode, ctx.batchSize, ctx.database, ctx.transport])).toEqual([
        ["PIPELINE", 2, 2, transport],
        ["MULTI", 3, 2, transport],
      ]);
      expect(connects.length).toBeGreaterThanOrEqual(1);
      expect(connects[0]).toMatchObject({ serverAddress: server.host, serverPort: server.port });
      expect(JSON.stringify(connects)).not.toContain("s3cret-pw");
    } finally {
      dc.tracingChannel("respite:batch").unsubscribe(b);
      dc.tracingChannel("respite:connect").unsubscribe(k);
    }
  });

  it("point channels: disconnect, reconnecting, ready after CLIENT KILL", async () => {
    const events: string[] = [];
    const names = ["respite:connection:disconnect", "respite:connection:reconnecting", "respite:connection:ready"];
    const handlers = names.map((name) => {
      const h = (m: unknown): void => {
        expect(JSON.stringify(m)).not.toContain("s3cret-pw");
        events.push(name.split(":").pop() as string);
      };
      dc.subscribe(name, h);
      return h;
    });
    try {
      const c = make();
      await c.command(["PING"]);
      events.length = 0;
      await server.admin(["CLIENT", "KILL", "TYPE", "normal"]);
      await waitFor(() => events.includes("ready"), 5000);
      expect(events).toEqual(["disconnect", "reconnecting", "ready"]);
    } finally {
      names.forEach((name, i) => dc.unsubscribe(name, handlers[i] as (m: unknown) => void));
    }
  });
});

describe("no subscriber", () => {
  it("nothing is published and replies are the plain promises", async () => {
    expect(dc.tracingChannel("respite:command").hasSubscribers).toBe(false);
    const c = createClient({ host: server.host, port: server.port, password: "s3cret-pw" });
    clients.push(c);
    expect(await c.command(["PING"])).toBe("PONG");
  });
});
