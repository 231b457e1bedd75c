import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ReplyError } from "../../src/errors.js";
import { freePort, startRedis, stopAll, type RedisServer } from "./redis-server.js";

/** Alive and not a zombie (a killed orphan may linger as Z until its new parent reaps it). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function waitUntilDead(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

const harnessPath = fileURLToPath(new URL("./redis-server.ts", import.meta.url));

/**
 * Run a separate Node process that starts a server through the harness,
 * prints its pid, then ends the way `mode` says. Resolves with the redis pid
 * once that Node process has exited.
 */
function orphanScenario(mode: "throw" | "exit" | "SIGTERM" | "SIGINT"): Promise<{ redisPid: number; code: number | null; signal: string | null }> {
  const script = `
    import(${JSON.stringify(harnessPath)}).then(async (m) => {
      const s = await m.startRedis();
      process.stdout.write("pid " + s.pid + "\\n");
      const mode = ${JSON.stringify(mode)};
      if (mode === "throw") throw new Error("a failing test file");
      if (mode === "exit") process.exit(3);
      setInterval(() => {}, 1000); // wait for the signal
    });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let redisPid: number | undefined;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`scenario ${mode} did not finish: ${out} ${err}`));
    }, 20_000);
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const match = /pid (\d+)\n/.exec(out);
      if (match !== null && redisPid === undefined) {
        redisPid = Number(match[1]);
        if (mode === "SIGTERM" || mode === "SIGINT") child.kill(mode);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (redisPid === undefined) reject(new Error(`scenario ${mode} printed no pid: ${out} ${err}`));
      else resolve({ redisPid, code, signal });
    });
  });
}

afterAll(async () => {
  await stopAll();
});

describe("redis-server harness", () => {
  it("starts on a free port of 127.0.0.1 and answers admin commands", async () => {
    const server = await startRedis();
    try {
      expect(server.host).toBe("127.0.0.1");
      expect(server.port).not.toBe(6379);
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(isAlive(server.pid)).toBe(true);
      expect(await server.admin(["PING"])).toBe("PONG");
      expect(await server.admin(["CONFIG", "GET", "save"])).toEqual(["save", ""]);
      expect(await server.admin(["CONFIG", "GET", "appendonly"])).toEqual(["appendonly", "no"]);
      expect(await server.admin(["CONFIG", "GET", "bind"])).toEqual(["bind", "127.0.0.1"]);
    } finally {
      await server.stop();
    }
  });

  it("admin rejects with the server's ReplyError", async () => {
    const server = await startRedis();
    try {
      await server.admin(["SET", "k", "text"]);
      const err = await server.admin(["INCR", "k"]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ReplyError);
      expect((err as ReplyError).code).toBe("ERR");
    } finally {
      await server.stop();
    }
  });

  it("passes extra args to redis-server", async () => {
    const server = await startRedis({ args: ["--requirepass", "s3cret"] });
    try {
      // admin() authenticates with --requirepass on its own; without AUTH the server refuses
      expect(await server.admin(["CONFIG", "GET", "requirepass"])).toEqual(["requirepass", "s3cret"]);
      await expect(server.admin(["GET", "k"], { auth: false })).rejects.toMatchObject({
        name: "ReplyError",
        code: "NOAUTH",
      });
    } finally {
      await server.stop();
    }
  });

  it("starts on a port the caller chose, and refuses 6379", async () => {
    const port = await freePort();
    const server = await startRedis({ port });
    try {
      expect(server.port).toBe(port);
      expect(await server.admin(["PING"])).toBe("PONG");
    } finally {
      await server.stop();
    }
    await expect(startRedis({ port: 6379 })).rejects.toThrow(/refusing to start .* port 6379/);
  });

  it("restart() after kill() comes back on the same port with a new pid", async () => {
    const server = await startRedis();
    try {
      const { port, pid } = server;
      await server.admin(["SET", "before", "1"]);
      await server.kill();
      expect(isAlive(pid)).toBe(false);
      await expect(server.admin(["PING"], { timeoutMs: 1_000 })).rejects.toThrow();
      await server.restart();
      expect(server.port).toBe(port);
      expect(server.pid).not.toBe(pid);
      expect(isAlive(server.pid)).toBe(true);
      expect(await server.admin(["PING"])).toBe("PONG");
      // persistence is off: a restarted server starts empty
      expect(await server.admin(["GET", "before"])).toBeNull();
    } finally {
      await server.stop();
    }
  });

  it("restart() of a running server with live clients reuses the port", async () => {
    const server = await startRedis();
    try {
      const { port, pid } = server;
      await server.restart();
      expect(server.port).toBe(port);
      expect(server.pid).not.toBe(pid);
      expect(isAlive(pid)).toBe(false);
      expect(await server.admin(["PING"])).toBe("PONG");
    } finally {
      await server.stop();
    }
  });

  it("pause() makes PING time out and resume() makes it answer", async () => {
    const server = await startRedis();
    try {
      server.pause();
      await expect(server.admin(["PING"], { timeoutMs: 300 })).rejects.toThrow(/no reply within 300 ms/);
      const late = server.admin(["PING"], { timeoutMs: 5_000 });
      server.resume();
      expect(await late).toBe("PONG");
      await server.waitUntilReady(2_000);
    } finally {
      await server.stop();
    }
  });

  it("stop() of a paused server still ends it", async () => {
    const server = await startRedis();
    const pid = server.pid;
    server.pause();
    await server.stop();
    expect(isAlive(pid)).toBe(false);
  });

  it("stop() leaves no process, and a second stop() is a no-op", async () => {
    const server = await startRedis();
    const pid = server.pid;
    expect(isAlive(pid)).toBe(true);
    await server.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    await server.stop();
    await expect(server.waitUntilReady(500)).rejects.toThrow(/not running/);
  });

  it("stopAll() stops every server still running", async () => {
    const servers: RedisServer[] = await Promise.all([startRedis(), startRedis()]);
    const ports = new Set(servers.map((s) => s.port));
    expect(ports.size).toBe(2);
    const pids = servers.map((s) => s.pid);
    await stopAll();
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
  });

  it("throws at once, naming the fix, when redis-server is not on PATH", async () => {
    const empty = mkdtempSync(join(tmpdir(), "respite-empty-path-"));
    const saved = process.env.PATH;
    process.env.PATH = empty;
    try {
      await expect(startRedis()).rejects.toThrow(
        "redis-server not found on PATH: install it (Debian: apt-get install redis-server)",
      );
    } finally {
      process.env.PATH = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe("redis-server harness: nothing of ours survives its process", () => {
  it.each(["throw", "exit"] as const)("a process that ends by %s takes its redis-server with it", async (mode) => {
    const { redisPid, code } = await orphanScenario(mode);
    expect(code).toBe(mode === "throw" ? 1 : 3);
    expect(await waitUntilDead(redisPid, 5_000)).toBe(true);
  });

  it.each(["SIGTERM", "SIGINT"] as const)("a process killed by %s takes its redis-server with it, and still dies of the signal", async (sig) => {
    const { redisPid, signal } = await orphanScenario(sig);
    expect(signal).toBe(sig);
    expect(await waitUntilDead(redisPid, 5_000)).toBe(true);
  });
});
