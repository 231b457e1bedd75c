// Seeded randomness for the chaos suites and the bench: the same seed gives
// the same sequence, so a failing fault schedule replays (CHAOS_SEED) and
// every bench client sees the same keys.

/** mulberry32: a small, fast, seeded PRNG returning numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Seeded {
  /** In [0, 1). */
  rand(): number;
  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  /** A shuffled copy (Fisher-Yates). */
  shuffled<T>(items: readonly T[]): T[];
}

export function seeded(seed: number): Seeded {
  const rand = prng(seed);
  const between = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  return {
    rand,
    between,
    pick: (items) => items[Math.floor(rand() * items.length)] as (typeof items)[number],
    shuffled: (items) => {
      const out = [...items];
      for (let j = out.length - 1; j > 0; j--) {
        const k = Math.floor(rand() * (j + 1));
        [out[j], out[k]] = [out[k] as (typeof out)[number], out[j] as (typeof out)[number]];
      }
      return out;
    },
  };
}

/**
 * Run faults until `seconds` have passed and every fault ran at least once:
 * each round runs every fault once, in a seeded order, with a seeded pause
 * (`pauseMs` [lo, hi]) after each. Returns the faults in the order they ran.
 */
export async function runFaultSchedule<F>(faults: readonly F[], seconds: number, seed: Seeded, pauseMs: [number, number], run: (fault: F) => Promise<void>): Promise<F[]> {
  const ran: F[] = [];
  const schedule: F[] = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end || ran.length < faults.length) {
    if (schedule.length === 0) schedule.push(...seed.shuffled(faults));
    const fault = schedule.shift() as F;
    await run(fault);
    ran.push(fault);
    await new Promise((r) => setTimeout(r, seed.between(pauseMs[0], pauseMs[1])));
  }
  return ran;
}
