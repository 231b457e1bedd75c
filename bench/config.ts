// Command-line flags -> one BenchConfig: which clients, workloads and
// concurrencies run, and how many operations each cell measures.
//
// Op counts are per cell and per client. They are sized so that the default
// run (6-7 clients x 5 workloads x 4 concurrencies) stays under 10 minutes on
// a 2-core machine, and --quick under one minute; a time budget per step keeps
// a loaded machine or a pathological client from blowing that (the cell then
// reports the ops it completed and is flagged "capped").
import { WORKLOAD_NAMES, type WorkloadName } from "./workloads.js";
import { CLIENT_NAMES, CLUSTER_CLIENT_NAMES, type ClientName } from "./clients.js";

export interface BenchConfig {
  quick: boolean;
  /** --cluster: a local 3-master Redis Cluster and each library's cluster client. */
  cluster: boolean;
  clients: ClientName[];
  workloads: WorkloadName[];
  concurrency: number[];
  /** Fixed op count for every cell, overriding the per-workload table. */
  opsOverride: number | undefined;
  /**
   * Time budget for all warm-ups and measurements together. Each step (one
   * client in one cell) may use its share; a step that would take longer is
   * cut short (and flagged "capped"), so a loaded machine or a slow client
   * cannot push the run past its promised wall time.
   */
  budgetMs: number;
  outDir: string;
  /** Do not pin with taskset even when it exists. */
  noPin: boolean;
  /**
   * --protocol=2|3: the RESP version every respite client speaks. Without it,
   * respite's clients speak RESP3 (their default) and respite-resp2 (the
   * pipelined client on RESP2) runs beside them.
   */
  protocol: 2 | 3 | undefined;
}

export const FULL_CONCURRENCY = [1, 16, 128, 1024];
export const QUICK_CONCURRENCY = [1, 128];
/** --cluster (quick or not): the concurrencies the cluster target is stated at. */
export const CLUSTER_CONCURRENCY = [128, 1024];
export const CLUSTER_WORKLOADS: readonly WorkloadName[] = ["get", "set"];
/** MGET of 10 keys spans slots: the anchors reject it with CROSSSLOT, so it is no cluster workload. */
const CLUSTER_ALLOWED_WORKLOADS: readonly WorkloadName[] = ["get", "set", "get100k", "mix"];

/** Measured ops per cell: [at C=1, at C>1]. C=1 pays a round trip per op, so it gets fewer. */
const FULL_OPS: Record<WorkloadName, [number, number]> = {
  get: [15_000, 50_000],
  set: [15_000, 50_000],
  mget10: [10_000, 30_000],
  get100k: [2_500, 5_000],
  mix: [15_000, 50_000],
  cached: [15_000, 50_000],
};
const QUICK_OPS: Record<WorkloadName, [number, number]> = {
  get: [3_000, 15_000],
  set: [3_000, 15_000],
  mget10: [2_000, 9_000],
  get100k: [600, 1_500],
  mix: [3_000, 15_000],
  cached: [3_000, 15_000],
};

/**
 * --cluster --quick: only 2 workloads x 2 concurrencies, so each cell can
 * afford more ops than QUICK_OPS (which are sized for 5 x 2 cells); at C=1024
 * 15,000 ops would be ~15 per caller and a few tens of ms for respite.
 */
const CLUSTER_QUICK_OPS: Record<WorkloadName, [number, number]> = {
  get: [3_000, 30_000],
  set: [3_000, 30_000],
  mget10: [2_000, 9_000],
  get100k: [600, 1_500],
  mix: [3_000, 30_000],
  cached: [3_000, 30_000],
};

export function measuredOps(cfg: BenchConfig, workload: WorkloadName, concurrency: number): number {
  if (cfg.opsOverride !== undefined) return cfg.opsOverride;
  const [one, many] = (cfg.quick ? (cfg.cluster ? CLUSTER_QUICK_OPS : QUICK_OPS) : FULL_OPS)[workload];
  return concurrency === 1 ? one : many;
}

/** Warm-up: 10% of the measured ops, and at least 4 per caller so every caller's path is hot. */
export function warmupOps(measured: number, concurrency: number): number {
  return Math.max(Math.ceil(measured / 10), concurrency * 4);
}

function list<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new Error(`--${flag}: unknown "${item}"; choose from ${allowed.join(", ")}`);
    }
  }
  if (items.length === 0) throw new Error(`--${flag} needs at least one value`);
  return items as T[];
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got "${value}"`);
  return n;
}

export function parseArgs(argv: readonly string[], outDir: string): BenchConfig {
  const cfg: BenchConfig = {
    quick: false,
    cluster: false,
    clients: [...CLIENT_NAMES],
    workloads: [...WORKLOAD_NAMES],
    concurrency: FULL_CONCURRENCY,
    opsOverride: undefined,
    budgetMs: 480_000,
    outDir,
    noPin: false,
    protocol: undefined,
  };
  let concurrencyGiven = false;
  let clientsGiven = false;
  let workloadsGiven = false;
  for (const arg of argv) {
    const eq = arg.indexOf("=");
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const value = eq === -1 ? "" : arg.slice(eq + 1);
    switch (flag) {
      case "--quick":
        cfg.quick = true;
        break;
      case "--cluster":
        cfg.cluster = true;
        break;
      case "--no-pin":
        cfg.noPin = true;
        break;
      case "--protocol":
        if (value !== "2" && value !== "3") throw new Error(`--protocol must be 2 or 3, got "${value}"`);
        cfg.protocol = value === "2" ? 2 : 3;
        break;
      case "--clients":
        cfg.clients = list("clients", value, CLIENT_NAMES);
        clientsGiven = true;
        break;
      case "--workloads":
        cfg.workloads = list("workloads", value, WORKLOAD_NAMES);
        workloadsGiven = true;
        break;
      case "--concurrency":
        cfg.concurrency = value.split(",").map((v) => positiveInt("concurrency", v.trim()));
        concurrencyGiven = true;
        break;
      case "--ops":
        cfg.opsOverride = positiveInt("ops", value);
        cfg.budgetMs = Infinity; // an explicit op count is what the user wants, however long it takes
        break;
      case "--help":
      case "-h":
        throw new HelpRequested();
      default:
        throw new Error(`unknown flag "${arg}" (try --help)`);
    }
  }
  if (cfg.cluster) {
    const badClient = cfg.clients.find((c) => !CLUSTER_CLIENT_NAMES.includes(c));
    if (clientsGiven && badClient !== undefined) throw new Error(`--cluster: ${badClient} has no cluster client; choose from ${CLUSTER_CLIENT_NAMES.join(", ")}`);
    if (!clientsGiven) cfg.clients = [...CLUSTER_CLIENT_NAMES];
    const badWorkload = cfg.workloads.find((w) => !CLUSTER_ALLOWED_WORKLOADS.includes(w));
    if (workloadsGiven && badWorkload !== undefined) {
      throw new Error(`--cluster: workload ${badWorkload} is not run on a cluster (its keys span slots); choose from ${CLUSTER_ALLOWED_WORKLOADS.join(", ")}`);
    }
    if (!workloadsGiven) cfg.workloads = [...CLUSTER_WORKLOADS];
    if (!concurrencyGiven) cfg.concurrency = CLUSTER_CONCURRENCY;
  }
  // One protocol asked for: the RESP2 variant would only repeat the pipelined client.
  if (cfg.protocol !== undefined && !clientsGiven) cfg.clients = cfg.clients.filter((c) => c !== "respite-resp2");
  if (cfg.quick) {
    if (!concurrencyGiven && !cfg.cluster) cfg.concurrency = QUICK_CONCURRENCY;
    if (cfg.opsOverride === undefined) cfg.budgetMs = 30_000;
  }
  return cfg;
}

/** The most one step may take: its share of the budget, never under 300 ms; at most 60 s. */
export function stepCapMs(cfg: BenchConfig, steps: number): number {
  return Math.min(60_000, Math.max(300, cfg.budgetMs / Math.max(1, steps)));
}

export class HelpRequested extends Error {}
