// The clock a connection owner runs on: real timers in production, a virtual
// clock in the simulation tests (so backoff and stability rules are checked
// without sleeping).
export interface Timers {
  /** `unref`: the timer must not keep the process alive. */
  setTimeout(callback: () => void, ms: number, unref?: boolean): unknown;
  clearTimeout(timer: unknown): void;
  now(): number;
}

export const realTimers: Timers = {
  setTimeout(callback, ms, unref) {
    const timer = setTimeout(callback, ms);
    if (unref === true) timer.unref();
    return timer;
  },
  clearTimeout(timer) {
    clearTimeout(timer as NodeJS.Timeout);
  },
  now: () => Date.now(),
};
