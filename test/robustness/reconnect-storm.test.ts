// A server that accepts TCP connections and drops them at once (a TCP proxy or
// load balancer whose backend is down, a server at maxclients, one still
// starting) must see dials paced by the reconnect backoff, not a storm: a
// connection that never answered anything proves nothing about the server.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createClient, type Client, type ClientOptions } from "../../src/index.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { freePort } from "../support/redis-server.js";
import { dialBound, transports, trapEscapes } from "./support.js";

const escaped = trapEscapes();
const clients: Client[] = [];
const proxies: FaultProxy[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  expect(escaped).toEqual([]);
});

const RECONNECT = { initialDelayMs: 50, maxDelayMs: 400 };
const WINDOW_MS = 1500;

describe.each(transports)("reconnect storm (%s)", (transport) => {
  /** Callers keep sending (as an application does through an outage) for the window; returns the dials seen. */
  async function underLoad(port: number, opts: ClientOptions, dialsSoFar: () => number): Promise<number> {
    const c = createClient({ port, transport, reconnect: RECONNECT, commandTimeoutMs: 200, ...opts });
    c.on("error", () => undefined);
    clients.push(c);
    const end = Date.now() + WINDOW_MS;
    const callers = Array.from({ length: 4 }, async () => {
      while (Date.now() < end) {
        const t0 = Date.now();
        await c.command(["GET", "k"]).catch(() => undefined);
        if (Date.now() - t0 < 10) await new Promise((r) => setTimeout(r, 10));
      }
    });
    await Promise.all(callers);
    const dials = dialsSoFar();
    c.destroy();
    return dials;
  }

  async function countDials(opts: ClientOptions): Promise<number> {
    // The fault proxy in front of a port nobody listens on: it accepts, its
    // upstream dial is refused, it resets the client.
    const proxy = await startFaultProxy({ target: { port: await freePort() } });
    proxies.push(proxy);
    return underLoad(proxy.port, opts, () => proxy.stats.accepted);
  }

  it("with a handshake (clientName): dials follow the backoff", async () => {
    expect(await countDials({ clientName: "storm" })).toBeLessThanOrEqual(dialBound(WINDOW_MS, RECONNECT));
  });

  it("with no handshake command (default options): dials follow the backoff", async () => {
    expect(await countDials({})).toBeLessThanOrEqual(dialBound(WINDOW_MS, RECONNECT));
  });

  it("a plain listener that accepts and closes: dials follow the backoff", async () => {
    let dials = 0;
    const srv = net.createServer((s) => {
      dials++;
      s.destroy();
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    try {
      expect(await underLoad((srv.address() as net.AddressInfo).port, {}, () => dials)).toBeLessThanOrEqual(dialBound(WINDOW_MS, RECONNECT));
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });
});
