// The simulation's virtual clock. While installed it replaces the global
// setTimeout / clearTimeout / setInterval / clearInterval and Date.now (what
// respite and generic-pool read time with; nothing in src/ uses setImmediate
// or performance.now), so a Request deadline, the owner's backoff, the dial's
// connectTimeoutMs and the pool's evictor all run on virtual time. It leaves
// process.nextTick, queueMicrotask, promises and setImmediate real: the
// pipelined transport flushes on process.nextTick, and drain() waits one real
// setImmediate, by which point every nextTick and microtask queued before it
// has run.
//
// Why not vi.useFakeTimers(): its async advance yields to the event loop with
// a real setTimeout between timers (a millisecond each, far too slow for
// 10,000 schedules), and it cannot tell the client's timers from the
// simulation's own (scheduled network deliveries), which "no timer remains
// after close()" needs. This clock fires one timer at a time, drains between
// timers, and tags every timer with its owner.
//
// Timers at the same instant fire in creation order, as Node's do. Client
// timers are clamped as Node clamps them (below 1 ms, or not a number: 1 ms);
// the simulation's own may be due "now" (a delivery in the next macrotask).
//
// Math.random is replaced too (seeded) while installed: the reconnect
// backoff's full jitter reads it, and a seed must replay exactly.
import { prng } from "../support/seeded.js";

const realSetImmediate = globalThis.setImmediate;

/** One real turn of the event loop: every nextTick and microtask queued before it has run. */
export function drain(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

export type TimerOwner = "client" | "sim";

interface Entry {
  id: number;
  at: number;
  seq: number;
  callback: (...args: unknown[]) => void;
  args: unknown[];
  /** setInterval's period. */
  every: number | undefined;
  owner: TimerOwner;
  handle: VirtualTimeout;
}

/** What setTimeout returns under the virtual clock: Node's Timeout surface. */
export class VirtualTimeout {
  private refed = true;

  constructor(
    readonly id: number,
    private readonly clock: VirtualClock,
  ) {}

  ref(): this {
    this.refed = true;
    return this;
  }

  unref(): this {
    this.refed = false;
    return this;
  }

  hasRef(): boolean {
    return this.refed;
  }

  refresh(): this {
    this.clock.refresh(this);
    return this;
  }

  close(): this {
    this.clock.clear(this);
    return this;
  }

  [Symbol.toPrimitive](): number {
    return this.id;
  }
}


interface Saved {
  setTimeout: typeof globalThis.setTimeout;
  clearTimeout: typeof globalThis.clearTimeout;
  setInterval: typeof globalThis.setInterval;
  clearInterval: typeof globalThis.clearInterval;
  dateNow: typeof Date.now;
  random: typeof Math.random;
}

export class VirtualClock {
  now: number;
  private readonly timers = new Map<number, Entry>();
  private seq = 0;
  private nextId = 1;
  private saved: Saved | undefined;
  /** Exceptions thrown by timer callbacks: in Node each would be an uncaughtException. */
  readonly thrown: unknown[] = [];

  constructor(start = 1_700_000_000_000) {
    this.now = start;
  }

  /** Replace the global timers, Date.now and Math.random (seeded with `randomSeed`). */
  install(randomSeed: number): void {
    if (this.saved !== undefined) throw new Error("virtual clock already installed");
    this.saved = {
      setTimeout: globalThis.setTimeout,
      clearTimeout: globalThis.clearTimeout,
      setInterval: globalThis.setInterval,
      clearInterval: globalThis.clearInterval,
      dateNow: Date.now,
      random: Math.random,
    };
    const g = globalThis as unknown as Record<string, unknown>;
    g.setTimeout = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => this.add("client", callback, clamp(ms), args, undefined);
    g.setInterval = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const every = clamp(ms);
      return this.add("client", callback, every, args, every);
    };
    g.clearTimeout = (handle: unknown) => this.clear(handle);
    g.clearInterval = (handle: unknown) => this.clear(handle);
    Date.now = () => this.now;
    Math.random = prng(randomSeed); // the seeded PRNG the chaos suites and the bench use too
  }

  uninstall(): void {
    const s = this.saved;
    if (s === undefined) return;
    const g = globalThis as unknown as Record<string, unknown>;
    g.setTimeout = s.setTimeout;
    g.clearTimeout = s.clearTimeout;
    g.setInterval = s.setInterval;
    g.clearInterval = s.clearInterval;
    Date.now = s.dateNow;
    Math.random = s.random;
    this.saved = undefined;
  }

  /** A simulation event (network delivery, a fault's end) `ms` from now; 0 = the next turn at this instant. */
  schedule(callback: () => void, ms = 0): VirtualTimeout {
    return this.add("sim", callback, Math.max(0, ms), [], undefined);
  }

  clear(handle: unknown): void {
    if (handle instanceof VirtualTimeout) this.timers.delete(handle.id);
    else if (typeof handle === "number") this.timers.delete(handle);
  }

  refresh(handle: VirtualTimeout): void {
    const e = this.timers.get(handle.id);
    if (e === undefined) return;
    e.at = this.now + (e.every ?? 1);
    e.seq = this.seq++;
  }

  /** Pending timers of `owner` (all when omitted). */
  pending(owner?: TimerOwner): number {
    let n = 0;
    for (const e of this.timers.values()) if (owner === undefined || e.owner === owner) n++;
    return n;
  }

  /** The client's pending timers, described (for a failure message). */
  describePending(owner: TimerOwner = "client"): string[] {
    const out: string[] = [];
    for (const e of this.timers.values()) {
      if (e.owner !== owner) continue;
      const src = String(e.callback).replace(/\s+/g, " ").slice(0, 120);
      out.push(`due +${e.at - this.now} ms${e.every !== undefined ? ` every ${e.every} ms` : ""}: ${src}`);
    }
    return out;
  }

  /** When the next timer is due, if any. */
  nextDue(): number | undefined {
    return this.earliest()?.at;
  }

  /**
   * Let `ms` of virtual time pass: fire every timer due by then, one at a
   * time in due order, draining nextTicks and microtasks after each.
   */
  async advance(ms: number): Promise<void> {
    const target = this.now + Math.max(0, ms);
    await drain();
    for (;;) {
      const e = this.earliest();
      if (e === undefined || e.at > target) break;
      this.now = Math.max(this.now, e.at);
      if (e.every !== undefined) {
        e.at = this.now + e.every;
        e.seq = this.seq++;
      } else {
        this.timers.delete(e.id);
      }
      try {
        e.callback(...e.args);
      } catch (err) {
        this.thrown.push(err);
      }
      await drain();
    }
    this.now = target;
    await drain();
  }

  private add(owner: TimerOwner, callback: (...args: unknown[]) => void, ms: number, args: unknown[], every: number | undefined): VirtualTimeout {
    if (typeof callback !== "function") throw new TypeError("The callback must be a function");
    const id = this.nextId++;
    const handle = new VirtualTimeout(id, this);
    this.timers.set(id, { id, at: this.now + ms, seq: this.seq++, callback, args, every, owner, handle });
    return handle;
  }

  private earliest(): Entry | undefined {
    let best: Entry | undefined;
    for (const e of this.timers.values()) {
      if (best === undefined || e.at < best.at || (e.at === best.at && e.seq < best.seq)) best = e;
    }
    return best;
  }
}

/** Node's clamp: below 1 ms, above 2^31-1, or not a number: 1 ms; fractions truncated. */
function clamp(ms: number | undefined): number {
  const n = Number(ms);
  if (!(n >= 1 && n <= 2 ** 31 - 1)) return 1;
  return Math.floor(n);
}
