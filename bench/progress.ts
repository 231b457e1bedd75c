// A one-line progress bar on stderr (stdout stays clean for the table). On a
// terminal it redraws in place four times a second; otherwise it prints a
// plain line at every 10% so logs stay short.
import type { Tick } from "./measure.js";

const WIDTH = 28;

function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export class Progress {
  private doneSteps = 0;
  private label = "";
  private stepOps = 1;
  private offset = 0;
  private tick: Tick = { done: 0 };
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private lastDecile = -1;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly totalSteps: number) {}

  start(): void {
    if (this.tty) {
      this.timer = setInterval(() => this.draw(), 250);
      this.timer.unref();
    }
    this.draw();
  }

  /** A step (one client in one cell) or a phase of it: `ops` in the whole step, `offset` of them already done. */
  begin(label: string, ops: number, tick: Tick, offset = 0): void {
    this.label = label;
    this.stepOps = Math.max(1, ops);
    this.offset = offset;
    this.tick = tick;
    this.draw();
  }

  end(): void {
    this.doneSteps++;
    this.tick = { done: 0 };
    this.offset = 0;
    this.draw();
  }

  /** Print a message above the bar. */
  log(message: string): void {
    if (this.tty) process.stderr.write("\r\x1b[2K");
    process.stderr.write(message + "\n");
    this.draw();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty) process.stderr.write("\r\x1b[2K");
  }

  private draw(): void {
    const within = Math.min(1, (this.offset + this.tick.done) / this.stepOps);
    const fraction = this.totalSteps === 0 ? 1 : Math.min(1, (this.doneSteps + within) / this.totalSteps);
    const elapsed = Date.now() - this.started;
    const eta = fraction > 0.02 ? clock((elapsed / fraction) * (1 - fraction)) : "?";
    const filled = Math.round(fraction * WIDTH);
    const bar = "█".repeat(filled) + "░".repeat(WIDTH - filled);
    const line = `${bar} ${String(Math.floor(fraction * 100)).padStart(3)}% ${this.doneSteps}/${this.totalSteps}  ${clock(elapsed)} elapsed, eta ${eta}  ${this.label}`;
    if (this.tty) {
      const cols = process.stderr.columns ?? 120;
      process.stderr.write("\r\x1b[2K" + line.slice(0, cols - 1));
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile !== this.lastDecile) {
        this.lastDecile = decile;
        process.stderr.write(line + "\n");
      }
    }
  }
}
