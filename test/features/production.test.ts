// In production: health checks that catch half-open sockets (SIGSTOP, a
// blackholed network), rotating credentials (a provider asked on every dial,
// pushes applied in place), and connect({ timeoutMs }), on both transports.
import { inspect } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConnectionError, createClient, type Client, type ClientOptions, type Credentials, type RedisError } from "../../src/index.js";
import { freePort, startRedis, type RedisServer } from "../support/redis-server.js";
import { startFaultProxy } from "../support/fault-proxy.js";
import { waitFor } from "../support/wait.js";
import { info } from "../conformance/support.js";

let server: RedisServer;
const clients: Client[] = [];
beforeAll(async () => {
  server = await startRedis();
});
afterEach(() => {
  server.resume();
  for (const c of clients.splice(0)) c.destroy();
});
afterAll(async () => {
  await server.stop();
});

const make = (options: ClientOptions): Client => {
  const c = createClient({ host: server.host, port: server.port, ...options });
  c.on("error", () => undefined);
  clients.push(c);
  return c;
};

async function pings(on: RedisServer): Promise<number> {
  const line = String(await on.admin(["INFO", "commandstats"])).split("\n").find((l) => l.startsWith("cmdstat_ping:"));
  return line === undefined ? 0 : Number(/calls=(\d+)/.exec(line)?.[1] ?? 0);
}

describe.each(["pipelined", "pooled"] as const)("%s transport: health checks", (transport) => {
  it("a frozen server (SIGSTOP) is found within two intervals: a command without a deadline fails as maybe executed", async () => {
    const c = make({ transport, healthCheckIntervalMs: 200, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    await c.command(["SET", "hc:k", "1"]);
    const lost = new Promise<number>((resolve) => c.once("disconnect", () => resolve(Date.now())));
    const t0 = Date.now();
    server.pause();
    const pending = c.command(["INCR", "hc:k"]).catch((e: unknown) => e);
    const err = (await pending) as RedisError;
    const detectedMs = (await lost) - t0;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.maybeExecuted).toBe(true);
    expect(detectedMs).toBeLessThan(2 * 200 + 100);
    server.resume();
    expect(await c.command(["GET", "hc:k"])).toMatch(/^[12]$/);
  });

  it("a blackholed connection (fault proxy) is found the same way", async () => {
    const proxy = await startFaultProxy({ target: { host: server.host, port: server.port } });
    try {
      const c = createClient({ host: "127.0.0.1", port: proxy.port, transport, healthCheckIntervalMs: 200, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
      c.on("error", () => undefined);
      clients.push(c);
      await c.command(["PING"]);
      const lost = new Promise<void>((resolve) => c.once("disconnect", () => resolve()));
      const t0 = Date.now();
      proxy.setFault({ type: "blackhole" });
      await lost;
      expect(Date.now() - t0).toBeLessThan(2 * 200 + 100);
      proxy.setFault({ type: "pass" });
      expect(await c.command(["PING"])).toBe("PONG");
    } finally {
      await proxy.close();
    }
  });

  it("costs one PING per interval when idle, none when busy", async () => {
    // A server of its own: nobody else's PING (a handshake left over from another test) is counted.
    const own = await startRedis();
    const c = createClient({ host: own.host, port: own.port, transport, healthCheckIntervalMs: 200, pool: { max: 1 } });
    clients.push(c);
    try {
      await c.command(["GET", "hc:warm"]);
      const before = await pings(own);
      await new Promise((r) => setTimeout(r, 1000)); // the window measured, not a synchronisation
      const idle = (await pings(own)) - before;
      expect(idle).toBeGreaterThanOrEqual(3);
      expect(idle).toBeLessThanOrEqual(6);
      const busyStart = await pings(own);
      const until = Date.now() + 800;
      while (Date.now() < until) await c.command(["GET", "hc:busy"]);
      // At most the one probe that may have been on its way when the busy loop began.
      expect((await pings(own)) - busyStart).toBeLessThanOrEqual(1);
    } finally {
      c.destroy();
      await own.stop();
    }
  });
});

describe("health checks: the subscriber", () => {
  it("a frozen server is found within two intervals and the subscription comes back", async () => {
    const c = make({ healthCheckIntervalMs: 200, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    await c.subscribe("hc:ch", () => undefined);
    const lost = new Promise<number>((resolve) => c.once("subscriber-disconnect", () => resolve(Date.now())));
    const back = new Promise<void>((resolve) => c.once("resubscribed", () => resolve()));
    const t0 = Date.now();
    server.pause();
    expect((await lost) - t0).toBeLessThan(2 * 200 + 100);
    server.resume();
    await back;
  });
});

describe.each(["pipelined", "pooled"] as const)("%s transport: rotating credentials", (transport) => {
  const user = `rot-${transport}`;
  beforeAll(async () => {
    await server.admin(["ACL", "SETUSER", user, "on", ">first-secret", "~*", "&*", "+@all"]);
  });

  it("asks the provider on every dial; a pushed rotation takes effect without losing in-flight commands", async () => {
    let current: Credentials = { username: user, password: "first-secret" };
    let asked = 0;
    let push: ((c: Credentials) => void) | undefined;
    const c = make({
      transport,
      credentials: {
        get: () => {
          asked++;
          return current;
        },
        subscribe: (onChange) => {
          push = onChange;
          return () => (push = undefined);
        },
      },
    });
    expect(await c.command(["ACL", "WHOAMI"])).toBe(user);
    expect(asked).toBeGreaterThanOrEqual(1);
    // Rotate on the server (both passwords valid for a moment), then push.
    await server.admin(["ACL", "SETUSER", user, ">second-secret"]);
    const inFlight = Array.from({ length: 50 }, (_, i) => c.command(["ECHO", `f${i}`]));
    current = { username: user, password: "second-secret" };
    push?.(current);
    await server.admin(["ACL", "SETUSER", user, "<first-secret"]);
    expect(await Promise.all(inFlight)).toEqual(Array.from({ length: 50 }, (_, i) => `f${i}`));
    // A new connection must use the new secret: kill every connection of the user and go on.
    await server.admin(["CLIENT", "KILL", "USER", user]);
    await waitFor(async () => (await c.command(["ACL", "WHOAMI"]).catch(() => undefined)) === user, 5000);
    expect(inspect(c)).not.toContain("second-secret");
    await c.close();
    expect(push).toBeUndefined();
  });

  it("a provider that throws or hangs fails the dial with a typed error, paced by the backoff, and never shows a secret", async () => {
    let calls = 0;
    const failing = make({
      transport,
      lazyConnect: true,
      connectTimeoutMs: 300,
      reconnect: { initialDelayMs: 50, maxDelayMs: 100 },
      credentials: () => {
        calls++;
        throw new Error("vault unreachable");
      },
    });
    const errors: RedisError[] = [];
    failing.on("error", (e) => errors.push(e));
    const err = (await failing.connect({ timeoutMs: 600 }).catch((e: unknown) => e)) as ConnectionError;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect((errors[0] as ConnectionError).reason).toBe("credentials-failed");
    // 600 ms at 50-100 ms backoff: a handful of asks, never a storm.
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(20);

    const hanging = make({ transport, lazyConnect: true, connectTimeoutMs: 200, reconnect: { initialDelayMs: 1000, maxDelayMs: 1000 }, credentials: () => new Promise<Credentials>(() => undefined) });
    const seen: RedisError[] = [];
    hanging.on("error", (e) => seen.push(e));
    const t0 = Date.now();
    void hanging.connect().catch(() => undefined);
    await waitFor(() => seen.length >= 1, 2000);
    expect(Date.now() - t0).toBeLessThan(200 + 300);
    expect((seen[0] as ConnectionError).reason).toBe("credentials-failed");
    expect((seen[0] as ConnectionError).message).toMatch(/did not answer within 200 ms/);
  });
});

describe("connect({ timeoutMs })", () => {
  it.each(["pipelined", "pooled"] as const)("%s: bounds the wait for the first connection; the client keeps trying and connects later", async (transport) => {
    const port = await freePort();
    const c = createClient({ host: "127.0.0.1", port, transport, lazyConnect: true, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    c.on("error", () => undefined);
    clients.push(c);
    const t0 = Date.now();
    const err = (await c.connect({ timeoutMs: 300 }).catch((e: unknown) => e)) as ConnectionError;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.reason).toBe("connect-failed");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(Date.now() - t0).toBeLessThan(1000);
    const late = await startRedis({ port });
    try {
      await c.connect({ timeoutMs: 5000 });
      expect(await c.command(["PING"])).toBe("PONG");
      expect(Number(await info(late, "clients", "connected_clients"))).toBeGreaterThanOrEqual(1);
    } finally {
      c.destroy();
      await late.stop();
    }
  });
});
