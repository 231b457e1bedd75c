// The closed loop: C async callers share one op counter; each takes the next
// op index, sends that command, awaits the reply, records the latency, and
// takes the next. The hot path allocates nothing of its own: latencies go
// into a preallocated Float64Array, commands are the workload's shared arrays.
//
// Replies are checked against the expected ones only when `verify` is set
// (warm-up), so the comparison costs nothing in the measured phase.
import type { BenchClient } from "./clients.js";
import { describeReply, replyMatches, type Workload } from "./workloads.js";

export interface LoopResult {
  /** Ops completed (== requested unless the time cap hit). */
  done: number;
  errors: number;
  firstError: unknown;
  mismatches: number;
  firstMismatch: string | undefined;
  capped: boolean;
  elapsedMs: number;
  /** process.cpuUsage() delta (user + system) in microseconds. */
  cpuUs: number;
}

/** Live counter the progress bar reads. */
export interface Tick {
  done: number;
}

export async function runLoop(
  client: BenchClient,
  workload: Workload,
  concurrency: number,
  total: number,
  capMs: number,
  latencies: Float64Array | undefined,
  verify: boolean,
  tick: Tick,
  /** Index of the list's first op (the cached workload's measurement starts after its warm-up). */
  startAt = 0,
): Promise<LoopResult> {
  const cmds = workload.commands;
  const expected = workload.expected;
  const n = cmds.length;
  const send = client.send;
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: unknown;
  let mismatches = 0;
  let firstMismatch: string | undefined;
  let capped = false;
  tick.done = 0;

  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + capMs;

  async function caller(): Promise<void> {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      if ((i & 15) === 0 && performance.now() > deadline) {
        capped = true;
        next = total;
        return;
      }
      const j = (i + startAt) % n;
      let reply: unknown;
      const t0 = performance.now();
      try {
        reply = await send(cmds[j]!);
      } catch (err) {
        errors++;
        firstError ??= err;
        tick.done = ++done;
        continue;
      }
      const t1 = performance.now();
      if (latencies !== undefined) latencies[done] = t1 - t0;
      tick.done = ++done;
      if (verify && !replyMatches(reply, expected[j]!)) {
        mismatches++;
        firstMismatch ??= `${cmds[j]!.slice(0, 3).join(" ")}${cmds[j]!.length > 3 ? " …" : ""} -> ${describeReply(reply)}`;
      }
    }
  }

  const callers = new Array<Promise<void>>(concurrency);
  for (let c = 0; c < concurrency; c++) callers[c] = caller();
  await Promise.all(callers);

  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return { done, errors, firstError, mismatches, firstMismatch, capped, elapsedMs, cpuUs: cpu.user + cpu.system };
}
