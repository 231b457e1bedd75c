// After close(), a process that used pub/sub, blocking commands, batches,
// scripts and SCAN exits by itself (no handle left open), on both transports.
import { execFile, spawn } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { TransportKind } from "../../src/index.js";
import { TRANSPORTS, useRedis, within } from "./support.js";

const redis = useRedis();
const CHILD = fileURLToPath(new URL("./fixtures/child-features.ts", import.meta.url));
const CHILD_DIALING = fileURLToPath(new URL("./fixtures/child-end-while-dialing.ts", import.meta.url));

function runChild(args: string[], deadlineMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--import", "tsx", CHILD, ...args], { timeout: deadlineMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`child did not exit by itself within ${deadlineMs} ms: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

describe("lifecycle", () => {
  for (const transport of TRANSPORTS) {
    it(`a child process using every feature exits by itself after close() (${transport})`, async () => {
      await redis.server.admin(["FLUSHALL"]);
      expect(await runChild([redis.server.url, transport], 15_000)).toEqual({
        received: "hi",
        blpop: null,
        batch: ["OK", 2],
        script: "lua",
        keys: ["child:k"],
      });
    });
  }
});

/** A server that accepts and never answers; resolves `authSeen` once an AUTH arrived. */
async function silentServer(): Promise<{ port: number; authSeen: Promise<void>; close(): Promise<void> }> {
  let seen!: () => void;
  const authSeen = new Promise<void>((resolve) => (seen = resolve));
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => undefined);
    s.on("close", () => sockets.delete(s));
    s.on("data", (chunk: Buffer) => {
      if (chunk.toString("latin1").includes("AUTH")) seen();
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    authSeen,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

/**
 * Start the child, wait until its AUTH is pending on the server, tell it to
 * end the client, and measure how long it takes to exit.
 */
async function endWhileDialing(transport: TransportKind, action: "destroy" | "close", what: "command" | "subscribe" | "nothing"): Promise<{ exitMs: number; code: number | null; stdout: string }> {
  const server = await silentServer();
  const child = spawn(process.execPath, ["--import", "tsx", CHILD_DIALING, String(server.port), transport, action, what], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    await within(server.authSeen, 10_000, "the child's AUTH");
    const t0 = Date.now();
    child.stdin.end("end\n");
    const code = await within(exited, 10_000, `the child's exit (${stderr})`);
    return { exitMs: Date.now() - t0, code, stdout };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await server.close();
  }
}

describe("ending a client whose dial is stuck in its handshake", () => {
  // connectTimeoutMs is 3000 in the child: an exit within 1 s proves the dial was abandoned, not timed out.
  for (const transport of ["pooled", "pipelined"] as const) {
    it(`destroy() with a command waiting: the process exits at once (${transport})`, async () => {
      const r = await endWhileDialing(transport, "destroy", "command");
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ outcome: "ClientClosedError" });
      expect(r.exitMs).toBeLessThan(1000);
    });

    it(`close() with nothing accepted: the process exits at once (${transport})`, async () => {
      const r = await endWhileDialing(transport, "close", "nothing");
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ outcome: "none" });
      expect(r.exitMs).toBeLessThan(1000);
    });
  }

  it("destroy() while the subscriber dials: the process exits at once", async () => {
    const r = await endWhileDialing("pipelined", "destroy", "subscribe");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ outcome: "ClientClosedError" });
    expect(r.exitMs).toBeLessThan(1000);
  });
});
