// Pub/sub (issue 7): a dedicated connection per client, opened on first use;
// strings or Buffers; resubscribe after every reconnect, with events.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { ClientClosedError, RedisError, TimeoutError, type Client } from "../../src/index.js";
import { waitFor } from "../support/wait.js";
import { rejectionOf, TRANSPORTS, useRedis, within } from "./support.js";

const redis = useRedis();

/** Collects messages; next(n) resolves once n have arrived in total. */
function inbox<T>(): { items: T[]; push(item: T): void; next(count: number, what?: string): Promise<T[]> } {
  const items: T[] = [];
  let waiters: { count: number; resolve(v: T[]): void }[] = [];
  return {
    items,
    push(item) {
      items.push(item);
      const ready = waiters.filter((w) => items.length >= w.count);
      waiters = waiters.filter((w) => items.length < w.count);
      for (const w of ready) w.resolve(items.slice(0, w.count));
    },
    next(count, what = "messages") {
      if (items.length >= count) return Promise.resolve(items.slice(0, count));
      return within(new Promise<T[]>((resolve) => waiters.push({ count, resolve })), 5000, what);
    },
  };
}

function once<T>(client: Client, event: "resubscribed" | "subscriber-disconnect" | "error"): Promise<T> {
  return within(new Promise<T>((resolve) => client.once(event, (info: unknown) => resolve(info as T))), 5000, event);
}

async function numsub(channel: string): Promise<number> {
  const reply = await redis.server.admin(["PUBSUB", "NUMSUB", channel]);
  return (reply as [string, number])[1];
}

/** CLIENT LIST ids of the pub/sub connections named sub-test. */
async function subscriberIds(): Promise<string[]> {
  const list = String(await redis.server.admin(["CLIENT", "LIST", "TYPE", "pubsub"]));
  return list
    .split("\n")
    .filter((l) => l.includes("name=sub-test"))
    .map((l) => /\bid=(\d+)/.exec(l)?.[1] ?? "");
}

async function subscriberNames(): Promise<number> {
  const list = String(await redis.server.admin(["CLIENT", "LIST", "TYPE", "pubsub"]));
  return list.split("\n").filter((l) => l.includes("name=sub-test")).length;
}

for (const transport of TRANSPORTS) {
  describe(`pub/sub (${transport})`, () => {
    const ch = (name: string): string => `${transport}:ch:${name}`;

    it("delivers messages to channel and pattern listeners, as strings or Buffers", async () => {
      const c = redis.client(transport);
      const text = inbox<[string, string]>();
      const bytes = inbox<[Buffer, string]>();
      const pattern = inbox<[string, string, string]>();
      await c.subscribe([ch("a"), ch("b")], (message, channel) => text.push([message, channel]));
      await c.subscribe(ch("a"), (message, channel) => bytes.push([message, channel]), { returnBuffers: true });
      await c.psubscribe(ch("p.*"), (message, channel, pat) => pattern.push([message, channel, pat]));
      expect(c.subscriptions).toEqual({ channels: [ch("a"), ch("b")], patterns: [ch("p.*")], shardChannels: [] });

      expect(await c.command(["PUBLISH", ch("a"), "héllo"])).toBe(1); // one subscriber connection
      expect(await c.command(["PUBLISH", ch("b"), "second"])).toBe(1);
      expect(await c.command(["PUBLISH", ch("a"), Buffer.from([0, 255, 10, 13])])).toBe(1);
      expect(await c.command(["PUBLISH", ch("p.x"), "via pattern"])).toBe(1);
      expect(await text.next(3)).toEqual([
        ["héllo", ch("a")],
        ["second", ch("b")],
        [Buffer.from([0, 255, 10, 13]).toString("utf8"), ch("a")],
      ]);
      expect(await bytes.next(2)).toEqual([
        [Buffer.from("héllo"), ch("a")],
        [Buffer.from([0, 255, 10, 13]), ch("a")],
      ]);
      expect(await pattern.next(1)).toEqual([["via pattern", ch("p.x"), ch("p.*")]]);
      // The command connection is not the subscriber: it still runs anything.
      expect(await c.set(ch("key"), "v")).toBe("OK");
    });

    it("unsubscribes one listener, then the channel once none is left; punsubscribe likewise", async () => {
      const c = redis.client(transport);
      const first = inbox<string>();
      const second = inbox<string>();
      const l1 = (m: string): void => first.push(m);
      const l2 = (m: string): void => second.push(m);
      await c.subscribe(ch("u"), l1);
      await c.subscribe(ch("u"), l2);
      await c.unsubscribe(ch("u"), l1);
      expect(await numsub(ch("u"))).toBe(1);
      expect(await c.command(["PUBLISH", ch("u"), "m1"])).toBe(1);
      expect(await second.next(1)).toEqual(["m1"]);
      await c.unsubscribe(ch("u"), l2);
      expect(await numsub(ch("u"))).toBe(0);
      expect(c.subscriptions.channels).toEqual([]);
      expect(first.items).toEqual([]);

      await c.psubscribe([ch("x*"), ch("y*")], l1);
      expect(await redis.server.admin(["PUBSUB", "NUMPAT"])).toBe(2);
      await c.punsubscribe();
      expect(await redis.server.admin(["PUBSUB", "NUMPAT"])).toBe(0);
      await c.subscribe([ch("v"), ch("w")], l1);
      await c.unsubscribe();
      expect(await numsub(ch("v"))).toBe(0);
      expect(await numsub(ch("w"))).toBe(0);
    });

    it("opens one subscriber connection, lazily, named like the client", async () => {
      const c = redis.client(transport, { clientName: "sub-test" });
      await c.ping();
      expect(await subscriberNames()).toBe(0);
      await c.subscribe(ch("lazy1"), () => undefined);
      await c.psubscribe(ch("lazy2*"), () => undefined);
      expect(await subscriberNames()).toBe(1);
      await c.close();
      expect(await numsub(ch("lazy1"))).toBe(0);
      await expect(c.subscribe(ch("lazy1"), () => undefined)).rejects.toBeInstanceOf(ClientClosedError);
    });

    it("resubscribes after CLIENT KILL and tells the application", async () => {
      const c = redis.client(transport, { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
      const got = inbox<string>();
      const pgot = inbox<string>();
      await c.subscribe([ch("k1"), ch("k2")], (m) => got.push(m));
      await c.psubscribe(ch("kp*"), (m) => pgot.push(m));
      const disconnected = once<{ error: Error | undefined }>(c, "subscriber-disconnect");
      const resubscribed = once<{ channels: string[]; patterns: string[] }>(c, "resubscribed");
      expect(await redis.server.admin(["CLIENT", "KILL", "TYPE", "pubsub"])).toBe(1);
      await disconnected;
      expect(await resubscribed).toEqual({ channels: [ch("k1"), ch("k2")], patterns: [ch("kp*")], shardChannels: [] });
      expect(await c.command(["PUBLISH", ch("k2"), "after"])).toBe(1);
      expect(await c.command(["PUBLISH", ch("kp1"), "pattern after"])).toBe(1);
      expect(await got.next(1)).toEqual(["after"]);
      expect(await pgot.next(1)).toEqual(["pattern after"]);
    });

    it("sharded pub/sub: ssubscribe gets SPUBLISH messages, beside plain channels, and is resubscribed after CLIENT KILL", async () => {
      const c = redis.client(transport, { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
      const shard = inbox<[string, string]>();
      const plain = inbox<string>();
      // Three names in three different slots: sent as one SSUBSCRIBE per slot.
      await c.ssubscribe([ch("s1"), ch("s2"), ch("s3")], (m, channel) => shard.push([m, channel]));
      await c.subscribe(ch("s1"), (m) => plain.push(m)); // the same name as a plain channel is another subscription
      expect(c.subscriptions).toEqual({ channels: [ch("s1")], patterns: [], shardChannels: [ch("s1"), ch("s2"), ch("s3")] });
      expect(await c.command(["SPUBLISH", ch("s2"), "sharded"])).toBe(1);
      expect(await c.command(["PUBLISH", ch("s1"), "plain"])).toBe(1);
      expect(await shard.next(1)).toEqual([["sharded", ch("s2")]]);
      expect(await plain.next(1)).toEqual(["plain"]);

      const resubscribed = once<unknown>(c, "resubscribed");
      expect(await redis.server.admin(["CLIENT", "KILL", "TYPE", "pubsub"])).toBe(1);
      expect(await resubscribed).toEqual({ channels: [ch("s1")], patterns: [], shardChannels: [ch("s1"), ch("s2"), ch("s3")] });
      expect(await c.command(["SPUBLISH", ch("s3"), "after"])).toBe(1);
      expect(await shard.next(2)).toEqual([["sharded", ch("s2")], ["after", ch("s3")]]);

      await c.sunsubscribe([ch("s2"), ch("s3")]);
      expect(c.subscriptions.shardChannels).toEqual([ch("s1")]);
      expect(await c.command(["SPUBLISH", ch("s3"), "gone"])).toBe(0);
      expect(await c.command(["SPUBLISH", ch("s1"), "still"])).toBe(1);
      expect(await shard.next(3)).toEqual([["sharded", ch("s2")], ["after", ch("s3")], ["still", ch("s1")]]);
    });

    it("a throwing listener is reported as an error event and does not disturb the others", async () => {
      const c = redis.client(transport);
      const got = inbox<string>();
      const error = once<RedisError>(c, "error");
      await c.subscribe(ch("t"), () => {
        throw new Error("listener bug");
      });
      await c.subscribe(ch("t"), (m) => got.push(m));
      await c.command(["PUBLISH", ch("t"), "one"]);
      await c.command(["PUBLISH", ch("t"), "two"]);
      expect(await got.next(2)).toEqual(["one", "two"]);
      const err = await error;
      expect(err.code).toBe("ERR_RESPITE_LISTENER");
      expect((err.cause as Error).message).toBe("listener bug");
    });

    it("a subscribe the server does not confirm in time rejects with TimeoutError and leaves nothing behind", async () => {
      const c = redis.client(transport, { commandTimeoutMs: 500 });
      const got = inbox<string>();
      await c.subscribe(ch("warm"), (m) => got.push(m));
      redis.server.pause();
      let err: unknown;
      try {
        err = await c.subscribe(ch("slow"), (m) => got.push(`slow:${m}`)).catch((e: unknown) => e);
      } finally {
        redis.server.resume();
      }
      expect(err).toBeInstanceOf(TimeoutError);
      expect(c.subscriptions.channels).toEqual([ch("warm")]);
      // Confirmations come in order: once this one is in, the late SUBSCRIBE and its UNSUBSCRIBE are done.
      await c.subscribe(ch("marker"), () => undefined);
      expect(await numsub(ch("slow"))).toBe(0);
      await c.command(["PUBLISH", ch("slow"), "lost"]);
      await c.command(["PUBLISH", ch("warm"), "kept"]);
      expect(await got.next(1)).toEqual(["kept"]);
      expect(got.items).toEqual(["kept"]);
    });

    it("unsubscribing before the confirmation arrives settles both calls and leaves the channel unsubscribed", async () => {
      const c = redis.client(transport);
      await c.subscribe(ch("first"), () => undefined); // the subscriber is connected
      const sub = c.subscribe(ch("quick"), () => undefined);
      const unsub = c.unsubscribe(ch("quick"));
      await Promise.all([sub, unsub]);
      expect(await numsub(ch("quick"))).toBe(0);
      expect(c.subscriptions.channels).toEqual([ch("first")]);
    });

    it("rejects bad arguments with a TypeError", async () => {
      const c = redis.client(transport);
      await expect(c.subscribe([], () => undefined)).rejects.toThrow(TypeError);
      await expect(c.subscribe("", () => undefined)).rejects.toThrow(TypeError);
      await expect(c.subscribe("x", "nope" as unknown as () => void)).rejects.toThrow(TypeError);
    });
  });
}

describe("pub/sub across a server restart", () => {
  it("backs off while the server is down, resubscribes when it is back, and messages resume", async () => {
    const c = redis.client("pipelined", { reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    const got = inbox<string>();
    await c.subscribe("restart:ch", (m) => got.push(m));
    const delays: number[] = [];
    c.on("subscriber-reconnecting", ({ delayMs }) => delays.push(delayMs));
    const resubscribed = once<{ channels: string[] }>(c, "resubscribed");
    await redis.server.kill();
    await redis.server.restart();
    expect(await resubscribed).toEqual({ channels: ["restart:ch"], patterns: [], shardChannels: [] });
    for (const d of delays) expect(d).toBeLessThanOrEqual(100);
    expect(await c.command(["PUBLISH", "restart:ch", "back"])).toBe(1);
    expect(await got.next(1)).toEqual(["back"]);
  });

  it("a server that accepts and drops at once gets dials at the backoff's pace, not a storm", async () => {
    let dials = 0;
    const srv = net.createServer((socket) => {
      dials++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    try {
      const port = (srv.address() as net.AddressInfo).port;
      // lazyConnect: only the subscriber dials (the command connection is not under test here).
      const c = redis.client("pipelined", { url: undefined, host: "127.0.0.1", port, lazyConnect: true, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
      const pending = c.subscribe("storm", () => undefined).catch((e: unknown) => e);
      const reconnecting = new Promise<void>((resolve) => c.on("subscriber-reconnecting", ({ attempt }) => attempt >= 5 && resolve()));
      await within(reconnecting, 5000, "five backoff steps");
      const before = dials;
      await new Promise((r) => setTimeout(r, 300)); // a window to count dials in, not a synchronisation
      // Capped at 100 ms apart on average 50 ms: a handful of dials, where a spin would make thousands.
      expect(dials - before).toBeLessThan(30);
      c.destroy();
      expect(await pending).toBeInstanceOf(ClientClosedError);
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });

  it("a 'subscriber-disconnect' listener that closes the client leaves no subscriber behind", async () => {
    const c = redis.client("pipelined", { clientName: "sub-test", reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    await c.subscribe("reentrant:ch", () => undefined);
    expect(await subscriberNames()).toBe(1);
    let resubscribed = 0;
    let reconnecting = 0;
    c.on("resubscribed", () => resubscribed++);
    c.on("subscriber-reconnecting", () => reconnecting++);
    const closed = new Promise<void>((resolve) =>
      c.once("subscriber-disconnect", () => {
        void c.close().then(resolve);
      }),
    );
    expect(await redis.server.admin(["CLIENT", "KILL", "TYPE", "pubsub"])).toBe(1);
    await within(closed, 5000, "close() from the listener");
    expect(c.status).toBe("closed");
    // Nothing of ours may come back: poll the server for a while.
    const deadline = Date.now() + 300;
    await waitFor(async () => {
      expect(await subscriberNames()).toBe(0);
      expect(await numsub("reentrant:ch")).toBe(0);
      return Date.now() > deadline;
    }, 2000);
    expect(resubscribed).toBe(0);
    expect(reconnecting).toBe(0);
    await expect(c.subscribe("reentrant:ch", () => undefined)).rejects.toBeInstanceOf(ClientClosedError);
  });

  it("an 'error' listener that closes the client on a failed subscriber dial stops the dials", async () => {
    let dials = 0;
    const srv = net.createServer((socket) => {
      dials++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    try {
      const port = (srv.address() as net.AddressInfo).port;
      // A password: the handshake's AUTH meets the close, so every dial fails. lazyConnect: only the subscriber dials.
      const c = redis.client("pipelined", {
        url: undefined,
        host: "127.0.0.1",
        port,
        password: "pw",
        lazyConnect: true,
        reconnect: { initialDelayMs: 5, maxDelayMs: 5 },
      });
      let reconnecting = 0;
      c.on("subscriber-reconnecting", () => reconnecting++);
      const errored = new Promise<RedisError>((resolve) =>
        c.once("error", (e) => {
          void c.close();
          resolve(e);
        }),
      );
      const pending = c.subscribe("reentrant:dial", () => undefined);
      expect((await within(errored, 5000, "the first dial error")).code).toBe("ERR_RESPITE_CONNECTION");
      expect(await rejectionOf(pending)).toBeInstanceOf(ClientClosedError);
      expect(c.status).toBe("closed");
      const before = dials;
      await new Promise((r) => setTimeout(r, 300)); // a window to count dials in, not a synchronisation
      expect(before).toBe(1);
      expect(dials).toBe(1);
      expect(reconnecting).toBe(0);
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });

  it("a server change (what the Sentinel router reports on a failover) makes the subscriber resubscribe on a new connection", async () => {
    const c = redis.client("pipelined", { clientName: "sub-test" });
    const got = inbox<string>();
    await c.subscribe("failover:ch", (m) => got.push(m));
    // The call a client behind Sentinel makes on a failover (src/sentinel/sentinel-transport.ts).
    const serverChanged = (): void => (c as unknown as { subscriber: { invalidate(): void } }).subscriber.invalidate();
    const idsBefore = await subscriberIds();
    expect(idsBefore).toHaveLength(1);
    const disconnected = once<{ error: Error | undefined }>(c, "subscriber-disconnect");
    const resubscribed = once<{ channels: string[]; patterns: string[] }>(c, "resubscribed");
    serverChanged();
    expect((await disconnected).error?.message).toBe("The server changed (failover); resubscribing");
    expect(await resubscribed).toEqual({ channels: ["failover:ch"], patterns: [], shardChannels: [] });
    const idsAfter = await subscriberIds();
    expect(idsAfter).toHaveLength(1);
    expect(idsAfter[0]).not.toBe(idsBefore[0]);
    expect(await c.command(["PUBLISH", "failover:ch", "after"])).toBe(1);
    expect(await got.next(1)).toEqual(["after"]);
    await c.close();
  });

  it("a pending subscribe rejects with ClientClosedError on destroy()", async () => {
    const c = redis.client("pipelined", { port: 1, host: "127.0.0.1", url: undefined, reconnect: { initialDelayMs: 5000, maxDelayMs: 5000 } });
    const pending = c.subscribe("never", () => undefined);
    c.destroy();
    expect(await rejectionOf(pending)).toBeInstanceOf(ClientClosedError);
  });
});
