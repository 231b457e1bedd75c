// The sentinel watcher against a sentinel that drops every connection before
// it confirmed the event subscription (review finding: lost() redialled at
// once, ~3000 connections/s), without a real deployment: the watcher alone,
// on a plain net server.
import net from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SentinelError } from "../../src/index.js";
import { resolveOptions, type ServerAddress } from "../../src/options.js";
import type { SentinelLocator } from "../../src/sentinel/locator.js";
import { SentinelWatcher } from "../../src/sentinel/watcher.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A listener that accepts, answers a handshake PING, and closes the
 * connection when SUBSCRIBE arrives (before confirming it, or right after),
 * counting accepts.
 */
async function dropsOnSubscribe(confirmFirst = false): Promise<{ port: number; accepts(): number; acceptTimes: readonly number[] }> {
  let accepts = 0;
  const acceptTimes: number[] = [];
  const srv = net.createServer((s) => {
    accepts++;
    acceptTimes.push(Date.now());
    s.on("error", () => undefined);
    s.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      if (text.includes("SUBSCRIBE")) {
        if (confirmFirst) s.write("*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n");
        s.destroy();
      } else if (text.includes("HELLO")) {
        // A RESP2-only listener: the client falls back from HELLO 3 and sends its RESP2 handshake.
        s.write("-ERR unknown command 'HELLO'\r\n");
      } else if (text.includes("PING")) {
        s.write("+PONG\r\n");
      }
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return { port: (srv.address() as net.AddressInfo).port, accepts: () => accepts, acceptTimes };
}

/** Growing caps (50, 100, 200, 200, ... ms): a backoff that ignores the attempt number shows. */
const RECONNECT = { initialDelayMs: 50, maxDelayMs: 200 };
const capOf = (attempt: number): number => Math.min(RECONNECT.maxDelayMs, RECONNECT.initialDelayMs * 2 ** (attempt - 1));
/**
 * Fewest dials in the 1 s window from a watcher that does redial: with every
 * delay at its cap the 4th dial is due at 350 ms. One that never redials makes 1.
 */
const MIN_DIALS = 4;

/**
 * The watcher reports no delays (no 'reconnecting' event of its own): record
 * each one it draws from its backoff, at the module boundary (createBackoff),
 * not through its internals. A watcher that stops using it shows here as no
 * delays recorded, not as a silent pass.
 */
const backoff = vi.hoisted(() => ({ drawn: [] as { attempt: number; delayMs: number }[] }));
vi.mock("../../src/connection/backoff.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/connection/backoff.js")>();
  return {
    ...real,
    createBackoff: (policy: Parameters<typeof real.createBackoff>[0]) => {
      const draw = real.createBackoff(policy);
      return (attempt: number): number => {
        const delayMs = draw(attempt);
        backoff.drawn.push({ attempt, delayMs });
        return delayMs;
      };
    },
  };
});

/**
 * Dials in the window bounded from both sides, and the delays between them:
 * attempts 1, 2, 3, ... each delay within [0, its cap], each actually waited
 * before the next dial, and not all (nearly) zero.
 */
function expectPaced(accepts: number, acceptTimes: readonly number[], drawn: readonly { attempt: number; delayMs: number }[]): void {
  expect(accepts, "dials in 1 s: it redials").toBeGreaterThanOrEqual(MIN_DIALS);
  expect(accepts, "dials in 1 s: no storm").toBeLessThanOrEqual(40);
  // One delay per failed connection: every dial but (perhaps) the last one.
  expect(drawn.length).toBeGreaterThanOrEqual(accepts - 1);
  expect(drawn.length).toBeLessThanOrEqual(accepts);
  expect(drawn.map((d) => d.attempt)).toEqual(drawn.map((_, i) => i + 1));
  for (const d of drawn) {
    expect(d.delayMs).toBeGreaterThanOrEqual(0);
    expect(d.delayMs, `delay of attempt ${d.attempt}`).toBeLessThanOrEqual(capOf(d.attempt));
  }
  // Dial i+1 comes no sooner than delay i after dial i (2 ms: timer and clock granularity).
  for (let i = 0; i + 1 < accepts; i++) {
    const gap = (acceptTimes[i + 1] as number) - (acceptTimes[i] as number);
    expect(gap, `time between dials ${i + 1} and ${i + 2}`).toBeGreaterThanOrEqual((drawn[i]?.delayMs ?? 0) - 2);
  }
  // Full jitter averages half the cap: under 10% of the caps together has a
  // probability below 2e-4 for the fewest delays allowed (3), far less for the
  // usual 10 or so. 0 ms delays fail.
  const ratio = drawn.reduce((sum, d) => sum + d.delayMs / capOf(d.attempt), 0);
  expect(ratio, `delays / caps summed over ${drawn.length} attempts`).toBeGreaterThanOrEqual(0.1);
}

/** The part of a locator the watcher uses: the sentinel list and per-sentinel options. */
function locatorOf(nodes: ServerAddress[]): SentinelLocator {
  return {
    nodes,
    connectionOptions: (node: ServerAddress) => resolveOptions({ host: node.host, port: node.port, connectTimeoutMs: 500 }),
  } as unknown as SentinelLocator;
}

function windowOf(ms: number): Promise<void> {
  // A window to count dials in, not a synchronisation.
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("sentinel watcher", () => {
  it("backs off when a sentinel drops the connection before confirming SUBSCRIBE", async () => {
    const fake = await dropsOnSubscribe();
    const errors: SentinelError[] = [];
    let subscribed = 0;
    // Delays random(0, 50), random(0, 100), then random(0, 200) ms: ~12 dials
    // in a second; the old redial-at-once made thousands.
    const options = resolveOptions({ reconnect: RECONNECT });
    const watcher = new SentinelWatcher(locatorOf([{ host: "127.0.0.1", port: fake.port }]), options, ["+switch-master"], 500, {
      message: () => undefined,
      subscribed: () => subscribed++,
      error: (e) => errors.push(e),
      active: () => true,
    });
    cleanups.push(() => watcher.stop());
    backoff.drawn.length = 0;
    watcher.start();
    await windowOf(1000);
    const accepts = fake.accepts();
    watcher.stop();
    expect(accepts).toBeGreaterThanOrEqual(1);
    expect(accepts).toBeLessThanOrEqual(40);
    expectPaced(accepts, fake.acceptTimes, backoff.drawn.slice());
    expect(subscribed).toBe(0);
    // A lost connection counts as a failed round: reported once for the outage, not per dial.
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SentinelError);
    expect(errors[0]?.kind).toBe("unreachable");
    expect(errors[0]?.message).toMatch(/^Sentinel: no sentinel accepted the event subscription \(last: /);
    // Stopped: no dial after stop().
    const after = fake.accepts();
    await windowOf(300);
    expect(fake.accepts()).toBe(after);
  });

  it("backs off when a sentinel confirms SUBSCRIBE and drops the connection at once", async () => {
    const fake = await dropsOnSubscribe(true);
    const errors: SentinelError[] = [];
    let subscribed = 0;
    const options = resolveOptions({ reconnect: RECONNECT });
    const watcher = new SentinelWatcher(locatorOf([{ host: "127.0.0.1", port: fake.port }]), options, ["+switch-master"], 500, {
      message: () => undefined,
      subscribed: () => subscribed++,
      error: (e) => errors.push(e),
      active: () => true,
    });
    cleanups.push(() => watcher.stop());
    backoff.drawn.length = 0;
    watcher.start();
    await windowOf(1000);
    const accepts = fake.accepts();
    watcher.stop();
    expect(accepts).toBeGreaterThanOrEqual(1);
    expect(accepts).toBeLessThanOrEqual(40);
    expectPaced(accepts, fake.acceptTimes, backoff.drawn.slice());
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/closed the connection right after SUBSCRIBE\)$/);
  });
});
