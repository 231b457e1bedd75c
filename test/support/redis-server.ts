// A real redis-server for tests: spawned from PATH on a free port of
// 127.0.0.1, with persistence off and a private temporary --dir, killed by
// its pid when the test file is done (or, failing that, when this process
// exits). Faults come from Redis itself: stop, kill, restart on the same
// port, SIGSTOP/SIGCONT, and admin() for CLIENT KILL, DEBUG SLEEP, ...
//
// Synchronisation is by events and deadline-bounded polls, never by sleeps:
// "ready" means a PING on a fresh socket answered PONG *and* INFO reports the
// pid we spawned (so we never mistake somebody else's server for ours).
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { encodeCommand, validateCommand, type Arg } from "../../src/protocol/encode.js";
import { Decoder, type Reply } from "../../src/protocol/decode.js";

const HOST = "127.0.0.1";
/** The developer's own Redis lives here; we never start, stop or talk to it. */
const FORBIDDEN_PORT = 6379;
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;
const EXIT_TIMEOUT_MS = 5_000;
const ADMIN_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 25;
const PROBE_TIMEOUT_MS = 500;
const LOG_TAIL_BYTES = 8 * 1024;
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

// ---------------------------------------------------------------------------
// Process bookkeeping: nothing of ours may outlive the test process.

// Shared through a global symbol: a test runner may load this module afresh
// for every test file in one worker process, and that process needs one set
// of hooks that sees every child, not one per module instance.
interface ProcessRegistry {
  children: Set<ChildProcess>;
  tempDirs: Set<string>;
  hooksInstalled: boolean;
}
const REGISTRY_KEY = Symbol.for("respite.test.redis-server.registry");
const globalSlots = globalThis as unknown as Record<symbol, ProcessRegistry | undefined>;
const registry: ProcessRegistry = (globalSlots[REGISTRY_KEY] ??= {
  children: new Set<ChildProcess>(),
  tempDirs: new Set<string>(),
  hooksInstalled: false,
});
const liveChildren = registry.children;
const tempDirs = registry.tempDirs;
/** Servers started through this module instance, for stopAll(). */
const liveServers = new Set<Server>();

function killAllSync(): void {
  for (const child of liveChildren) {
    if (child.pid !== undefined) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  liveChildren.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort: a temp dir is not worth failing an exit over
    }
  }
  tempDirs.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  killAllSync();
  // We took over the default action by listening; give it back, unless
  // someone else (the test runner) also listens and will decide.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installExitHooks(): void {
  if (registry.hooksInstalled) return;
  registry.hooksInstalled = true;
  process.on("exit", killAllSync);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
}

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

/** A port that was free a moment ago (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const address = srv.address();
      if (address === null || typeof address === "string") {
        srv.close();
        reject(new Error("could not read the port of a listening socket"));
        return;
      }
      srv.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
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

/**
 * Send one command on a fresh socket and settle with its reply. With a
 * password, AUTH goes first on the same socket (a failed AUTH rejects). The
 * socket is always destroyed; the deadline covers connect and replies.
 */
export function sendCommand(
  port: number,
  args: readonly Arg[],
  timeoutMs: number,
  password?: string,
  host = HOST,
): Promise<Reply> {
  validateCommand(args);
  const name = String(args[0]).toUpperCase();
  const commands: (readonly Arg[])[] = password === undefined ? [args] : [["AUTH", password], args];
  return new Promise<Reply>((resolve, reject) => {
    const socket = new Socket();
    let settled = false;
    let awaiting = commands.length;
    const finish = (err: Error | null, reply?: Reply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply ?? null);
    };
    const timer = setTimeout(
      () => finish(new Error(`${name} to ${host}:${port} got no reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const decoder = new Decoder({
      onReply: (reply) => {
        if (--awaiting === 0) finish(null, reply);
      },
      onErrorReply: (error) => finish(error),
      onProtocolError: (error) => finish(error),
    });
    socket.on("data", (chunk: Buffer) => decoder.write(chunk));
    socket.on("error", (err) => finish(err));
    socket.on("close", () => finish(new Error(`${name} to ${host}:${port}: connection closed before a reply`)));
    socket.connect(port, host, () => {
      for (const command of commands) socket.write(encodeCommand(command));
    });
  });
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
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private logTail = "";
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
    const pid = this.child?.pid;
    if (pid === undefined) throw new Error("redis-server was never spawned");
    return pid;
  }

  private get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
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
    throw new Error(`redis-server did not become ready on ${HOST}:${this.currentPort}: ${lastReason}\n--- log tail ---\n${this.logTail}`);
  }

  private async launchOnce(deadline: number): Promise<StartOutcome> {
    this.logTail = "";
    this.paused = false;
    const args = [
      "--port", String(this.currentPort),
      "--bind", HOST,
      "--save", "",
      "--appendonly", "no",
      "--dir", this.dir,
      ...this.extraArgs,
    ];
    const child = spawn(this.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    liveChildren.add(child);
    // Keep the pipes drained (a full pipe would block redis), keep a tail for errors.
    const collect = (data: Buffer): void => {
      this.logTail = (this.logTail + data.toString("utf8")).slice(-LOG_TAIL_BYTES);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    // A forgotten server must not keep the test process alive: the exit
    // hook kills it. Our own waits hold timers, which keep the loop alive.
    child.unref();
    (child.stdout as Socket | null)?.unref();
    (child.stderr as Socket | null)?.unref();

    let exitInfo: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      const done = (why: string): void => {
        liveChildren.delete(child);
        exitInfo ??= why;
        resolve();
      };
      child.once("exit", (code, signal) => done(`exited with ${signal ?? `code ${code}`}`));
      child.once("error", (err) => done(`spawn failed: ${err.message}`));
    });
    // 'close' comes after 'exit' once the pipes are drained: the log is complete.
    const outputClosed = new Promise<void>((resolve) => child.once("close", () => resolve()));

    try {
      await this.pollReady(deadline, () => exitInfo);
      const info = await sendCommand(this.currentPort, ["INFO", "server"], PROBE_TIMEOUT_MS * 4, this.password);
      const match = /process_id:(\d+)/.exec(typeof info === "string" ? info : "");
      if (match === null || Number(match[1]) !== child.pid) {
        // Somebody else answered on "our" port; ours must have failed to bind.
        await this.killChild(child);
        return { ok: false, addressInUse: true, reason: `port ${this.currentPort} answered for pid ${match?.[1] ?? "?"}, not ${child.pid}` };
      }
      return { ok: true };
    } catch (err) {
      await this.killChild(child);
      await boundedWait(outputClosed, 1_000);
      const addressInUse = /address already in use/i.test(this.logTail);
      return { ok: false, addressInUse, reason: exitInfo ?? errorMessage(err) };
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

  private async waitForExit(child: ChildProcess, exited: Promise<void>): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis-server pid ${child.pid} did not exit within ${EXIT_TIMEOUT_MS} ms`)), EXIT_TIMEOUT_MS);
    });
    try {
      await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async killChild(child: ChildProcess): Promise<void> {
    const exited = this.exited;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await this.waitForExit(child, exited);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child !== undefined && this.running) {
      const exited = this.exited;
      child.kill("SIGTERM");
      // A stopped process only acts on SIGTERM once continued.
      if (this.paused) child.kill("SIGCONT");
      this.paused = false;
      let graceTimer: NodeJS.Timeout | undefined;
      const grace = new Promise<boolean>((resolve) => {
        graceTimer = setTimeout(() => resolve(false), STOP_GRACE_MS);
      });
      const exitedInTime = await Promise.race([exited.then(() => true), grace]);
      clearTimeout(graceTimer);
      if (!exitedInTime) child.kill("SIGKILL");
      await this.waitForExit(child, exited);
    }
    this.dispose();
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child !== undefined && this.running) {
      this.paused = false;
      await this.killChild(child);
    }
  }

  async restart(): Promise<void> {
    if (this.running) await this.stop();
    liveServers.add(this);
    tempDirs.add(this.dir);
    await this.launch();
  }

  pause(): void {
    if (!this.running) throw new Error("pause(): redis-server is not running");
    this.child?.kill("SIGSTOP");
    this.paused = true;
  }

  resume(): void {
    if (!this.running) throw new Error("resume(): redis-server is not running");
    this.child?.kill("SIGCONT");
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
  installExitHooks();
  const dir = mkdtempSync(join(tmpdir(), "respite-redis-"));
  tempDirs.add(dir);
  const fixed = opts.port !== undefined;
  const server = new Server(binary, opts.port ?? (await freePort()), fixed, opts.args ?? [], dir);
  liveServers.add(server);
  try {
    await server.launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
    throw err;
  }
  return server;
}
