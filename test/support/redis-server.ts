// A real redis-server for tests: spawned from PATH on a free port of
// 127.0.0.1, with persistence off and a private temporary --dir, killed by
// its pid when the test file is done (or, failing that, when this process
// exits). Faults come from Redis itself: stop, kill, restart on the same
// port, SIGSTOP/SIGCONT, and admin() for CLIENT KILL, DEBUG SLEEP, ...
//
// Synchronisation is by events and deadline-bounded polls, never by sleeps:
// "ready" means a PING on a fresh socket answered PONG *and* INFO reports the
// pid we spawned (so we never mistake somebody else's server for ours).
import { accessSync, constants as fsConstants } from "node:fs";
import { delimiter, join } from "node:path";
import type { Arg } from "../../src/protocol/encode.js";
import type { Reply } from "../../src/protocol/decode.js";
import { makeTempDir, removeTempDir, spawnTracked, trackTempDir, type TrackedProcess } from "./processes.js";
import { freePort, sendCommand } from "./server-probe.js";

// Part of this module's API since before server-probe.ts held them.
export { freePort, sendCommand } from "./server-probe.js";

const HOST = "127.0.0.1";
/** The developer's own Redis lives here; we never start, stop or talk to it. */
const FORBIDDEN_PORT = 6379;
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;
const ADMIN_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 25;
const PROBE_TIMEOUT_MS = 500;
const MAX_PORT_ATTEMPTS = 8;

export interface StartRedisOptions {
  /** Extra redis-server arguments, appended after ours (e.g. ["--requirepass", "pw"]). */
  args?: string[];
  /** A fixed port instead of a free one. 6379 is refused. */
  port?: number;
}

export interface AdminOptions {
  /** Deadline for connect + reply; 5000 ms unless told. */
  timeoutMs?: number;
  /** Send AUTH first when the server was started with --requirepass (default true). */
  auth?: boolean;
}

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** "redis://127.0.0.1:PORT" */
  readonly url: string;
  /** The pid of the current process; it changes after restart(). */
  readonly pid: number;
  /** SIGTERM, then SIGKILL after 2 s; resolves once the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL; resolves once the process has exited. */
  kill(): Promise<void>;
  /** Start again on the same port with the same args (stopping first if still running); resolves when PING answers. */
  restart(): Promise<void>;
  /** SIGSTOP: the server accepts TCP connections (kernel backlog) but answers nothing. */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /**
   * Run one command on a fresh socket of its own (after AUTH if the server was
   * started with --requirepass); rejects on an error reply or after the deadline.
   */
  admin(args: readonly Arg[], options?: AdminOptions): Promise<Reply>;
  /** Poll PING on fresh sockets until PONG or the deadline (10 s unless told). */
  waitUntilReady(timeoutMs?: number): Promise<void>;
}

/** Servers started through this module instance, for stopAll(). */
const liveServers = new Set<Server>();

/** Stop every server this module started (gracefully, in parallel). */
export async function stopAll(): Promise<void> {
  await Promise.all([...liveServers].map((s) => s.stop()));
}

// ---------------------------------------------------------------------------
// Helpers

function findOnPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait for a promise, but no longer than ms (for best-effort waits). */
async function boundedWait(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The value of --requirepass among redis-server arguments, if any. */
function requirePass(args: readonly string[]): string | undefined {
  const i = args.lastIndexOf("--requirepass");
  return i === -1 ? undefined : args[i + 1];
}

// ---------------------------------------------------------------------------
// The server

type StartOutcome = { ok: true } | { ok: false; addressInUse: boolean; reason: string };

class Server implements RedisServer {
  readonly host = HOST;
  private proc: TrackedProcess | undefined;
  private paused = false;
  /** --requirepass from the extra args: probes and admin() authenticate with it. */
  private readonly password: string | undefined;

  constructor(
    private readonly binary: string,
    private currentPort: number,
    private readonly fixedPort: boolean,
    private readonly extraArgs: readonly string[],
    private readonly dir: string,
  ) {
    this.password = requirePass(extraArgs);
  }

  get port(): number {
    return this.currentPort;
  }

  get url(): string {
    return `redis://${HOST}:${this.currentPort}`;
  }

  get pid(): number {
    const pid = this.proc?.child.pid;
    if (pid === undefined) throw new Error("redis-server was never spawned");
    return pid;
  }

  private get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** Spawn on the current port and wait for readiness. Used by start and restart. */
  async launch(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastReason = "";
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.launchOnce(deadline);
      if (outcome.ok) return;
      lastReason = outcome.reason;
      const outOfTime = Date.now() >= deadline;
      if (!outcome.addressInUse || outOfTime || (!this.fixedPort && attempt >= MAX_PORT_ATTEMPTS)) break;
      if (this.fixedPort) {
        // Same port (restart, or a port the caller chose): the old socket may
        // linger for a moment. Poll until the deadline.
        await delay(POLL_INTERVAL_MS * 4);
      } else {
        this.currentPort = await freePort();
      }
    }
    liveServers.delete(this);
    throw new Error(`redis-server did not become ready on ${HOST}:${this.currentPort}: ${lastReason}\n--- log tail ---\n${this.proc?.log ?? ""}`);
  }

  private async launchOnce(deadline: number): Promise<StartOutcome> {
    this.paused = false;
    const args = [
      "--port", String(this.currentPort),
      "--bind", HOST,
      "--save", "",
      "--appendonly", "no",
      "--dir", this.dir,
      ...this.extraArgs,
    ];
    const proc = spawnTracked(this.binary, args);
    this.proc = proc;
    const pid = proc.child.pid;
    try {
      await this.pollReady(deadline, () => proc.exitReason);
      const info = await sendCommand(this.currentPort, ["INFO", "server"], PROBE_TIMEOUT_MS * 4, this.password);
      const match = /process_id:(\d+)/.exec(typeof info === "string" ? info : "");
      if (match === null || Number(match[1]) !== pid) {
        // Somebody else answered on "our" port; ours must have failed to bind.
        await proc.kill();
        return { ok: false, addressInUse: true, reason: `port ${this.currentPort} answered for pid ${match?.[1] ?? "?"}, not ${pid}` };
      }
      return { ok: true };
    } catch (err) {
      await proc.kill();
      await boundedWait(proc.outputClosed, 1_000);
      const addressInUse = /address already in use/i.test(proc.log);
      return { ok: false, addressInUse, reason: proc.exitReason ?? errorMessage(err) };
    }
  }

  private async pollReady(deadline: number, exitReason: () => string | undefined): Promise<void> {
    let lastError = "no attempt";
    for (;;) {
      const exited = exitReason();
      if (exited !== undefined) throw new Error(`redis-server ${exited} before it answered PING`);
      try {
        const reply = await sendCommand(
          this.currentPort,
          ["PING"],
          Math.min(PROBE_TIMEOUT_MS, Math.max(1, deadline - Date.now())),
          this.password,
        );
        if (reply === "PONG") return;
        lastError = `PING answered ${JSON.stringify(reply)}`;
      } catch (err) {
        lastError = errorMessage(err);
      }
      if (Date.now() >= deadline) throw new Error(`no PONG before the deadline (last: ${lastError})`);
      await delay(POLL_INTERVAL_MS);
    }
  }

  async waitUntilReady(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    await this.pollReady(Date.now() + timeoutMs, () => (this.running ? undefined : "is not running"));
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc !== undefined && this.running) {
      proc.child.kill("SIGTERM");
      // A stopped process only acts on SIGTERM once continued.
      if (this.paused) proc.child.kill("SIGCONT");
      this.paused = false;
      let graceTimer: NodeJS.Timeout | undefined;
      const grace = new Promise<boolean>((resolve) => {
        graceTimer = setTimeout(() => resolve(false), STOP_GRACE_MS);
      });
      const exitedInTime = await Promise.race([proc.exited.then(() => true), grace]);
      clearTimeout(graceTimer);
      if (!exitedInTime) proc.child.kill("SIGKILL");
      await proc.waitForExit();
    }
    this.dispose();
  }

  async kill(): Promise<void> {
    const proc = this.proc;
    if (proc !== undefined && this.running) {
      this.paused = false;
      await proc.kill();
    }
  }

  async restart(): Promise<void> {
    if (this.running) await this.stop();
    liveServers.add(this);
    trackTempDir(this.dir);
    await this.launch();
  }

  pause(): void {
    if (!this.running) throw new Error("pause(): redis-server is not running");
    this.proc?.child.kill("SIGSTOP");
    this.paused = true;
  }

  resume(): void {
    if (!this.running) throw new Error("resume(): redis-server is not running");
    this.proc?.child.kill("SIGCONT");
    this.paused = false;
  }

  admin(args: readonly Arg[], options?: AdminOptions): Promise<Reply> {
    return sendCommand(this.currentPort, args, options?.timeoutMs ?? ADMIN_TIMEOUT_MS, options?.auth === false ? undefined : this.password);
  }

  /** Forget the server once it is stopped for good (stop() keeps the port for a later restart()). */
  private dispose(): void {
    liveServers.delete(this);
  }
}

/**
 * Spawn a redis-server from PATH on a free port (or opts.port) and resolve
 * once it answers PING. Throws at once if redis-server is not installed.
 */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = findOnPath("redis-server");
  if (binary === undefined) {
    throw new Error("redis-server not found on PATH: install it (Debian: apt-get install redis-server)");
  }
  if (opts.port === FORBIDDEN_PORT) {
    throw new Error(`refusing to start a test redis-server on port ${FORBIDDEN_PORT}: that one is not ours`);
  }
  const dir = makeTempDir("respite-redis-");
  const fixed = opts.port !== undefined;
  const server = new Server(binary, opts.port ?? (await freePort()), fixed, opts.args ?? [], dir);
  liveServers.add(server);
  try {
    await server.launch();
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
  return server;
}
