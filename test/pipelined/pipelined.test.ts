// Behaviour specific to the pipelined transport (issue 3). What both
// transports share is in test/conformance.
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ClientClosedError, ConnectionError, QueueFullError, TimeoutError, createClient, type Client } from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";

let server: RedisServer;
const clients: Client[] = [];

function client(opts: Parameters<typeof createClient>[0] & object = {}): Client {
  const c = createClient({ url: server.url, transport: "pipelined", ...opts });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  server = await startRedis();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});
afterAll(async () => {
  await server.stop();
});

describe("pipelined transport", () => {
  it("gives each of 10,000 concurrent commands its own reply", async () => {
    const c = client();
    const n = 10_000;
    await Promise.all(Array.from({ length: n }, (_, i) => c.command(["SET", `u:${i}`, `value-${i}`])));
    const got = await Promise.all(Array.from({ length: n }, (_, i) => c.command(["GET", `u:${i}`])));
    expect(got).toEqual(Array.from({ length: n }, (_, i) => `value-${i}`));
  });

  it("coalesces the commands of one tick into one socket write", async () => {
    const c = client();
    await c.connect();
    const original = net.Socket.prototype.write;
    let writes = 0;
    net.Socket.prototype.write = function (this: net.Socket, ...args: Parameters<net.Socket["write"]>) {
      writes++;
      return original.apply(this, args);
    } as net.Socket["write"];
    try {
      const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => c.command(["ECHO", `m${i}`])));
      expect(replies).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));
    } finally {
      net.Socket.prototype.write = original;
    }
    expect(writes).toBe(1);
  });

  it("retries an in-flight read once after CLIENT KILL and fails an in-flight write as maybeExecuted", async () => {
    const c = client();
    const id = await c.command(["CLIENT", "ID"]);
    // The kill travels in the same write as the two commands after it: Redis
    // answers it and closes the socket before reading further, so both are
    // surely written and unanswered when the socket dies.
    const kill = c.command(["CLIENT", "KILL", "ID", String(id), "SKIPME", "no"]);
    const write = c.command(["INCR", "kill:counter"]);
    const read = c.command(["GET", "kill:key"]);
    expect(await kill).toBe(1);
    const [w, r] = await Promise.allSettled([write, read]);
    expect(w.status).toBe("rejected");
    const err = (w as PromiseRejectedResult).reason as ConnectionError;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.maybeExecuted).toBe(true);
    expect(r).toEqual({ status: "fulfilled", value: null });
    expect(await c.command(["SET", "kill:after", "1"])).toBe("OK");
    // The write was not retried behind the caller's back.
    expect(await c.command(["GET", "kill:counter"])).toBe(null);
  });

  it("bounds the offline queue and fails fast without one", async () => {
    const port = await unusedPort();
    const queued = client({ port, host: "127.0.0.1", url: undefined, offlineQueue: { maxLength: 2 }, reconnect: { initialDelayMs: 1000, maxDelayMs: 1000 } });
    const a = queued.command(["GET", "a"]);
    const b = queued.command(["GET", "b"]);
    await expect(queued.command(["GET", "c"])).rejects.toBeInstanceOf(QueueFullError);
    queued.destroy();
    await expect(a).rejects.toBeInstanceOf(ClientClosedError);
    await expect(b).rejects.toBeInstanceOf(ClientClosedError);

    const failFast = client({ port, host: "127.0.0.1", url: undefined, offlineQueue: false });
    const err = await failFast.command(["GET", "a"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).reason).toBe("offline");
    expect((err as ConnectionError).maybeExecuted).toBe(false);
  });

  it("backs off with growing, capped delays while the server is down, and close() stops all dialing", async () => {
    const port = await unusedPort();
    /** When each dial was accepted. */
    const dialTimes: number[] = [];
    let dials = 0;
    // A listener that accepts and closes at once: every dial is counted, none succeeds.
    const fake = net.createServer((s) => {
      dials++;
      dialTimes.push(Date.now());
      s.destroy();
    });
    await new Promise<void>((resolve) => fake.listen(port, "127.0.0.1", resolve));
    try {
      const c = client({ port, host: "127.0.0.1", url: undefined, reconnect: { initialDelayMs: 10, maxDelayMs: 80 }, clientName: "x" });
      const capOf = (attempt: number): number => Math.min(10 * 2 ** (attempt - 1), 80);
      // Collected in the listener, checked below (a throw inside a listener is not a test failure).
      const seen: { attempt: number; delayMs: number; at: number }[] = [];
      c.on("reconnecting", ({ attempt, delayMs }) => seen.push({ attempt, delayMs, at: Date.now() }));
      const pending = c.command(["GET", "k"]);
      // 12 attempts: caps 10+20+40+9*80 = 790 ms at most, plus the dials.
      const N = 12;
      let atN = { events: 0, dials: 0 };
      await waitFor(() => {
        if (seen.length < N) return false;
        atN = { events: seen.length, dials };
        return true;
      }, 5000);
      const events = seen.slice(0, N);
      const caps = events.map((e) => capOf(e.attempt));
      expect(caps.slice(0, 7)).toEqual([10, 20, 40, 80, 80, 80, 80]);
      // Attempts count up one by one: the caps grow, then stay at the max.
      expect(events.map((e) => e.attempt)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      for (const e of events) {
        expect(Number.isInteger(e.delayMs), `delay ${e.delayMs}`).toBe(true);
        expect(e.delayMs).toBeGreaterThanOrEqual(0);
        expect(e.delayMs, `delay of attempt ${e.attempt}`).toBeLessThanOrEqual(capOf(e.attempt));
      }
      // Every event is a failed dial: it does redial, once per attempt (one more may be under way).
      expect(atN.dials).toBeGreaterThanOrEqual(atN.events);
      expect(atN.dials).toBeLessThanOrEqual(atN.events + 1);
      // Dial i+1 comes no sooner than the delay reported after dial i failed
      // (2 ms: timer and clock granularity): the client waits what it reports.
      for (let i = 0; i + 1 < N; i++) {
        const e = events[i] as { delayMs: number; at: number };
        expect((dialTimes[i + 1] as number) - e.at, `wait before dial ${i + 2}`).toBeGreaterThanOrEqual(e.delayMs - 2);
      }
      // Full jitter averages half the cap: the delays together are not (nearly) all 0.
      // Under 5% of the caps' sum (39.5 of 790 ms) has a probability below 1e-8.
      const total = events.reduce((sum, e) => sum + e.delayMs, 0);
      const capSum = caps.reduce((a, b) => a + b, 0);
      expect(total, `sum of ${N} delays (caps sum to ${capSum} ms)`).toBeGreaterThanOrEqual(0.05 * capSum);
      const closing = c.close();
      await expect(pending).rejects.toBeInstanceOf(ClientClosedError);
      await closing;
      expect(c.status).toBe("closed");
      const dialsAtClose = dials;
      // No timer may dial after close: wait well past the longest backoff.
      await new Promise((r) => setTimeout(r, 200));
      expect(dials).toBe(dialsAtClose);
      await expect(c.command(["GET", "k"])).rejects.toBeInstanceOf(ClientClosedError);
    } finally {
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });

  it("recovers after SIGKILL and restart on the same port", async () => {
    const c = client({ reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    expect(await c.command(["SET", "r", "1"])).toBe("OK");
    const disconnected = new Promise((resolve) => c.once("disconnect", resolve));
    await server.kill();
    await disconnected;
    const during = c.command(["GET", "r"]); // queued offline
    await server.restart();
    // The server restarted empty (no persistence): the queued read sees nil.
    expect(await during).toBe(null);
    expect(await c.command(["SET", "r", "2"])).toBe("OK");
    expect(await c.command(["GET", "r"])).toBe("2");
  });

  it("close() while the first dial is under way still sends what was accepted", async () => {
    const c = client();
    expect(c.status).toBe("connecting");
    const set = c.command(["SET", "closing:k", "v"]);
    const closed = c.close();
    await expect(c.command(["GET", "closing:k"])).rejects.toBeInstanceOf(ClientClosedError);
    expect(await set).toBe("OK");
    await closed;
    expect(c.status).toBe("closed");
    expect(await server.admin(["GET", "closing:k"])).toBe("v");
  });

  it("rejects beyond maxPending while connected", async () => {
    const c = client({ maxPending: 5 });
    await c.connect();
    const ok = Array.from({ length: 5 }, (_, i) => c.command(["ECHO", String(i)]));
    await expect(c.command(["ECHO", "x"])).rejects.toBeInstanceOf(QueueFullError);
    expect(await Promise.all(ok)).toEqual(["0", "1", "2", "3", "4"]);
  });
});

function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe("pipelined offline queue", () => {
  it("does not count commands that timed out while queued", async () => {
    const port = await unusedPort();
    const c = client({ port, host: "127.0.0.1", url: undefined, offlineQueue: { maxLength: 2 }, reconnect: { initialDelayMs: 1000, maxDelayMs: 1000 } });
    const early = [c.command(["GET", "a"], { timeoutMs: 20 }), c.command(["GET", "b"], { timeoutMs: 20 })];
    for (const p of early) await expect(p).rejects.toBeInstanceOf(TimeoutError);
    // Both slots are free again: two more fit, the third does not.
    const later = [c.command(["GET", "c"]), c.command(["GET", "d"])];
    await expect(c.command(["GET", "e"])).rejects.toBeInstanceOf(QueueFullError);
    c.destroy();
    for (const p of later) await expect(p).rejects.toBeInstanceOf(ClientClosedError);
  });
});

describe("pipelined: a read re-queued for its retry", () => {
  it("is told maybeExecuted when the client ends before the retry is sent (reconnect exhausted)", async () => {
    // Answers the handshake's PING, kills the connection on GET and stops listening: the retry's redial fails.
    const srv = net.createServer((s) => {
      s.on("error", () => undefined);
      s.on("data", (chunk: Buffer) => {
        if (chunk.toString("latin1").includes("GET")) {
          s.destroy();
          srv.close();
        } else {
          s.write("+PONG\r\n");
        }
      });
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    const port = (srv.address() as net.AddressInfo).port;
    const c = client({ url: undefined, host: "127.0.0.1", port, reconnect: { initialDelayMs: 5, maxDelayMs: 5, maxAttempts: 1 } });
    c.on("error", () => undefined);
    const err = await c.command(["GET", "retry:k"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).reason).toBe("reconnect-exhausted");
    expect((err as ConnectionError).maybeExecuted).toBe(true);
    expect(c.status).toBe("closed");
  });
});
