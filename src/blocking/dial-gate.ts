// Paces the pool's socket creation by the reconnect backoff.
//
// generic-pool retries a failed create at once, for as long as an acquire
// waits: with the server down that is a tight dial loop. Every create goes
// through this gate instead. While the server is believed up, dials run in
// parallel. After a failed dial the gate waits the backoff delay, then lets
// ONE dial through (the probe); the other creates wait for its outcome: dial
// in parallel if it connected, wait for the next delay if it failed. So a
// dead server sees one dial per backoff delay, however many callers wait.
//
// The gate starts as if a delay had just ended: the very first dial is a
// probe too, so a wrong password costs one connection, not `max` of them.
//
// A dial counts as a success only once the server answered something: a
// listener that accepts and drops connections (a proxy whose backend is down,
// a server at maxclients) must not reset the backoff. openConnection's
// handshake always waits for an answer (PING at least), so a dial that
// resolved is proven.
import { Deque } from "../connection/deque.js";

export interface DialGateHooks {
  /** The gate opened: a dial was proven after a failure (or for the first time). */
  opened(): void;
  /** A dial failed; the next one waits delayMs. `attempt` counts consecutive failures. May close the gate. */
  failed(info: { error: unknown; attempt: number; delayMs: number }): void;
  /** The backoff delay ended and no create was waiting for it. */
  due(): void;
}

type GateState<T> =
  | { kind: "open" }
  | { kind: "backoff"; attempt: number; timer: NodeJS.Timeout | undefined }
  /** The delay ended: the next dial is the probe. */
  | { kind: "due"; attempt: number }
  /** One dial is out: its outcome opens the gate or starts the next delay. */
  | { kind: "probing"; attempt: number }
  | { kind: "closed"; error: Error };

interface Queued {
  go(): void;
  stop(error: Error): void;
}

export class DialGate<T> {
  private state: GateState<T> = { kind: "due", attempt: 0 };
  private readonly queue = new Deque<Queued>();

  constructor(
    private readonly delayFor: (attempt: number) => number,
    private readonly hooks: DialGateHooks,
  ) {}

  /** True once the gate has seen a success and no failure since. */
  get isOpen(): boolean {
    return this.state.kind === "open";
  }

  /** True after a failed dial, until the next success. */
  get failing(): boolean {
    const st = this.state;
    return (st.kind === "backoff" || st.kind === "due" || st.kind === "probing") && st.attempt > 0;
  }

  get isClosed(): boolean {
    return this.state.kind === "closed";
  }

  /** Run `dial` now, or once the gate lets it through; rejects at once when closed. */
  dial(dial: () => Promise<T>): Promise<T> {
    const st = this.state;
    switch (st.kind) {
      case "open":
        return this.attempt(dial, false);
      case "due":
        this.state = { kind: "probing", attempt: st.attempt };
        return this.attempt(dial, true);
      case "closed":
        return Promise.reject(st.error);
      default:
        return new Promise<T>((resolve, reject) => {
          this.queue.push({ go: () => this.dial(dial).then(resolve, reject), stop: reject });
        });
    }
  }

  /** No dial after this: the pending backoff is cancelled and queued creates reject with `error`. */
  close(error: Error): void {
    const st = this.state;
    if (st.kind === "closed") return;
    if (st.kind === "backoff") clearTimeout(st.timer);
    this.state = { kind: "closed", error };
    for (const q of this.queue.drain()) q.stop(error);
  }

  /**
   * The address changed (a Sentinel failover), so the backoff's
   * reason is gone: end the current delay now (the next dial is the probe).
   */
  expedite(): void {
    const st = this.state;
    if (st.kind !== "backoff") return;
    clearTimeout(st.timer);
    this.delayEnded();
  }

  private async attempt(dial: () => Promise<T>, probe: boolean): Promise<T> {
    let value: T;
    try {
      value = await dial();
    } catch (error) {
      this.failed(error, probe);
      throw error;
    }
    this.succeeded();
    return value;
  }

  private succeeded(): void {
    const st = this.state;
    if (st.kind === "open" || st.kind === "closed") return;
    // Any success proves the server reachable, even one that started before
    // the current backoff: open at once.
    if (st.kind === "backoff") clearTimeout(st.timer);
    this.state = { kind: "open" };
    this.hooks.opened();
    for (const q of this.queue.drain()) q.go();
  }

  private failed(error: unknown, probe: boolean): void {
    const st = this.state;
    let attempt: number;
    if (st.kind === "open") attempt = 1;
    else if (st.kind === "probing" && probe) attempt = st.attempt + 1;
    else return; // started before the current backoff: it tells nothing new
    // Committed first, the timer armed once the failure is told: the delay
    // reported is waited in full after the report, and a listener that
    // closes the gate leaves no timer behind.
    const delayMs = this.delayFor(attempt);
    const next: Extract<GateState<T>, { kind: "backoff" }> = { kind: "backoff", attempt, timer: undefined };
    this.state = next;
    this.hooks.failed({ error, attempt, delayMs });
    if (this.state === next) next.timer = setTimeout(this.delayEnded, delayMs);
  }

  private readonly delayEnded = (): void => {
    const st = this.state;
    if (st.kind !== "backoff") return;
    this.state = { kind: "due", attempt: st.attempt };
    const next = this.queue.shift();
    if (next !== undefined) next.go();
    else this.hooks.due();
  };
}
