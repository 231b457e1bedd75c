// Counts every command the chaos suite issues and how it settled, and checks
// each rejection for what can be known from outside the client.
import { expect } from "vitest";
import { ClientClosedError, ConnectionError, ProtocolError, QueueFullError, RedisError, TimeoutError } from "../../src/index.js";
import type { Settled } from "../robustness/support.js";

/** What the test knew about the connection when a command was issued. */
export interface IssueContext {
  /** client.status was "ready". */
  ready: boolean;
  /** 'ready' and 'disconnect' events seen so far. */
  readyEvents: number;
  disconnectEvents: number;
}

export interface LedgerProbe {
  context(): IssueContext;
}

export class Ledger {
  issued = 0;
  resolved = 0;
  rejected = 0;
  /** A promise whose callbacks ran twice: impossible for a real Promise, counted anyway. */
  doubleSettled = 0;
  /** Time of the latest successful command. */
  lastOkAt = 0;
  /** Rejections checked by rules R1 and R2 (pipelined; see classify()). */
  checkedR1 = 0;
  checkedR2 = 0;
  readonly rejectedBy: Record<string, number> = {};
  readonly violations: string[] = [];
  private readonly outstanding = new Set<number>();
  /** Set at the end: from then on ClientClosedError is expected. */
  closing = false;
  /**
   * Commands still unsettled when close() was about to be called (see
   * beginClose()): close() settles whatever is stuck with ClientClosedError,
   * which the ledger then accepts, so only this count can show one.
   */
  unsettledAtClose: number | undefined;

  constructor(
    private readonly probe: LedgerProbe,
    private readonly pipelined: boolean,
  ) {}

  get unsettled(): number {
    return this.outstanding.size;
  }

  /** Call right before client.close(): records what is unsettled, then expects ClientClosedError. */
  beginClose(): void {
    this.unsettledAtClose = this.outstanding.size;
    this.closing = true;
  }

  violation(text: string): void {
    if (this.violations.length < 50) this.violations.push(text);
    else if (this.violations.length === 50) this.violations.push("... more violations not recorded");
  }

  /** Issue one command through `send`; resolves with how it settled (never rejects). */
  track<T>(name: string, send: () => Promise<T>): Promise<Settled<T>> {
    const id = this.issued++;
    const ctx = this.probe.context();
    this.outstanding.add(id);
    let settled = false;
    const once = (): boolean => {
      if (settled) {
        this.doubleSettled++;
        this.violation(`${name}#${id} settled twice`);
        return false;
      }
      settled = true;
      this.outstanding.delete(id);
      return true;
    };
    let promise: Promise<T>;
    try {
      promise = send();
    } catch (err) {
      // command() must return a rejected promise, never throw.
      this.violation(`${name}#${id} threw synchronously: ${String(err)}`);
      promise = Promise.reject(err);
    }
    return promise.then(
      (value) => {
        if (once()) {
          this.resolved++;
          this.lastOkAt = Date.now();
        }
        return { ok: true as const, value };
      },
      (error: unknown) => {
        if (once()) {
          this.rejected++;
          this.classify(name, id, error, ctx);
        }
        return { ok: false as const, error };
      },
    );
  }

  private classify(name: string, id: number, error: unknown, ctx: IssueContext): void {
    const type = error instanceof Error ? error.constructor.name : typeof error;
    this.rejectedBy[type] = (this.rejectedBy[type] ?? 0) + 1;
    if (!(error instanceof RedisError)) {
      this.violation(`${name}#${id} rejected with a non-RedisError: ${String(error)}`);
      return;
    }
    const now = this.probe.context();
    if (error instanceof QueueFullError && error.maybeExecuted) this.violation(`${name}#${id}: QueueFullError with maybeExecuted true`);
    if (error instanceof ConnectionError) {
      // "offline": not connected and no room to wait: never written.
      // "connect-failed" (pooled): it waited for a dial that failed; never
      // written, unless it is a read retried after its first socket died.
      if (error.reason === "offline" && error.maybeExecuted) this.violation(`${name}#${id}: offline ConnectionError with maybeExecuted true`);
      if (error.reason === "connect-failed" && error.maybeExecuted && name === "SET") {
        this.violation(`${name}#${id}: connect-failed ConnectionError with maybeExecuted true for a write (writes are never retried)`);
      }
      if (error.reason !== "socket-closed" && error.reason !== "offline" && error.reason !== "connect-failed") this.violation(`${name}#${id}: unexpected ConnectionError reason ${error.reason}`);
    }
    if (error instanceof ProtocolError) this.violation(`${name}#${id}: ProtocolError from a real server (desync): ${error.message}`);
    if (error instanceof ClientClosedError && !this.closing) this.violation(`${name}#${id}: ClientClosedError before close`);
    if (error instanceof TimeoutError && error.command !== name) this.violation(`${name}#${id}: TimeoutError names ${error.command}`);
    // R1 (pipelined: it writes only in the ready state): not ready when
    // issued and no 'ready' since: it cannot have been written. (Pooled
    // writes a command on a probe socket before it reports ready.)
    if (this.pipelined && !ctx.ready && now.readyEvents === ctx.readyEvents) {
      this.checkedR1++;
      if (error.maybeExecuted) this.violation(`${name}#${id}: ${type} maybeExecuted true, but the client was never ready since it was issued`);
    }
    // R2 (pipelined): ready when issued and no 'disconnect' since: it was
    // written in the next flush, so a timeout must say maybeExecuted.
    if (this.pipelined && error instanceof TimeoutError && ctx.ready && now.disconnectEvents === ctx.disconnectEvents) {
      this.checkedR2++;
      if (!error.maybeExecuted) this.violation(`${name}#${id}: TimeoutError maybeExecuted false on a connection that stayed up`);
    }
  }
}

/** What a chaos run observed beside its ledger, for the end-of-run checks every mode shares. */
export interface RunOutcome {
  /** Unhandled rejections and uncaught exceptions of the file. */
  escaped: unknown[];
  /** Every caller's loop ended in time once the callers were told to stop. */
  settledInTime: boolean;
  /** Replies that belonged to another caller, and a few of them to show. */
  crossed: number;
  crossedSamples: unknown[];
  /** Reads older than the caller's last confirmed write (outside what the mode allows). */
  stale: number;
}

/**
 * The end-of-run assertions of every chaos mode (single node, cluster):
 * nothing escaped, every promise settled exactly once, no crossed reply, no
 * stale read, and no rejection broke the rules of classify().
 */
export function expectCleanRun(ledger: Ledger, run: RunOutcome): void {
  expect(run.escaped).toEqual([]);
  expect(run.settledInTime).toBe(true);
  // Before close() (which would settle anything stuck), then after it.
  expect(ledger.unsettledAtClose, "commands unsettled when close() was called (beginClose())").toBe(0);
  expect(ledger.unsettled).toBe(0);
  expect(ledger.doubleSettled).toBe(0);
  expect(ledger.issued).toBe(ledger.resolved + ledger.rejected);
  expect(run.crossedSamples).toEqual([]);
  expect(run.crossed).toBe(0);
  expect(ledger.violations).toEqual([]);
  expect(run.stale).toBe(0);
}
