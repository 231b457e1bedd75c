// The shape of a run's results (also the JSON written to bench/results/),
// and the same-run ratios computed once every cell is in.
import { ANCHORS, BASELINE, type ClientName, type Mode } from "./clients.js";
import type { WorkloadName } from "./workloads.js";

export type ClientState = "ok" | "failed" | "unavailable";

export interface ClientStatus {
  name: ClientName;
  label: string;
  state: ClientState;
  /** Why it failed or is unavailable. */
  reason?: string;
}

export interface CellResult {
  workload: WorkloadName;
  concurrency: number;
  client: ClientName;
  /** "failed": this client erred or returned wrong data in this cell (or was excluded earlier). */
  state: "ok" | "failed";
  reason?: string;
  ops: number;
  elapsedMs: number;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  /** Node process CPU (user + system) per op, in microseconds. */
  cpuUsPerOp: number;
  /** The time cap cut the cell short. */
  capped: boolean;
  /** Clients with a client-side cache: hits / (hits + misses) during the measurement. */
  hitRatio?: number;
  /** opsPerSec / ioredis' opsPerSec in the same cell. */
  vsIoredis?: number;
  /** opsPerSec / the best anchor's opsPerSec in the same cell. */
  vsBestAnchor?: number;
}

export interface RunMeta {
  /** "cluster" for `--cluster` runs; absent in files written before it existed (= "single"). */
  mode?: Mode;
  startedAt: string;
  durationSec: number;
  command: string;
  quick: boolean;
  node: string;
  redisVersion: string;
  cpu: string;
  cores: number;
  server: string;
  pinning: string;
  opsPerCell: Record<string, number>;
  /** Time cap of one step (warm-up + measurement of one client in one cell). */
  stepCapMs: number;
  /** 1-minute load average when the run started: other busy processes make numbers noisy. */
  loadAverageAtStart: number;
}

export interface RunResults {
  meta: RunMeta;
  clients: ClientStatus[];
  cells: CellResult[];
}

/** Fill vsIoredis and vsBestAnchor on every ok cell, from the ok cells of the same workload and concurrency. */
export function addRatios(cells: CellResult[]): void {
  const groups = new Map<string, CellResult[]>();
  for (const c of cells) {
    const k = `${c.workload}/${c.concurrency}`;
    const g = groups.get(k);
    if (g === undefined) groups.set(k, [c]);
    else g.push(c);
  }
  for (const group of groups.values()) {
    const ok = group.filter((c) => c.state === "ok");
    const baseline = ok.find((c) => c.client === BASELINE)?.opsPerSec;
    const anchors = ok.filter((c) => ANCHORS.includes(c.client)).map((c) => c.opsPerSec);
    const best = anchors.length > 0 ? Math.max(...anchors) : undefined;
    for (const c of ok) {
      if (baseline !== undefined) c.vsIoredis = c.opsPerSec / baseline;
      if (best !== undefined) c.vsBestAnchor = c.opsPerSec / best;
    }
  }
}
