// One redis-server process of a multi-process test deployment (a Sentinel
// set-up, a Redis Cluster) on a port chosen in advance: spawned from PATH,
// ready once INFO names the pid we spawned (never somebody else's server),
// killed by its pid, and restarted on the same port.
import type { Arg } from "../../src/protocol/encode.js";
import type { Reply } from "../../src/protocol/decode.js";
import { spawnTracked, type TrackedProcess } from "./processes.js";
import { parseInfo, sendCommand } from "./server-probe.js";
import { pollUntil } from "./wait.js";

const HOST = "127.0.0.1";
const RESTART_TIMEOUT_MS = 15_000;
const RESTART_READY_MS = 3_000;

export abstract class ServerNode {
  readonly host = HOST;
  private proc: TrackedProcess | undefined;

  constructor(
    readonly port: number,
    /** AUTH with it before every admin command. */
    private readonly password: string | undefined,
    /** Deadline of the INFO probe while waiting for readiness. */
    private readonly probeTimeoutMs: number,
  ) {}

  /** How errors name this node ("sentinel 127.0.0.1:PORT"). */
  protected abstract get label(): string;

  /** redis-server's arguments. */
  protected abstract args(): string[];

  get address(): string {
    return `${HOST}:${this.port}`;
  }

  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  get pid(): number {
    const pid = this.proc?.child.pid;
    if (pid === undefined) throw new Error(`${this.label} was never spawned`);
    return pid;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  get log(): string {
    return this.proc?.log ?? "";
  }

  spawnProcess(): void {
    this.proc = spawnTracked("redis-server", this.args());
  }

  async waitReady(timeoutMs: number): Promise<void> {
    await pollUntil(`${this.label} ready`, timeoutMs, async () => {
      if (!this.running) throw new Error(`exited before it answered PING\n--- log tail ---\n${this.log}`);
      const info = parseInfo(await this.admin(["INFO", "server"], this.probeTimeoutMs));
      if (Number(info.process_id) !== this.proc?.child.pid) throw new Error(`port ${this.port} answered for pid ${info.process_id}`);
      return true;
    });
  }

  /** SIGKILL; resolves once the process has exited. */
  async kill(): Promise<void> {
    await this.proc?.kill();
  }

  /** Kill, then spawn again until ready: the port may linger for a moment after a kill. */
  protected async respawn(): Promise<void> {
    await this.kill();
    await pollUntil(`${this.label} restart`, RESTART_TIMEOUT_MS, async () => {
      if (!this.running) this.spawnProcess();
      try {
        await this.waitReady(RESTART_READY_MS);
        return true;
      } catch (err) {
        await this.kill();
        throw err;
      }
    });
  }

  pause(): void {
    if (!this.running) throw new Error("pause(): not running");
    this.proc?.child.kill("SIGSTOP");
  }

  resume(): void {
    if (!this.running) throw new Error("resume(): not running");
    this.proc?.child.kill("SIGCONT");
  }

  admin(args: readonly Arg[], timeoutMs = 2_000): Promise<Reply> {
    return sendCommand(this.port, args, timeoutMs, this.password);
  }
}
