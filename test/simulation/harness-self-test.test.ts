// The harness must catch what it claims to catch: each test injects one
// defect (in the server model, or by patching the client for the test's
// duration) into a short fixed schedule and expects the matching violation.
// Without these, a green simulation could be a blind one.
import { afterEach, describe, expect, it, vi } from "vitest";

vi.mock("node:net", async (orig) => (await import("./mocks.js")).mockNet(await orig()));
vi.mock("../../src/request.js", async (orig) => (await import("./mocks.js")).mockRequest(await orig()));

import { Client } from "../../src/client.js";
import { ConnectionError } from "../../src/errors.js";
import { Request } from "../../src/request.js";
import { ClientWorld, SimViolation, SubscriberWorld } from "./harness.js";
import type { Action, SimConfig } from "./schedule.js";

const base: SimConfig = {
  transport: "pipelined",
  lazyConnect: false,
  commandTimeoutMs: 0,
  connectTimeoutMs: 500,
  reconnect: { initialDelayMs: 50, maxDelayMs: 400, maxAttempts: Number.POSITIVE_INFINITY },
  maxPending: 10,
  offlineQueue: 10,
  retryReadOnly: true,
  pool: { min: 0, max: 2, acquireTimeoutMs: 1000, idleTimeoutMs: 0 },
  healthCheckIntervalMs: 0,
  protocol: 3,
  serverHello: true,
  randomSeed: 3,
};

const restore: (() => void)[] = [];
afterEach(() => {
  for (const r of restore.splice(0)) r();
});

function patch<T extends object, K extends keyof T>(obj: T, key: K, value: T[K]): void {
  const orig = obj[key];
  obj[key] = value;
  restore.push(() => {
    obj[key] = orig;
  });
}

async function violation(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (err) {
    if (err instanceof SimViolation) return err.message.split("\n")[0] ?? "";
    throw err;
  }
  return "no violation";
}

describe("the harness catches injected defects", () => {
  it("a clean schedule passes", async () => {
    const actions: Action[] = [{ t: "cmd", op: "echo" }, { t: "cmd", op: "get" }, { t: "kill", rst: false }, { t: "cmd", op: "set" }, { t: "advance", ms: 500 }, { t: "close" }];
    expect(await violation(() => new ClientWorld(base, false).run(actions))).toBe("no violation");
  });

  it("a crossed reply (the server swaps two replies)", async () => {
    const w = new ClientWorld(base, false);
    const actions: Action[] = [{ t: "advance", ms: 1 }, { t: "cmd", op: "echo" }, { t: "cmd", op: "echo" }];
    // Armed once the handshake is over.
    w.clock.schedule(() => {
      w.net.swapNext = true;
    }, 1);
    expect(await violation(() => w.run(actions))).toMatch(/expected its own reply .* \(a crossed reply\?\)/);
  });

  it("maybeExecuted that lies (false for a command handed to the socket)", async () => {
    patch(Request.prototype, "failConnection", function (this: Request) {
      this.fail(new ConnectionError("lost", "socket-closed", false));
    });
    const actions: Action[] = [{ t: "freeze" }, { t: "cmd", op: "echo" }, { t: "kill", rst: false }];
    expect(await violation(() => new ClientWorld(base, false).run(actions))).toMatch(/maybeExecuted=false but its bytes were handed to a socket/);
  });

  it("a request that never settles", async () => {
    patch(Request.prototype, "failClosed", function (this: Request) {
      // forgets to settle
    });
    const actions: Action[] = [{ t: "freeze" }, { t: "cmd", op: "echo" }, { t: "destroy" }];
    expect(await violation(() => new ClientWorld(base, false).run(actions))).toMatch(/not done after|not settled/);
  });

  it("a timer left behind by destroy()", async () => {
    const orig = Client.prototype.destroy;
    patch(Client.prototype, "destroy", function (this: Client) {
      orig.call(this);
      setTimeout(() => undefined, 10_000);
    });
    const actions: Action[] = [{ t: "cmd", op: "echo" }, { t: "destroy" }];
    expect(await violation(() => new ClientWorld(base, false).run(actions))).toMatch(/client timer\(s\) remain after destroy\(\)/);
  });

  it("a backoff delay beyond its cap (broken jitter)", async () => {
    const w = new ClientWorld(base, false);
    const actions: Action[] = [{ t: "dial", mode: "refuse" }, { t: "kill", rst: false }, { t: "advance", ms: 2000 }];
    const run = async (): Promise<unknown> => {
      // Math.random is the clock's seeded PRNG once the run starts: break it right after.
      const p = w.run(actions);
      Math.random = () => 3; // the clock's uninstall restores the real one
      return p;
    };
    expect(await violation(run)).toMatch(/outside \[0, \d+\]/);
  });

  it("a dial with no backoff before it (a tight loop)", async () => {
    const w = new ClientWorld(base, false);
    const actions: Action[] = [{ t: "advance", ms: 10 }, { t: "advance", ms: 10 }];
    // A second dial out of nowhere, as a reconnect loop would make.
    w.net.trace = undefined;
    const p = w.run(actions);
    setImmediate(() => w.net.connect({ host: "sim", port: 6379 }));
    expect(await violation(() => p)).toMatch(/with no backoff before it|sockets open at once/);
  });

  it("a pub/sub message that never reaches its listener", async () => {
    const w = new SubscriberWorld({ ...base, lazyConnect: true }, false);
    const actions: Action[] = [{ t: "subscribe", ch: 1 }, { t: "advance", ms: 10 }, { t: "publish", ch: 1 }, { t: "advance", ms: 10 }];
    // Once subscribed, the client's socket swallows pub/sub messages (as a decoder bug would).
    w.clock.schedule(() => {
      for (const s of w.net.sockets) {
        const emit = s.emit.bind(s);
        s.emit = ((event: string, ...args: unknown[]) => {
          if (event === "data" && String(args[0]).includes("message")) return true;
          return emit(event, ...args);
        }) as typeof s.emit;
      }
    }, 5);
    expect(await violation(() => w.run(actions))).toMatch(/reached the socket at .* but not listener/);
  });
});
