// The fault proxy itself (test/support/fault-proxy.ts): each fault does what
// it says on raw sockets, before the chaos suite relies on it.
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from "../support/fault-proxy.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";

let server: RedisServer;
const proxies: FaultProxy[] = [];
const sockets: net.Socket[] = [];

beforeAll(async () => {
  server = await startRedis();
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await server.stop();
});

async function proxy(opts: Partial<FaultProxyOptions> = {}): Promise<FaultProxy> {
  const p = await startFaultProxy({ target: { port: server.port }, ...opts });
  proxies.push(p);
  return p;
}

/** A raw client socket that records what it receives. */
interface Raw {
  socket: net.Socket;
  received: () => Buffer;
  chunks: Buffer[];
  closed: Promise<{ error: NodeJS.ErrnoException | undefined }>;
  isClosed: () => boolean;
}

function connect(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    sockets.push(socket);
    const chunks: Buffer[] = [];
    let error: NodeJS.ErrnoException | undefined;
    let closedFlag = false;
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", (e) => (error = e));
    const closed = new Promise<{ error: NodeJS.ErrnoException | undefined }>((res) =>
      socket.on("close", () => {
        closedFlag = true;
        res({ error });
      }),
    );
    socket.once("connect", () => resolve({ socket, chunks, received: () => Buffer.concat(chunks), closed, isClosed: () => closedFlag }));
    socket.once("error", reject);
  });
}

const PING = "*1\r\n$4\r\nPING\r\n";

async function receive(raw: Raw, text: string, timeoutMs = 2000): Promise<void> {
  await waitFor(() => raw.received().toString().includes(text), timeoutMs, 2);
}

describe("fault proxy", () => {
  it("passes bytes both ways and counts connections", async () => {
    const p = await proxy();
    const raw = await connect(p.port);
    raw.socket.write(PING);
    await receive(raw, "+PONG\r\n");
    expect(p.stats).toMatchObject({ accepted: 1, admitted: 1, refused: 0, live: 1 });
    expect(p.connections[0]?.bytesUp).toBe(PING.length);
    raw.socket.end();
    await raw.closed;
    await waitFor(() => p.stats.live === 0);
  });

  it("delays each chunk by N ms", async () => {
    const p = await proxy();
    p.setFault({ type: "delay", ms: 150 });
    const raw = await connect(p.port);
    const t0 = Date.now();
    raw.socket.write(PING);
    await receive(raw, "+PONG\r\n");
    // 150 ms up and 150 ms down.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it("splits server-to-client bytes into 1-byte chunks", async () => {
    const p = await proxy();
    p.setFault({ type: "split" });
    const raw = await connect(p.port);
    raw.socket.write("*2\r\n$4\r\nECHO\r\n$20\r\nabcdefghijklmnopqrst\r\n");
    await receive(raw, "abcdefghijklmnopqrst\r\n");
    expect(raw.received().toString()).toBe("$20\r\nabcdefghijklmnopqrst\r\n");
    // One byte per write; a busy reader may catch a few in one read.
    expect(raw.chunks.length).toBeGreaterThanOrEqual(10);
  });

  it("blackholes: nothing forwarded, no close, and the bytes flow again once healed", async () => {
    const p = await proxy();
    const raw = await connect(p.port);
    raw.socket.write(PING);
    await receive(raw, "+PONG\r\n");
    p.setFault({ type: "blackhole" });
    raw.socket.write("*2\r\n$4\r\nECHO\r\n$5\r\nlater\r\n");
    await new Promise((r) => setTimeout(r, 300));
    expect(raw.received().toString()).toBe("+PONG\r\n");
    expect(raw.isClosed()).toBe(false);
    p.setFault({ type: "pass" });
    await receive(raw, "$5\r\nlater\r\n");
  });

  it("blackholes new connections too while the fault is set for all", async () => {
    const p = await proxy();
    p.setFault({ type: "blackhole" });
    const raw = await connect(p.port);
    raw.socket.write(PING);
    await new Promise((r) => setTimeout(r, 200));
    expect(raw.received().length).toBe(0);
    p.setFault({ type: "pass" });
    await receive(raw, "+PONG\r\n");
  });

  it("cuts after exactly N bytes in one direction and closes both sides", async () => {
    const p = await proxy();
    const raw = await connect(p.port);
    raw.socket.write(PING);
    await receive(raw, "+PONG\r\n");
    p.setFault({ type: "cut", afterBytes: 4, direction: "down" });
    raw.socket.write("*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n");
    const { error } = await raw.closed;
    expect(error).toBeUndefined(); // a FIN, not a reset
    expect(raw.received().toString()).toBe("+PONG\r\n$5\r\n");
    await waitFor(() => p.stats.live === 0);
  });

  it("cuts client-to-server bytes: the server gets a prefix only", async () => {
    const p = await proxy();
    const raw = await connect(p.port);
    p.connections[0]?.setFault({ type: "cut", afterBytes: 10, direction: "up" });
    raw.socket.write("*3\r\n$3\r\nSET\r\n$8\r\ncut:key1\r\n$1\r\nv\r\n");
    await raw.closed;
    expect(await server.admin(["EXISTS", "cut:key1"])).toBe(0);
  });

  it("resets both sides now (RST)", async () => {
    const p = await proxy();
    const raw = await connect(p.port);
    raw.socket.write(PING);
    await receive(raw, "+PONG\r\n");
    p.resetAll();
    const { error } = await raw.closed;
    expect(error?.code).toBe("ECONNRESET");
  });

  it("applies a fault to one connection only", async () => {
    const p = await proxy();
    const a = await connect(p.port);
    const b = await connect(p.port);
    await waitFor(() => p.connections.length === 2);
    p.connections[0]?.setFault({ type: "blackhole" });
    a.socket.write(PING);
    b.socket.write(PING);
    await receive(b, "+PONG\r\n");
    await new Promise((r) => setTimeout(r, 100));
    expect(a.received().length).toBe(0);
  });

  it("refuses connections over the cap", async () => {
    const p = await proxy({ maxConnections: 2, overflow: "refuse", acceptors: 2 });
    const a = await connect(p.port);
    const b = await connect(p.port);
    await waitFor(() => p.stats.live === 2);
    const c = await connect(p.port);
    await c.closed;
    expect(p.stats).toMatchObject({ accepted: 3, admitted: 2, refused: 1, live: 2 });
    a.socket.write(PING);
    await receive(a, "+PONG\r\n");
    b.socket.destroy();
    await waitFor(() => p.stats.live === 1);
    const d = await connect(p.port);
    d.socket.write(PING);
    await receive(d, "+PONG\r\n");
  });

  it("queues connections over the cap until a slot frees", async () => {
    const p = await proxy({ maxConnections: 1, overflow: "queue", acceptors: 1 });
    const a = await connect(p.port);
    await waitFor(() => p.stats.live === 1);
    const b = await connect(p.port);
    b.socket.write(PING); // held: b is accepted but parked, not read
    await waitFor(() => p.stats.queued === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(b.received().length).toBe(0);
    a.socket.destroy();
    await receive(b, "+PONG\r\n");
    expect(p.stats).toMatchObject({ accepted: 2, admitted: 2, refused: 0, queued: 0, live: 1 });
  });

  it("resets the client when the upstream dial fails", async () => {
    const dead = await startFaultProxy({ target: { port: 1 } });
    proxies.push(dead);
    const raw = await connect(dead.port);
    const { error } = await raw.closed;
    expect(error?.code).toBe("ECONNRESET");
    expect(dead.stats.upstreamFailures).toBe(1);
  });

  it("close() ends every connection, parked ones too", async () => {
    const p = await startFaultProxy({ target: { port: server.port }, maxConnections: 1, overflow: "queue" });
    const a = await connect(p.port);
    const b = await connect(p.port);
    await waitFor(() => p.stats.queued === 1);
    await p.close();
    await Promise.all([a.closed, b.closed]);
  });
});
