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
/**
 * Fewest dials a client that does redial makes in the window: with every
 * delay at its cap (50, 100, 200, 400 ms) the 5th dial is due at 750 ms,
 * leaving 750 ms for five dials' own time on a loaded machine. One that never
 * redials makes 1.
 */
const MIN_DIALS = 4;

/** The backoff cap of reconnect attempt n (full jitter: the delay is random(0, cap)). */
const capOf = (attempt: number): number => Math.min(RECONNECT.maxDelayMs, RECONNECT.initialDelayMs * 2 ** (attempt - 1));

interface Reconnecting {
  attempt: number;
  delayMs: number;
  /** Date.now() when the event came. */
  at: number;
}

interface Observed {
  dials: number;
  events: Reconnecting[];
}

/**
 * Dials bounded from both sides (it does redial; no storm), and the
 * `reconnecting` events (collected in the listener, checked here): attempts
 * 1, 2, 3, ... each delay an integer within [0, its attempt's cap], the
 * client really waits each delay before the next attempt, and the delays are
 * not all (nearly) zero.
 */
function expectPacedDials({ dials, events }: Observed): void {
  expect(dials, "dials in the window: it redials").toBeGreaterThanOrEqual(MIN_DIALS);
  expect(dials, "dials in the window: no storm").toBeLessThanOrEqual(dialBound(WINDOW_MS, RECONNECT));
  // Each event reports a failed dial: as many as the dials, the one under way at the end aside.
  expect(events.length).toBeGreaterThanOrEqual(MIN_DIALS - 1);
  expect(events.length).toBeLessThanOrEqual(dials);
  expect(events.map((e) => e.attempt)).toEqual(events.map((_, i) => i + 1));
  for (const e of events) {
    expect(Number.isInteger(e.delayMs), `delay ${e.delayMs} of attempt ${e.attempt}`).toBe(true);
    expect(e.delayMs).toBeGreaterThanOrEqual(0);
    expect(e.delayMs, `delay of attempt ${e.attempt}`).toBeLessThanOrEqual(capOf(e.attempt));
  }
  // The next attempt fails no sooner than the delay after this one (2 ms: timer and clock granularity).
  for (let i = 1; i < events.length; i++) {
    const prev = events[i - 1] as Reconnecting;
    expect((events[i] as Reconnecting).at - prev.at, `time from attempt ${prev.attempt} to the next`).toBeGreaterThanOrEqual(prev.delayMs - 2);
  }
  // Full jitter averages half the cap; all delays under 10% of theirs
  // together has a probability below 2e-4 for the fewest events allowed
  // (3), far less for the usual 7 or more. A client that always waits 0 fails.
  const delays = events.reduce((sum, e) => sum + e.delayMs / capOf(e.attempt), 0);
  expect(delays, `delays / caps summed over ${events.length} attempts`).toBeGreaterThanOrEqual(0.1);
}

describe.each(transports)("reconnect storm (%s)", (transport) => {
  /** Callers keep sending (as an application does through an outage) for the window; returns the dials and events seen. */
  async function underLoad(port: number, opts: ClientOptions, dialsSoFar: () => number): Promise<Observed> {
    const c = createClient({ port, transport, reconnect: RECONNECT, commandTimeoutMs: 200, ...opts });
    c.on("error", () => undefined);
    const events: Reconnecting[] = [];
    c.on("reconnecting", ({ attempt, delayMs }) => events.push({ attempt, delayMs, at: Date.now() }));
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
    const seen = events.slice();
    c.destroy();
    return { dials, events: seen };
  }

  async function countDials(opts: ClientOptions): Promise<Observed> {
    // The fault proxy in front of a port nobody listens on: it accepts, its
    // upstream dial is refused, it resets the client.
    const proxy = await startFaultProxy({ target: { port: await freePort() } });
    proxies.push(proxy);
    return underLoad(proxy.port, opts, () => proxy.stats.accepted);
  }

  it("with a handshake (clientName): dials follow the backoff", async () => {
    expectPacedDials(await countDials({ clientName: "storm" }));
  });

  it("with no handshake command (default options): dials follow the backoff", async () => {
    expectPacedDials(await countDials({}));
  });

  it("a plain listener that accepts and closes: dials follow the backoff", async () => {
    let dials = 0;
    const srv = net.createServer((s) => {
      dials++;
      s.destroy();
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    try {
      expectPacedDials(await underLoad((srv.address() as net.AddressInfo).port, {}, () => dials));
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });
});
