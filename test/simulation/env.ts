// A simulated world for a scripted test: the virtual clock installed, the
// in-memory network active (the test file must route node:net to it with
// vi.mock, see mocks.ts), both undone afterwards.
import { SimNet } from "./sim-net.js";
import { VirtualClock } from "./virtual-clock.js";

export interface SimEnv {
  clock: VirtualClock;
  net: SimNet;
  /** Virtual ms since the start. */
  now(): number;
}

export async function withSim<T>(fn: (env: SimEnv) => Promise<T>, randomSeed = 1): Promise<T> {
  const start = 1_700_000_000_000;
  const clock = new VirtualClock(start);
  clock.install(randomSeed);
  const net = new SimNet(clock);
  net.activate();
  try {
    return await fn({ clock, net, now: () => clock.now - start });
  } finally {
    await clock.advance(0);
    net.deactivate();
    clock.uninstall();
  }
}

/** A promise's outcome, readable synchronously once it settled. */
export function outcome<T>(p: Promise<T>): { state: "pending" | "resolved" | "rejected"; value?: T; error?: unknown } {
  const o: { state: "pending" | "resolved" | "rejected"; value?: T; error?: unknown } = { state: "pending" };
  p.then(
    (value) => {
      o.state = "resolved";
      o.value = value;
    },
    (error: unknown) => {
      o.state = "rejected";
      o.error = error;
    },
  );
  return o;
}
