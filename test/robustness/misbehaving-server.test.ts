// What a real redis-server never does, from tiny fake servers: a huge bulk
// length (maxReplyBytes), a reply nobody asked for, accept and never answer,
// close in the middle of a reply. Each must end in one clear typed error and,
// where the socket is poisoned, a reconnect after which the client serves.
import { afterEach, describe, expect, it } from "vitest";
import {
  ConnectionError,
  ProtocolError,
  RedisError,
  TimeoutError,
  createClient,
  type Client,
  type ClientOptions,
} from "../../src/index.js";
import {
  closeMidReplyServer,
  goodServer,
  greetingServer,
  hugeBulkServer,
  silentServer,
  startFakeServer,
  unsolicitedReplyServer,
  type Behaviour,
  type FakeServer,
} from "../support/fake-server.js";
import { waitFor } from "../support/wait.js";
import { eventually, rejection, settle, transports, trapEscapes } from "./support.js";

const escaped = trapEscapes();
const fakes: FakeServer[] = [];
const clients: Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(fakes.splice(0).map((f) => f.close()));
  expect(escaped).toEqual([]);
});

async function fake(behaviour: Behaviour | ((index: number) => Behaviour)): Promise<FakeServer> {
  const f = await startFakeServer(behaviour);
  fakes.push(f);
  return f;
}

/** The first connection misbehaves; every later one is a good server. */
function firstThen(bad: Behaviour): (index: number) => Behaviour {
  const good = goodServer();
  return (index) => (index === 0 ? bad : good);
}

describe.each(transports)("misbehaving servers (%s)", (transport) => {
  function client(server: FakeServer, opts: ClientOptions = {}): { c: Client; errors: RedisError[] } {
    const c = createClient({
      port: server.port,
      transport,
      reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
      pool: { max: 1 },
      ...opts,
    });
    const errors: RedisError[] = [];
    c.on("error", (e) => errors.push(e));
    clients.push(c);
    return { c, errors };
  }

  it("maxReplyBytes: a `$1000000000` header fails with a clear ProtocolError, no unbounded buffering, then a reconnect", async () => {
    const f = await fake(firstThen(hugeBulkServer(1_000_000_000)));
    const limit = 1024 * 1024;
    const { c, errors } = client(f, { maxReplyBytes: limit });
    const t0 = Date.now();
    const err = rejection(await settle(c.command(["SET", "k", "v"])));
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).maybeExecuted).toBe(true);
    const cause = (err as ConnectionError).cause;
    expect(cause).toBeInstanceOf(ProtocolError);
    expect((cause as ProtocolError).message).toMatch(/maxReplyBytes/);
    expect(errors.some((e) => e instanceof ProtocolError && /maxReplyBytes/.test(e.message))).toBe(true);
    // The client hung up soon after the limit: the fake could push only the
    // limit plus what socket buffers hold, far from the announced gigabyte.
    const first = f.connections[0];
    if (first === undefined) throw new Error("no connection");
    await first.closed;
    expect(first.bytesWritten).toBeLessThan(limit + 32 * 1024 * 1024);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await eventually(c, ["PING"])).toBe("PONG");
    expect(f.connections.length).toBeGreaterThanOrEqual(2);
  });

  it("a reply nobody asked for is a ProtocolError, then a reconnect", async () => {
    const f = await fake(firstThen(unsolicitedReplyServer("+SURPRISE\r\n")));
    const { c, errors } = client(f);
    expect(await c.command(["SET", "k", "v"])).toBe("OK");
    await waitFor(() => errors.some((e) => e instanceof ProtocolError), 2000);
    // A new connection (pooled: dialed on demand) to a good server, which never saw the SET.
    expect(await eventually(c, ["GET", "k"])).toBe(null);
    expect(f.connections.length).toBeGreaterThanOrEqual(2);
  });

  it("a reply before any command is a ProtocolError, then a reconnect", async () => {
    const good = goodServer();
    const f = await fake((i) => (i === 0 ? greetingServer("+HELLO\r\n") : good));
    const { c, errors } = client(f);
    await c.connect();
    await waitFor(() => errors.some((e) => e instanceof ProtocolError), 2000);
    expect(await eventually(c, ["ECHO", "again"])).toBe("again");
    expect(f.connections.length).toBeGreaterThanOrEqual(2);
  });

  it("accept and never answer: commandTimeoutMs gives a TimeoutError, maybeExecuted (it was written)", async () => {
    const f = await fake(silentServer());
    const { c } = client(f, { commandTimeoutMs: 200 });
    const t0 = Date.now();
    const err = rejection(await settle(c.command(["SET", "k", "v"])));
    const elapsed = Date.now() - t0;
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).timeoutMs).toBe(200);
    expect((err as TimeoutError).command).toBe("SET");
    expect((err as TimeoutError).maybeExecuted).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(1500);
    expect(f.commands.filter((a) => a[0] === "SET")).toHaveLength(1);
  });

  it("a command waiting in line when it times out was never written: maybeExecuted false", async () => {
    const f = await fake(silentServer());
    const { c } = client(f, { commandTimeoutMs: 200, pool: { max: 1 } });
    const [first, second] = await Promise.all([settle(c.command(["SET", "a", "1"])), settle(c.command(["SET", "b", "2"]))]);
    expect((rejection(first) as TimeoutError).maybeExecuted).toBe(true);
    const err = rejection(second);
    expect(err).toBeInstanceOf(TimeoutError);
    // Pooled (one socket, busy): it never left the line. Pipelined: it was written behind the first.
    expect((err as TimeoutError).maybeExecuted).toBe(transport === "pipelined");
    expect(f.commands.filter((a) => a[0] === "SET")).toHaveLength(transport === "pipelined" ? 2 : 1);
  });

  it("close in the middle of a reply: a write rejects with ConnectionError, maybeExecuted", async () => {
    const f = await fake(firstThen(closeMidReplyServer("$10\r\nhello")));
    const { c } = client(f);
    const err = rejection(await settle(c.command(["SET", "k", "v"])));
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).reason).toBe("socket-closed");
    expect((err as ConnectionError).maybeExecuted).toBe(true);
    // The write was not retried behind the caller's back: the good server never saw it.
    expect(await eventually(c, ["GET", "k"])).toBe(null);
    expect(f.commands.filter((a) => a[0] === "SET")).toHaveLength(1);
  });

  it("close in the middle of a reply, twice: a read is retried once, then rejects with maybeExecuted", async () => {
    const good = goodServer();
    const bad = closeMidReplyServer("$10\r\nhel");
    const f = await fake((i) => (i < 2 ? bad : good));
    const { c } = client(f);
    const err = rejection(await settle(c.command(["GET", "k"])));
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).maybeExecuted).toBe(true);
    // Sent on the first connection and once more on the second; never a third time.
    expect(f.commands.filter((a) => a[0] === "GET")).toHaveLength(2);
    expect(await eventually(c, ["PING"])).toBe("PONG");
  });
});
