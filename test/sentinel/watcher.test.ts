// The sentinel watcher against a sentinel that drops every connection before
// it confirmed the event subscription (review finding: lost() redialled at
// once, ~3000 connections/s), without a real deployment: the watcher alone,
// on a plain net server.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
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
async function dropsOnSubscribe(confirmFirst = false): Promise<{ port: number; accepts(): number }> {
  let accepts = 0;
  const srv = net.createServer((s) => {
    accepts++;
    s.on("error", () => undefined);
    s.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      if (text.includes("SUBSCRIBE")) {
        if (confirmFirst) s.write("*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n");
        s.destroy();
      } else if (text.includes("PING")) {
        s.write("+PONG\r\n");
      }
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return { port: (srv.address() as net.AddressInfo).port, accepts: () => accepts };
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
    // Delays random(0, 200) ms: ~10 dials in a second; the old redial-at-once made thousands.
    const options = resolveOptions({ reconnect: { initialDelayMs: 200, maxDelayMs: 200 } });
    const watcher = new SentinelWatcher(locatorOf([{ host: "127.0.0.1", port: fake.port }]), options, ["+switch-master"], 500, {
      message: () => undefined,
      subscribed: () => subscribed++,
      error: (e) => errors.push(e),
      active: () => true,
    });
    cleanups.push(() => watcher.stop());
    watcher.start();
    await windowOf(1000);
    const accepts = fake.accepts();
    watcher.stop();
    expect(accepts).toBeGreaterThanOrEqual(1);
    expect(accepts).toBeLessThanOrEqual(40);
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
    const options = resolveOptions({ reconnect: { initialDelayMs: 200, maxDelayMs: 200 } });
    const watcher = new SentinelWatcher(locatorOf([{ host: "127.0.0.1", port: fake.port }]), options, ["+switch-master"], 500, {
      message: () => undefined,
      subscribed: () => subscribed++,
      error: (e) => errors.push(e),
      active: () => true,
    });
    cleanups.push(() => watcher.stop());
    watcher.start();
    await windowOf(1000);
    const accepts = fake.accepts();
    watcher.stop();
    expect(accepts).toBeGreaterThanOrEqual(1);
    expect(accepts).toBeLessThanOrEqual(40);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/closed the connection right after SUBSCRIBE\)$/);
  });
});
