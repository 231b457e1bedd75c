// Conformance, part 2: faults, the same over both transports. CLIENT KILL
// under load, SIGKILL and restart, a wrong password, and a process that must
// exit by itself after close().
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConnectionError, type Client } from "../../src/index.js";
import { freePort, startRedis, type RedisServer } from "../support/redis-server.js";
import { clientFactory, TRANSPORTS, untilBlocked } from "./support.js";

let server: RedisServer;
let secured: RedisServer;
const clients = clientFactory(() => server);
const securedClients = clientFactory(() => secured);
const CHILD = fileURLToPath(new URL("./fixtures/child-client.ts", import.meta.url));

beforeAll(async () => {
  [server, secured] = await Promise.all([startRedis(), startRedis({ args: ["--requirepass", "right-password"] })]);
});
afterEach(() => {
  clients.destroyAll();
  securedClients.destroyAll();
});
afterAll(async () => {
  await Promise.all([server.stop(), secured.stop()]);
});

/** Run the child fixture; resolves with its parsed stdout, rejects if it has not exited by the deadline. */
function runChild(args: string[], deadlineMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ["--import", "tsx", CHILD, ...args], { timeout: deadlineMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`child did not exit cleanly within ${deadlineMs} ms: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
    child.stdin?.end();
  });
}

describe.each(TRANSPORTS)("%s transport", (transport) => {
  const make = (options?: Parameters<typeof clients.make>[1]) => clients.make(transport, options);
  const k = (name: string): string => `${transport}:${name}`;

  it("CLIENT KILL under load: in-flight writes fail as maybeExecuted, reads are retried, later commands succeed", async () => {
    const c = make({ pool: { max: 4 } });
    const n = 12;
    await Promise.all(Array.from({ length: n }, (_, i) => c.command(["SET", k(`read:${i}`), `v${i}`])));
    let disconnects = 0;
    c.on("disconnect", () => disconnects++);
    // Writes block server-side (reads do not): whatever write is on a socket
    // is surely written and unanswered when the socket dies.
    await server.admin(["CLIENT", "PAUSE", "10000", "WRITE"]);
    let writes: Promise<PromiseSettledResult<unknown>[]>;
    let reads: Promise<unknown[]>;
    try {
      writes = Promise.allSettled(Array.from({ length: n }, (_, i) => c.command(["SET", k(`write:${i}`), "w"])));
      reads = Promise.all(Array.from({ length: n }, (_, i) => c.command(["GET", k(`read:${i}`)])));
      // pipelined: one socket with the first write blocked; pooled: max sockets each blocked on a write.
      await untilBlocked(server, transport === "pooled" ? 4 : 1);
      expect(Number(await server.admin(["CLIENT", "KILL", "TYPE", "normal"]))).toBeGreaterThanOrEqual(1);
    } finally {
      await server.admin(["CLIENT", "UNPAUSE"]);
    }
    const settled = await writes;
    let rejected = 0;
    for (const s of settled) {
      if (s.status === "fulfilled") {
        expect(s.value).toBe("OK");
        continue;
      }
      rejected++;
      expect(s.reason).toBeInstanceOf(ConnectionError);
      expect((s.reason as ConnectionError).maybeExecuted).toBe(true);
      expect((s.reason as ConnectionError).reason).toBe("socket-closed");
    }
    expect(rejected).toBeGreaterThanOrEqual(1);
    if (transport === "pooled") expect(rejected).toBe(4);
    expect(await reads).toEqual(Array.from({ length: n }, (_, i) => `v${i}`));
    expect(disconnects).toBeGreaterThanOrEqual(1);
    expect(await c.command(["SET", k("after-kill"), "ok"])).toBe("OK");
    expect(await c.command(["GET", k("after-kill")])).toBe("ok");
  });

  it("recovers after SIGKILL and a restart on the same port", async () => {
    const c = make({ reconnect: { initialDelayMs: 10, maxDelayMs: 100 } });
    expect(await c.command(["SET", k("r"), "1"])).toBe("OK");
    const disconnected = new Promise((resolve) => c.once("disconnect", resolve));
    await server.kill();
    await disconnected;
    await server.restart();
    // The server restarted empty (no persistence).
    expect(await c.command(["GET", k("r")])).toBe(null);
    expect(await c.command(["SET", k("r"), "2"])).toBe("OK");
    expect(await c.command(["GET", k("r")])).toBe("2");
    expect(c.status).toBe("ready");
  });

  it("a wrong password ends the client with one auth-failed error and one connection attempt", async () => {
    // INFO needs AUTH here: ask through a client of our own (its one connection is counted before `before`).
    const admin = securedClients.make("pipelined", { password: "right-password" });
    {
      const before = Number(await infoOf(admin, "total_connections_received"));
      const errors: Error[] = [];
      const c = securedClients.make(transport, { password: "wrong", reconnect: { initialDelayMs: 1, maxDelayMs: 5 } });
      c.on("error", (e) => errors.push(e));
      const closed = new Promise<void>((resolve) => c.once("close", resolve));
      const err = await c.connect().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as ConnectionError).reason).toBe("auth-failed");
      expect((err as ConnectionError).message).not.toContain("wrong");
      await closed;
      expect(c.status).toBe("closed");
      const later = await c.command(["PING"]).catch((e: unknown) => e);
      expect(later).toBe(err);
      expect(errors).toEqual([err]);
      const after = Number(await infoOf(admin, "total_connections_received"));
      expect(after - before).toBe(1);
    }
  });

  it("a process that connects, works and closes exits by itself", async () => {
    const out = await runChild([String(server.port), transport, "work"], 15_000);
    expect(out).toEqual({ got: "v", popped: null, echoed: "lent", status: "closed" });
  });

  it("a process whose server is down exits by itself after close()", async () => {
    const port = await freePort();
    const out = await runChild([String(port), transport, "down"], 15_000);
    expect(out.status).toBe("closed");
    expect(out.failed).not.toBe("no error");
  });
});

async function infoOf(c: Client, field: string): Promise<string> {
  const text = String(await c.command(["INFO", "stats"]));
  const match = new RegExp(`^${field}:(.*)$`, "m").exec(text);
  if (match === null) throw new Error(`no ${field}`);
  return (match[1] as string).trim();
}
