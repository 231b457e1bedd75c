// A MONITOR tap on the real server, connected directly (not through the fault
// proxy): it reports the value of every SET the server executes. The chaos
// suite uses it to check that a command rejected with maybeExecuted: false
// never ran. The tap reconnects after a kill/restart; while it is away (a
// few ms after each restart) it can miss commands, which can only hide a
// violation, never invent one.
import net from "node:net";
import { Decoder } from "../../src/protocol/decode.js";

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
    const decoder = new Decoder(
      {
        onReply: (reply) => {
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
          const m = LINE.exec(reply);
          if (m !== null) {
            this.sets++;
            this.onSet(unescape(m[2] as string));
          }
        },
        onErrorReply: () => socket.destroy(),
        onProtocolError: () => socket.destroy(),
      },
      64 * 1024 * 1024,
    );
    socket.on("connect", () => socket.write("*1\r\n$7\r\nMONITOR\r\n"));
    socket.on("data", (chunk: Buffer) => decoder.write(chunk));
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
