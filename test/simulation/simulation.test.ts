// Model-based simulation of respite's connection handling: a real Client
// (pipelined or pooled transport, or its pub/sub subscriber) over an
// in-memory network and a scripted Redis model, on a virtual clock, driven by
// random schedules of commands (with and without deadlines and AbortSignals),
// batches (plain and atomic), faults (refuse / hang / accept-then-close
// dials, freeze, reply delay, a reply cut mid-way, connection kill, write
// backpressure), time, close() / close({ timeoutMs }) and destroy() in any
// state, under random client configurations (deadlines, backoff policy,
// maxAttempts, maxPending, offline queue, pool size, health checks, RESP2 or
// RESP3) against a server that does or does not know HELLO. harness.ts
// lists every invariant checked after every step; harness-self-test.test.ts
// shows that they catch what they claim to.
//
// Runs: 10,000 schedules in total by default (pipelined 4,000, pooled 3,500,
// subscriber 2,500). FUZZ_RUNS scales them: the defaults correspond to
// FUZZ_RUNS=100 (the runs per property of the other fuzz suites), so
// FUZZ_RUNS=10 runs 1,000 schedules and FUZZ_RUNS=1000 runs 100,000.
//
// A failure prints fast-check's report: the seed, the path, the shrunk
// counterexample (the client's config and the schedule, as plain objects)
// and the violation with the run's trace. Replay it exactly with
//
//   SIM_PROPERTY=pipelined SIM_SEED=<seed> SIM_PATH=<path> npx vitest run test/simulation/simulation.test.ts
//
// (SIM_PROPERTY: pipelined | pooled | subscriber; the others are skipped).
// SIM_TRACE=1 prints the whole trace of every run (use it with a replay).
// SIM_ACTIONS=<n> allows schedules of up to n actions (default 30); a replay
// must use the SIM_ACTIONS of the run that failed.
// Everything a run does is deterministic: virtual time, Math.random seeded
// from the config's randomSeed, no real I/O.
import { afterAll, describe, expect, it, vi } from "vitest";

vi.mock("node:net", async (orig) => (await import("./mocks.js")).mockNet(await orig()));
vi.mock("../../src/request.js", async (orig) => (await import("./mocks.js")).mockRequest(await orig()));

import fc from "fast-check";
import { fuzzRuns } from "../robustness/support.js";
import { ClientWorld, SubscriberWorld } from "./harness.js";
import { clientActions, configArb, subscriberActions } from "./schedule.js";

const SCALE = fuzzRuns(100) / 100;
const runsOf = (n: number): number => Math.max(1, Math.round(n * SCALE));
const SEED = process.env.SIM_SEED !== undefined && process.env.SIM_SEED !== "" ? Number(process.env.SIM_SEED) : undefined;
const PATH = process.env.SIM_PATH !== undefined && process.env.SIM_PATH !== "" ? process.env.SIM_PATH : undefined;
const ONLY = process.env.SIM_PROPERTY;
const VERBOSE = process.env.SIM_TRACE === "1";
/** Longest schedule (default 30 actions; longer ones explore deeper, slower). */
const MAX_ACTIONS = process.env.SIM_ACTIONS !== undefined && process.env.SIM_ACTIONS !== "" ? Number(process.env.SIM_ACTIONS) : 30;
if (!Number.isInteger(MAX_ACTIONS) || MAX_ACTIONS < 5) throw new Error(`SIM_ACTIONS must be an integer >= 5, got ${JSON.stringify(process.env.SIM_ACTIONS)}`);

if (SEED !== undefined && !Number.isInteger(SEED)) throw new Error(`SIM_SEED must be an integer, got ${JSON.stringify(process.env.SIM_SEED)}`);

function params(numRuns: number): fc.Parameters<unknown> {
  return {
    numRuns,
    ...(SEED !== undefined ? { seed: SEED } : {}),
    ...(PATH !== undefined ? { path: PATH } : {}),
    // The shrunk counterexample is the report; a long shrink is still bounded.
    endOnFailure: PATH !== undefined,
  };
}

const stats = { schedules: 0, actions: 0, dials: 0, calls: 0, started: Date.now() };
const closeCoverage = new Map<string, number>();

function record(kind: string, actions: number, r: { calls: number; dials: number; closeStates: string[] }): void {
  stats.schedules++;
  stats.actions += actions;
  stats.dials += r.dials;
  stats.calls += r.calls;
  for (const s of r.closeStates) closeCoverage.set(`${kind} ${s}`, (closeCoverage.get(`${kind} ${s}`) ?? 0) + 1);
}

const property = (name: string) => (ONLY === undefined || ONLY === "" || ONLY === name ? it : it.skip);

afterAll(() => {
  const secs = ((Date.now() - stats.started) / 1000).toFixed(1);
  const coverage = [...closeCoverage.entries()].sort().map(([k, v]) => `${k}=${v}`).join(" ");
  console.log(`simulation: ${stats.schedules} schedules, ${stats.actions} actions, ${stats.calls} calls, ${stats.dials} dials in ${secs} s\nclose()/destroy() called in: ${coverage}`);
});

describe("simulation: random schedules of faults, commands, close() and destroy()", () => {
  property("pipelined")("pipelined", { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(configArb("pipelined"), fc.array(clientActions(), { minLength: 5, maxLength: MAX_ACTIONS, size: "medium" }), async (config, actions) => {
        const r = await new ClientWorld(config, VERBOSE).run(actions);
        record("pipelined", actions.length, r);
      }),
      params(runsOf(4000)),
    );
  });

  property("pooled")("pooled", { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(configArb("pooled"), fc.array(clientActions(), { minLength: 5, maxLength: MAX_ACTIONS, size: "medium" }), async (config, actions) => {
        const r = await new ClientWorld(config, VERBOSE).run(actions);
        record("pooled", actions.length, r);
      }),
      params(runsOf(3500)),
    );
  });

  property("subscriber")("subscriber", { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(configArb("pipelined", { lazy: true }), fc.array(subscriberActions(), { minLength: 5, maxLength: MAX_ACTIONS, size: "medium" }), async (config, actions) => {
        const r = await new SubscriberWorld(config, VERBOSE).run(actions);
        record("subscriber", actions.length, r);
      }),
      params(runsOf(2500)),
    );
  });

  it("a schedule replays exactly: same seed, same trace", async () => {
    const config = fc.sample(configArb("pipelined"), { numRuns: 1, seed: 42 })[0];
    const actions = fc.sample(fc.array(clientActions(), { minLength: 20, maxLength: 30 }), { numRuns: 1, seed: 7 })[0];
    if (config === undefined || actions === undefined) throw new Error("no sample");
    const traces: string[][] = [];
    for (let i = 0; i < 2; i++) {
      const w = new ClientWorld({ ...config, reconnect: { initialDelayMs: 50, maxDelayMs: 500, maxAttempts: Infinity } }, false);
      try {
        await w.run(actions);
      } catch {
        // A violation would be reported by the properties; here only the determinism counts.
      }
      traces.push(w.traceLines);
    }
    expect(traces[0]?.length).toBeGreaterThan(10);
    expect(traces[1]).toEqual(traces[0]);
  });
});
