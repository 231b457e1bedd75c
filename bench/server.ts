// The Redis the bench talks to: REDIS_URL if set, otherwise a redis-server
// from PATH that we start on a free port of 127.0.0.1 (never 6379), with
// persistence off, optionally pinned to one core with taskset, and stop at
// the end. killServerSync() is for exit paths (signals, crashes) where
// nothing async may run any more.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adminCommand, type AdminTarget } from "./admin.js";

const HOST = "127.0.0.1";
const FORBIDDEN_PORT = 6379;
const READY_TIMEOUT_MS = 10_000;

export interface RedisTarget extends AdminTarget {
  url: string;
  username: string | undefined;
  password: string | undefined;
  db: number;
  /** Set when we started this server (and so must stop it). */
  pid: number | undefined;
  /** What was done about the server, for the run header. */
  note: string;
}

let child: ChildProcess | undefined;
let dataDir: string | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const address = srv.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Use REDIS_URL, or start our own server (pinned to `core` when given). */
export async function acquireRedis(env: NodeJS.ProcessEnv, core: number | undefined): Promise<RedisTarget> {
  const external = env.REDIS_URL;
  if (external !== undefined && external !== "") {
    const u = new URL(external);
    if (u.protocol !== "redis:") throw new Error(`REDIS_URL: only redis:// URLs are supported by the bench, got ${u.protocol}`);
    const port = u.port ? Number(u.port) : 6379;
    const host = u.hostname.replace(/^\[(.*)\]$/, "$1") || HOST;
    const username = u.username ? decodeURIComponent(u.username) : undefined;
    const password = u.password ? decodeURIComponent(u.password) : undefined;
    const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
    const prelude: string[][] = [];
    if (password !== undefined) prelude.push(username !== undefined ? ["AUTH", username, password] : ["AUTH", password]);
    if (db !== 0) prelude.push(["SELECT", String(db)]);
    // Never print the URL itself: it may hold a password.
    const note = `using REDIS_URL (${host}:${port}${db !== 0 ? ", db " + db : ""}); not pinned, not stopped at the end`;
    return { host, port, url: external, username, password, db, prelude, pid: undefined, note };
  }
  let lastError = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    let port = await freePort();
    if (port === FORBIDDEN_PORT) port = await freePort();
    try {
      const pid = await spawnServer(port, core);
      const pinned = core === undefined ? "not pinned" : `pinned to core ${core} with taskset`;
      return { host: HOST, port, url: `redis://${HOST}:${port}`, username: undefined, password: undefined, db: 0, prelude: [], pid, note: `started redis-server pid ${pid} on ${HOST}:${port}, ${pinned}` };
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
      killServerSync();
    }
  }
  throw new Error(`could not start redis-server: ${lastError}`);
}

async function spawnServer(port: number, core: number | undefined): Promise<number> {
  dataDir = mkdtempSync(join(tmpdir(), "respite-bench-"));
  const args = ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", dataDir];
  // taskset -c N execs redis-server in place: the pid we get is redis-server's.
  const proc = core === undefined ? spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] }) : spawn("taskset", ["-c", String(core), "redis-server", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  child = proc;
  let log = "";
  const collect = (d: Buffer): void => {
    log = (log + d.toString("utf8")).slice(-4096);
  };
  proc.stdout?.on("data", collect);
  proc.stderr?.on("data", collect);
  let exited: string | undefined;
  proc.once("exit", (code, signal) => (exited = `exited with ${signal ?? `code ${code}`}`));
  proc.once("error", (err) => (exited = err.message));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited !== undefined) throw new Error(`redis-server ${exited}: ${log.trim().split("\n").slice(-3).join(" | ")}`);
    try {
      const info = await adminCommand({ host: HOST, port, prelude: [] }, ["INFO", "server"], 500);
      const pid = /process_id:(\d+)/.exec(typeof info === "string" ? info : "")?.[1];
      if (Number(pid) !== proc.pid) throw new Error(`port ${port} is answered by pid ${pid}, not ours`);
      return proc.pid;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await delay(25);
    }
  }
}

/** Stop the server we started (SIGTERM, SIGKILL after 2 s). No-op for REDIS_URL. */
export async function stopRedis(): Promise<void> {
  const proc = child;
  if (proc === undefined) return;
  if (proc.exitCode === null && proc.signalCode === null) {
    const gone = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 2_000);
    await gone;
    clearTimeout(timer);
  }
  cleanup();
}

/** Synchronous kill for exit paths (signal handlers, crashes, process 'exit'). */
export function killServerSync(): void {
  const proc = child;
  if (proc !== undefined && proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
    try {
      process.kill(proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  cleanup();
}

function cleanup(): void {
  child = undefined;
  if (dataDir !== undefined) {
    rmSync(dataDir, { recursive: true, force: true });
    dataDir = undefined;
  }
}
