// Child processes of the test harness (redis-server, sentinels, cluster
// nodes, redis-cli): nothing of ours may outlive the test process. Every
// child is tracked from spawn to exit, and killed by its pid when this
// process exits or gets SIGINT/SIGTERM, should a test file die before its
// afterAll; temporary dirs are removed then too.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

const EXIT_TIMEOUT_MS = 5_000;
const LOG_TAIL_BYTES = 8 * 1024;

// Shared through a global symbol: a test runner may load this module afresh
// for every test file in one worker process, and that process needs one set
// of hooks that sees every child, not one per module instance.
interface Registry {
  children: Set<ChildProcess>;
  tempDirs: Set<string>;
  hooksInstalled: boolean;
}
const REGISTRY_KEY = Symbol.for("respite.test.processes");
const globalSlots = globalThis as unknown as Record<symbol, Registry | undefined>;
const registry: Registry = (globalSlots[REGISTRY_KEY] ??= {
  children: new Set<ChildProcess>(),
  tempDirs: new Set<string>(),
  hooksInstalled: false,
});

function killAllSync(): void {
  for (const child of registry.children) {
    if (child.pid === undefined) continue;
    try {
      // A stopped (SIGSTOP) process dies of SIGKILL too; SIGCONT first only makes it explicit.
      process.kill(child.pid, "SIGCONT");
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  registry.children.clear();
  for (const dir of registry.tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort: a temp dir is not worth failing an exit over
    }
  }
  registry.tempDirs.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  killAllSync();
  // We took over the default action by listening; give it back, unless
  // someone else (the test runner) also listens and will decide.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/** Kill every tracked child when this process ends. Once per process, however often it is called. */
function installExitHooks(): void {
  if (registry.hooksInstalled) return;
  registry.hooksInstalled = true;
  process.on("exit", killAllSync);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
}

/** A fresh directory under the OS temp dir, removed at exit unless removeTempDir() came first. */
export function makeTempDir(prefix: string): string {
  installExitHooks();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  registry.tempDirs.add(dir);
  return dir;
}

/** Remove `dir` at exit (a restarted server tracks its dir again). */
export function trackTempDir(dir: string): void {
  installExitHooks();
  registry.tempDirs.add(dir);
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  registry.tempDirs.delete(dir);
}

/** Kill `child` at exit if it is still running then. */
function trackChild(child: ChildProcess): void {
  installExitHooks();
  registry.children.add(child);
  const forget = (): void => {
    registry.children.delete(child);
  };
  child.once("exit", forget);
  child.once("error", forget);
}

/** Run a short-lived command (redis-cli) to its end: its stdout and stderr on exit code 0, else an error with their tail. Killed after `timeoutMs`. */
export function runToEnd(binary: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    trackChild(child);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (out += d.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${basename(binary)} ${args.slice(0, 2).join(" ")} failed (${signal ?? `code ${code}`}):\n${out.slice(-4000)}`));
    });
  });
}

export interface TrackedProcess {
  readonly child: ChildProcess;
  /** Neither exited nor killed by a signal yet. */
  readonly running: boolean;
  /** The last 8 KiB of stdout and stderr together. */
  readonly log: string;
  /** Why it ended ("exited with SIGKILL", "exited with code 1", "spawn failed: ..."), once it has. */
  readonly exitReason: string | undefined;
  /** Resolves once the process has exited (or failed to spawn). */
  readonly exited: Promise<void>;
  /** Resolves once stdout and stderr are drained after the exit: the log is complete. */
  readonly outputClosed: Promise<void>;
  /** Resolves once exited; rejects if that takes longer than 5 s. */
  waitForExit(): Promise<void>;
  /** SIGKILL (when still running), then waitForExit(). */
  kill(): Promise<void>;
}

/**
 * Spawn a long-running server process, tracked until it exits. Its pipes are
 * kept drained (a full pipe would block it) into a log tail, and neither the
 * process nor its pipes keep the event loop alive: a forgotten server must
 * not hold the test process open (the exit hook kills it). Waits on it hold
 * timers of their own.
 */
export function spawnTracked(binary: string, args: readonly string[]): TrackedProcess {
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  trackChild(child);
  let log = "";
  let exitReason: string | undefined;
  const collect = (data: Buffer): void => {
    log = (log + data.toString("utf8")).slice(-LOG_TAIL_BYTES);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  child.unref();
  (child.stdout as Socket | null)?.unref();
  (child.stderr as Socket | null)?.unref();
  const exited = new Promise<void>((resolve) => {
    const done = (why: string): void => {
      exitReason ??= why;
      resolve();
    };
    child.once("exit", (code, signal) => done(`exited with ${signal ?? `code ${code}`}`));
    child.once("error", (err) => done(`spawn failed: ${err.message}`));
  });
  // 'close' comes after 'exit' once the pipes are drained.
  const outputClosed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const isRunning = (): boolean => child.exitCode === null && child.signalCode === null;
  const waitForExit = async (): Promise<void> => {
    if (!isRunning()) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${basename(binary)} pid ${child.pid} did not exit within ${EXIT_TIMEOUT_MS} ms`)), EXIT_TIMEOUT_MS);
    });
    try {
      await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    child,
    get running() {
      return isRunning();
    },
    get log() {
      return log;
    },
    get exitReason() {
      return exitReason;
    },
    exited,
    outputClosed,
    waitForExit,
    kill: async () => {
      if (isRunning()) child.kill("SIGKILL");
      await waitForExit();
    },
  };
}
