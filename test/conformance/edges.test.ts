// Edges found in review, over both transports: commands that would change a
// shared socket's state, close() after a timeout, a listener that closes the
// client mid-transition, and error replies that echo arguments.
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ClientClosedError, ReplyError, TimeoutError } from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";
import { TRANSPORTS, clientFactory } from "./support.js";

let server: RedisServer;
const clients = clientFactory(() => server);

beforeAll(async () => {
  server = await startRedis();
});
afterEach(() => {
  server.resume();
  clients.destroyAll();
});
afterAll(async () => {
  await server.stop();
});

describe.each(TRANSPORTS)("%s transport", (transport) => {
  it("refuses commands that would change a shared socket's state, and another caller is unaffected", async () => {
    const c = clients.make(transport);
    await c.command(["SET", "edge:k", "db0"]);
    for (const cmd of [["SELECT", "3"], ["MULTI"], ["WATCH", "edge:k"], ["SUBSCRIBE", "ch"], ["QUIT"]]) {
      const err = await c.command(cmd).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TypeError);
      expect((err as TypeError).message).toContain(`${cmd[0]} changes the state of its connection`);
    }
    expect(await c.command(["GET", "edge:k"])).toBe("db0");
    // The supported ways still work.
    expect(await c.batch([["INCR", `edge:n:${transport}`], ["INCR", `edge:n:${transport}`]], { atomic: true })).toEqual([1, 2]);
  });

  it("close() resolves after a command timed out on a server that never answers", async () => {
    const c = clients.make(transport, { commandTimeoutMs: 100 });
    await c.command(["PING"]);
    server.pause();
    const err = await c.command(["GET", "edge:k"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).maybeExecuted).toBe(true);
    await c.close();
    expect(c.status).toBe("closed");
  });

  it("a 'disconnect' listener that destroys the client leaves it closed: no reconnect", async () => {
    const c = clients.make(transport, { clientName: `edge-${transport}` });
    await c.command(["PING"]);
    let reconnects = 0;
    c.on("reconnecting", () => reconnects++);
    c.on("ready", () => reconnects++);
    const gone = new Promise<void>((resolve) =>
      c.once("disconnect", () => {
        c.destroy();
        resolve();
      }),
    );
    await server.admin(["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"]);
    await gone;
    expect(c.status).toBe("closed");
    await expect(c.command(["PING"])).rejects.toBeInstanceOf(ClientClosedError);
    // Nothing of ours may come back: poll CLIENT LIST for a while.
    const deadline = Date.now() + 300;
    await waitFor(async () => {
      expect(String(await server.admin(["CLIENT", "LIST"]))).not.toContain(`name=edge-${transport}`);
      return Date.now() > deadline;
    }, 2000);
    expect(reconnects).toBe(0);
  });

  it("an 'error' listener that calls close() on a failed dial: close() resolves, commands settle, no further dial", async () => {
    let dials = 0;
    const srv = net.createServer((s) => {
      dials++;
      s.destroy();
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    try {
      const port = (srv.address() as net.AddressInfo).port;
      // A password: AUTH meets the close, so the dial fails in its handshake.
      const c = clients.make(transport, { port, password: "pw", lazyConnect: true, reconnect: { initialDelayMs: 5, maxDelayMs: 5 } });
      let closing: Promise<void> | undefined;
      c.once("error", () => {
        closing = c.close();
      });
      const err = await c.command(["GET", "edge:k"]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClientClosedError);
      expect((err as ClientClosedError).maybeExecuted).toBe(false);
      await closing;
      expect(c.status).toBe("closed");
      const before = dials;
      await new Promise((r) => setTimeout(r, 200)); // a window to count dials in, not a synchronisation
      expect(dials).toBe(before);
      expect(before).toBe(1);
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });

  it("error replies never echo the command's arguments", async () => {
    const c = clients.make(transport);
    const err = await c.command(["NOSUCHCMD", "user", "hunter2-secret"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplyError);
    expect((err as ReplyError).message).toBe("ERR unknown command 'NOSUCHCMD'");
    expect((err as ReplyError).code).toBe("ERR");
  });
});
