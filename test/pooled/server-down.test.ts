// The pooled transport with its server down: as on the pipelined transport,
// accepted commands wait for the reconnect (bounded by offlineQueue.maxLength
// and their own deadline, never by acquireTimeoutMs), dials follow the
// reconnect backoff (one probe per delay, however many callers wait), and it
// recovers when the server is back.
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ClientClosedError, ConnectionError, QueueFullError, TimeoutError, type RedisError } from "../../src/index.js";
import { freePort, startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";
import { clientFactory } from "../conformance/support.js";

let server: RedisServer;
const clients = clientFactory(() => server);
const make = (options?: Parameters<typeof clients.make>[1]) => clients.make("pooled", options);

beforeAll(async () => {
  server = await startRedis();
});
afterEach(() => clients.destroyAll());
afterAll(async () => {
  await server.stop();
});

/** A listener that accepts and closes at once, recording when each dial came. */
async function acceptAndClose(): Promise<{ port: number; dials: number[]; close(): Promise<void> }> {
  const dials: number[] = [];
  const srv = net.createServer((s) => {
    dials.push(Date.now());
    s.destroy();
  });
  const port = await freePort();
  await new Promise<void>((resolve) => srv.listen(port, "127.0.0.1", resolve));
  return { port, dials, close: () => new Promise<void>((resolve) => srv.close(() => resolve())) };
}

describe("pooled transport: server down", () => {
  it("keeps callers waiting for the reconnect and paces dials by the backoff, one probe per delay", async () => {
    const fake = await acceptAndClose();
    try {
      // A password makes the handshake notice the close (with none, a socket counts as open at once).
      const c = make({
        port: fake.port,
        password: "pw",
        lazyConnect: true,
        reconnect: { initialDelayMs: 40, maxDelayMs: 160 },
        // acquireTimeoutMs bounds the wait for a busy pool, not for a server that is down.
        pool: { max: 8, acquireTimeoutMs: 100 },
      });
      const delays: { attempt: number; delayMs: number; at: number }[] = [];
      c.on("reconnecting", ({ attempt, delayMs }) => delays.push({ attempt, delayMs, at: Date.now() }));
      c.on("error", () => undefined);
      const started = Date.now();
      // Eight concurrent callers wait 1.2 s (their own deadline) through failed dials: a tight loop would dial thousands of times.
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => c.command(["GET", "k"], { timeoutMs: 1200 })));
      const took = Date.now() - started;
      for (const r of results) {
        expect(r.status).toBe("rejected");
        const err = (r as PromiseRejectedResult).reason as TimeoutError;
        expect(err).toBeInstanceOf(TimeoutError);
        expect(err.maybeExecuted).toBe(false);
      }
      expect(took).toBeGreaterThanOrEqual(1190);
      expect(took).toBeLessThan(1200 + 500);
      const dials = fake.dials.length;
      // One dial per backoff delay: the first at once, then one per delay (40, 80, 160, 160, ...).
      expect(dials).toBeGreaterThanOrEqual(3);
      expect(dials).toBeLessThanOrEqual(40);
      expect(delays.map((d) => d.attempt)).toEqual(Array.from({ length: delays.length }, (_, i) => i + 1));
      for (const d of delays) expect(d.delayMs).toBeLessThanOrEqual(Math.min(40 * 2 ** (d.attempt - 1), 160));
      // Dial n+1 comes no sooner than the delay announced after dial n failed.
      for (let i = 1; i < fake.dials.length && i <= delays.length; i++) {
        const gap = (fake.dials[i] as number) - (fake.dials[i - 1] as number);
        expect(gap).toBeGreaterThanOrEqual((delays[i - 1] as { delayMs: number }).delayMs - 2);
      }
      expect(c.status).toBe("reconnecting");
      await c.close();
      expect(c.status).toBe("closed");
    } finally {
      await fake.close();
    }
  });

  it("with no handshake, a connection the server drops before answering counts as a failed dial", async () => {
    const fake = await acceptAndClose();
    try {
      const c = make({ port: fake.port, lazyConnect: true, reconnect: { initialDelayMs: 40, maxDelayMs: 160 } });
      const attempts: number[] = [];
      c.on("reconnecting", ({ attempt }) => attempts.push(attempt));
      c.on("error", () => undefined);
      const started = Date.now();
      const results = await Promise.allSettled(Array.from({ length: 4 }, () => c.command(["GET", "k"], { timeoutMs: 1000 })));
      for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(990);
      // TCP connects succeed here, yet the backoff grows: nothing ever answered.
      expect(fake.dials.length).toBeGreaterThanOrEqual(3);
      expect(fake.dials.length).toBeLessThanOrEqual(35);
      expect(attempts.slice(0, 3)).toEqual([1, 2, 3]);
    } finally {
      await fake.close();
    }
  });

  it("fails fast without an offline queue, and bounds the one it has", async () => {
    const fake = await acceptAndClose();
    try {
      const base = { port: fake.port, password: "pw", lazyConnect: true, reconnect: { initialDelayMs: 10_000, maxDelayMs: 10_000 } };
      const noQueue = make({ ...base, offlineQueue: false });
      noQueue.on("error", () => undefined);
      // Not connected (nothing proven yet, as after a failed dial): fail at once, as the pipelined transport does.
      for (let i = 0; i < 2; i++) {
        const err = await noQueue.command(["GET", "a"]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ConnectionError);
        expect((err as ConnectionError).reason).toBe("offline");
        expect((err as ConnectionError).maybeExecuted).toBe(false);
      }

      const small = make({ ...base, offlineQueue: { maxLength: 2 } });
      small.on("error", () => undefined);
      const failed = new Promise((resolve) => small.once("error", resolve));
      const waiting = [small.command(["GET", "b"]), small.command(["GET", "c"])];
      await failed; // the first dial failed; the two keep waiting for the next one (10 s away)
      await expect(small.command(["GET", "d"])).rejects.toBeInstanceOf(QueueFullError);
      // close() while the server is down does not wait for the next dial.
      await small.close();
      for (const w of await Promise.allSettled(waiting)) {
        expect((w as PromiseRejectedResult).reason).toBeInstanceOf(ClientClosedError);
      }
      expect(small.status).toBe("closed");
    } finally {
      await fake.close();
    }
  });

  it("keeps a command issued while a real server is killed until it restarts", async () => {
    const c = make({ clientName: "down-up", reconnect: { initialDelayMs: 20, maxDelayMs: 100 }, pool: { min: 1, acquireTimeoutMs: 5000 } });
    c.on("error", () => undefined);
    await c.connect();
    expect(await c.command(["SET", "du:k", "1"])).toBe("OK");
    const lost = new Promise((resolve) => c.once("disconnect", resolve));
    await server.kill();
    await lost;
    await waitFor(() => c.status === "reconnecting");
    const pending = c.command(["GET", "du:k"]);
    const ready = new Promise<void>((resolve) => c.once("ready", () => resolve()));
    await server.restart();
    // The transport redials by itself and says so; the command waited (the server restarted empty).
    await ready;
    expect(await pending).toBe(null);
    expect(c.status).toBe("ready");
    expect(await c.command(["SET", "du:k", "2"])).toBe("OK");
    expect(await c.command(["GET", "du:k"])).toBe("2");
  });

  it("reconnect: false ends the transport at the first failed dial", async () => {
    const port = await freePort();
    const c = make({ port, reconnect: false, lazyConnect: true });
    c.on("error", () => undefined);
    const closed = new Promise<void>((resolve) => c.once("close", resolve));
    const err = await c.command(["PING"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).reason).toBe("reconnect-exhausted");
    await closed;
    expect(c.status).toBe("closed");
  });
});

/** A listener that answers the handshake's PING, then closes the connection on the first other command. */
async function dropsOnCommand(): Promise<{ port: number; dials: number[]; close(): Promise<void> }> {
  const dials: number[] = [];
  const srv = net.createServer((s) => {
    dials.push(Date.now());
    s.on("error", () => undefined);
    s.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      // A RESP2-only listener: HELLO is unknown (the client falls back), PING answered, any other command drops it.
      if (text.includes("HELLO")) s.write("-ERR unknown command 'HELLO'\r\n");
      else if (text.includes("PING") && !text.includes("GET")) s.write("+PONG\r\n");
      else s.destroy();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => srv.listen(port, "127.0.0.1", resolve));
  return { port, dials, close: () => new Promise<void>((resolve) => srv.close(() => resolve())) };
}

const EVENTS = ["ready", "disconnect", "reconnecting", "error", "close"] as const;

/** Every event the client emits, in order. */
function eventLog(c: ReturnType<typeof make>): string[] {
  const log: string[] = [];
  for (const e of EVENTS) c.on(e, () => log.push(e));
  return log;
}

describe("pooled transport: listeners that end the client mid-transition", () => {
  for (const action of ["destroy", "close"] as const) {
    it(`an 'error' listener that calls ${action}() on the first failed dial: closed, no further dial, no event after 'close'`, async () => {
      const fake = await acceptAndClose();
      try {
        // A password: AUTH meets the close, so the dial fails in its handshake.
        const c = make({ port: fake.port, password: "pw", lazyConnect: true, reconnect: { initialDelayMs: 5, maxDelayMs: 5 }, pool: { min: 2, max: 4 } });
        const log = eventLog(c);
        const closed = new Promise<void>((resolve) => c.once("close", resolve));
        c.once("error", () => {
          if (action === "destroy") c.destroy();
          else void c.close();
        });
        const results = await Promise.allSettled([c.command(["GET", "a"]), c.command(["GET", "b"])]);
        await closed;
        for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ClientClosedError);
        expect(c.status).toBe("closed");
        const dials = fake.dials.length;
        await new Promise((r) => setTimeout(r, 200)); // a window to count dials in, not a synchronisation
        expect(fake.dials.length).toBe(dials);
        expect(dials).toBe(1);
        expect(log).toEqual(["error", "close"]);
      } finally {
        await fake.close();
      }
    });

    it(`a 'disconnect' listener that calls ${action}() when the server drops a socket: closed, no further dial`, async () => {
      const fake = await dropsOnCommand();
      try {
        const c = make({ port: fake.port, lazyConnect: true, reconnect: { initialDelayMs: 5, maxDelayMs: 5 }, pool: { max: 1 } });
        const log = eventLog(c);
        const closed = new Promise<void>((resolve) => c.once("close", resolve));
        c.once("disconnect", () => {
          if (action === "destroy") c.destroy();
          else void c.close();
        });
        // One socket: GET a is written and lost, GET b waits in line for the socket.
        const first = c.command(["GET", "a"]);
        const second = c.command(["GET", "b"]);
        const [a, b] = await Promise.allSettled([first, second]);
        await closed;
        // A read put back in line for its one retry, then ended by the listener: it may have run either way.
        const lost = (a as PromiseRejectedResult).reason as RedisError;
        expect(lost instanceof ConnectionError || lost instanceof ClientClosedError).toBe(true);
        expect(lost.maybeExecuted).toBe(true);
        expect((b as PromiseRejectedResult).reason).toBeInstanceOf(ClientClosedError);
        expect(((b as PromiseRejectedResult).reason as ClientClosedError).maybeExecuted).toBe(false);
        expect(c.status).toBe("closed");
        const dials = fake.dials.length;
        await new Promise((r) => setTimeout(r, 200)); // a window to count dials in, not a synchronisation
        expect(fake.dials.length).toBe(dials);
        expect(dials).toBe(1);
        expect(log).toEqual(["ready", "disconnect", "close"]);
      } finally {
        await fake.close();
      }
    });
  }
});
