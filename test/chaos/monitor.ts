// A MONITOR tap on the real server, connected directly (not through the fault
// proxy): it reports the value of every SET the server executes. The chaos
// suite uses it to check that a command rejected with maybeExecuted: false
// never ran. The tap reconnects after a kill/restart; while it is away (a
// few ms after each restart) it can miss commands, which can only hide a
// violation, never invent one. It reads with the harness's own RESP reader
// (test/support/resp-reader.ts), not the client's decoder it checks.
import net from "node:net";
import { RespError, RespReader, type RespValue } from "../support/resp-reader.js";
import { writeCommand } from "../support/resp-writer.js";

const LINE = /^\d+\.\d+ \[\d+ [^\]]*\] "SET" "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"/;

export class MonitorTap {
  /** SETs seen executed (while the tap was attached). */
  sets = 0;
  lines = 0;
  attachments = 0;
  private socket: net.Socket | undefined;
  private running = true;
  private timer: NodeJS.Timeout | undefined;
  private attachedWaiters: (() => void)[] = [];
  private attached = false;
  private lineWaiters: { text: string; done(): void }[] = [];
  private syncs = 0;

  constructor(
    private readonly port: number,
    /** Called with the value of every SET the server executes. */
    private readonly onSet: (value: string) => void,
  ) {
    this.connect();
  }

  /** Resolves once the tap is attached (MONITOR answered OK). */
  whenAttached(timeoutMs = 10_000): Promise<void> {
    if (this.attached) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("MONITOR tap did not attach")), timeoutMs);
      this.attachedWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Resolves once a MONITOR line containing `text` arrives (rejects after
   * timeoutMs). MONITOR reports commands in the order the server ran them:
   * run a marker command (ECHO <unique>) after the last command of interest,
   * and once its line is here every earlier one has been read.
   */
  waitForLine(text: string, timeoutMs = 5_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.lineWaiters = this.lineWaiters.filter((w) => w !== waiter);
        reject(new Error(`MONITOR tap on ${this.port}: no line with ${JSON.stringify(text)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        text,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.lineWaiters.push(waiter);
    });
  }

  /**
   * Once this resolves, every command the server ran before the call has
   * been read by the tap: a marker ECHO goes through `run` (an admin command
   * on the same server) and its MONITOR line is awaited (bounded). Replaces
   * sleeping "long enough" for the last lines to arrive.
   */
  async sync(run: (args: string[]) => Promise<unknown>, timeoutMs = 5_000): Promise<void> {
    await this.whenAttached(timeoutMs);
    const marker = `monitor-sync:${this.port}:${++this.syncs}:${Date.now()}`;
    const seen = this.waitForLine(marker, timeoutMs);
    seen.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    await run(["ECHO", marker]);
    await seen;
  }

  close(): void {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.socket?.destroy();
  }

  private connect(): void {
    if (!this.running) return;
    const socket = net.connect({ port: this.port, host: "127.0.0.1" });
    this.socket = socket;
    let first = true;
    const onValue = (reply: RespValue): void => {
      if (first) {
        first = false;
        this.attached = reply === "OK";
        if (this.attached) {
          this.attachments++;
          for (const w of this.attachedWaiters.splice(0)) w();
        }
        return;
      }
      if (typeof reply !== "string") return;
      this.lines++;
      if (this.lineWaiters.length > 0) {
        const hit = this.lineWaiters.filter((w) => reply.includes(w.text));
        this.lineWaiters = this.lineWaiters.filter((w) => !hit.includes(w));
        for (const w of hit) w.done();
      }
      const m = LINE.exec(reply);
      if (m !== null) {
        this.sets++;
        this.onSet(unescape(m[2] as string));
      }
    };
    const reader = new RespReader();
    socket.on("connect", () => socket.write(writeCommand(["MONITOR"])));
    socket.on("data", (chunk: Buffer) => {
      let values: RespValue[];
      try {
        values = reader.feed(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const value of values) {
        if (value instanceof RespError || socket.destroyed) {
          socket.destroy();
          return;
        }
        onValue(value);
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.attached = false;
      if (this.running) this.timer = setTimeout(() => this.connect(), 20);
    });
  }
}

function unescape(s: string): string {
  return s.replace(/\\(.)/g, "$1");
}
