// npm run bench: respite (pipelined and pooled) against ioredis, ioredis with
// auto-pipelining, node-redis, a node-redis pool and, when it loads here,
// valkey-glide, in one run on one Redis, fed identical raw command arrays.
//
// Usage
//   npm run bench                      full run, under 10 min: 5 workloads x C in {1,16,128,1024}
//   npm run bench -- --quick           under a minute: fewer ops, C in {1,128}
//   npm run bench -- --clients=respite-pipelined,ioredis --workloads=get,mget10 --concurrency=1,64 --ops=20000
//   REDIS_URL=redis://host:port npm run bench   use that server (writes bench:* keys and deletes them
//                                      at the end; flushes nothing)
//   npm run bench -- --cluster         on a local Redis Cluster: GET and SET at C in {128,1024}, each
//                                      library's cluster client (--cluster --quick: under a minute)
//   flags: --quick --cluster --clients=a,b --workloads=a,b --concurrency=1,16 --ops=N --protocol=2|3 --no-pin --help
//   clients:   respite-pipelined respite-resp2 respite-traced respite-pooled ioredis ioredis-auto node-redis node-redis-pool glide
//              (respite-resp2: pipelined on RESP2, in the run unless --protocol is given; respite-traced:
//              pipelined with a respite:command subscriber attached during its own steps)
//              respite-cached respite-pooled-cached node-redis-cached (client-side caching: the
//              cached workload only; node-redis on RESP3 with its clientSideCache)
//   workloads: get set (16-byte values) mget10 get100k mix (90% GET / 10% SET EX)
//              cached (GET over a hot set, ~90% hits, 1% SETs by another client; bench/cached.ts)
//   client-side caching: npm run bench -- --workloads=cached --concurrency=16,128
//              --clients=respite-pipelined,respite-cached,respite-pooled-cached,node-redis,node-redis-cached
//
// What it does
//   - Without REDIS_URL it starts redis-server from PATH on a free port (never
//     6379) with --save "" --appendonly no, and stops it at the end, on
//     Ctrl-C/SIGTERM and on a crash.
//   - With taskset it pins this process to one core and redis-server to
//     another, and says so.
//   - Every client must pass a reply check first (values, 100 KiB, MGET, an
//     error reply, 512 concurrent GETs); warm-up replies are checked too. A
//     client that returns wrong data is marked failed and excluded.
//   - Each cell (workload x C): every client runs it (warm-up, then a fixed op
//     count in a closed loop of C callers) before any client runs the next
//     cell; the client order rotates per cell, so drift hits all alike.
//   - Time: each step (one client in one cell) gets an equal share of a
//     budget (8 min full, 30 s --quick); a step that runs over it is cut short
//     and its ops/s is marked * ("capped"). --ops=N lifts the budget.
//   - Latency: per-op performance.now() deltas into one preallocated
//     Float64Array, sorted for exact percentiles (no per-op allocation).
//   - stdout: a Markdown table of ops/s, p50/p99/p99.9 latency (µs), ratios to
//     ioredis and to the best anchor in the same cell, node CPU µs per op, then
//     respite's targets checked. stderr: progress.
//   - bench/results/: latest.json, results-<time>.json, latest.svg.
//
// --cluster
//   - Starts 3 masters + 3 replicas with the test harness (startRedisCluster
//     in test/support/redis-cluster.ts: redis-server + redis-cli --cluster
//     create on free ports, ready once every node has cluster_state:ok and
//     every replica its link up), pins them all to the redis core, preloads
//     the keys on their masters (10,000 keys spread over all slots), and
//     kills every node at the end, on Ctrl-C/SIGTERM and on a crash.
//     REDIS_URL is not used.
//   - Clients: respite pipelined and pooled (createCluster), ioredis Cluster
//     (default and enableAutoPipelining), node-redis createCluster, and
//     valkey-glide's GlideClusterClient when it loads.
//   - Workloads get, set (also allowed: get100k, mix); C in {128, 1024};
//     the same interleaving, verification (without the cross-slot MGET),
//     table and ratios.
//   - bench/results/: cluster-latest.json, cluster-results-<time>.json, cluster-latest.svg.
import { cpus, loadavg } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { readFileSync, writeFileSync } from "node:fs";
import { adminBatch, adminCommand } from "./admin.js";
import { renderChart } from "./chart.js";
import { clientLabel, LONG_MS, openClient, setRespiteProtocol, unavailableReason, type BenchClient, type ClientName, type Mode } from "./clients.js";
import { openClusterClient } from "./cluster-clients.js";
import { clusterBatch, killClusterSync, startBenchCluster, stopBenchCluster } from "./cluster.js";
import { HelpRequested, measuredOps, parseArgs, stepCapMs, warmupOps, type BenchConfig } from "./config.js";
import { runLoop, type LoopResult, type Tick } from "./measure.js";
import { pinProcesses } from "./pinning.js";
import { Progress } from "./progress.js";
import { renderNotes, renderTable, renderTargets, writeJson } from "./report.js";
import { addRatios, type CellResult, type ClientStatus, type RunResults } from "./results.js";
import { acquireRedis, killServerSync, stopRedis } from "./server.js";
import { summarize } from "./stats.js";
import { probeKey, verifyClient } from "./verify.js";
import { bigValue, buildWorkloads, cleanupCommands, preloadCommands, KEY_COUNT, type Workload } from "./workloads.js";
import { CACHED_WORKLOAD, isCachedClient, openWriter, withWriter } from "./cached.js";
import type { Client } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const OPEN_TIMEOUT_MS = 15_000;
const CLOSE_TIMEOUT_MS = 5_000;
/** A cell that is still running this long after its time cap has hung. */
const HANG_GRACE_MS = 30_000;

let progress: Progress | undefined;

function say(message: string): void {
  if (progress) progress.log(message);
  else process.stderr.write(message + "\n");
}

function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name === "Error" ? "" : err.name + ": "}${err.message.split("\n")[0]}`;
  return String(err);
}

/** Kill whatever servers we started (one redis-server, or every cluster node), synchronously. */
function killServersSync(): void {
  killServerSync();
  killClusterSync();
}

function installExitHandlers(): void {
  process.on("exit", killServersSync);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      progress?.stop();
      killServersSync();
      process.stderr.write(`\nbench: ${signal}, the redis-server process(es) we started are stopped; no results written\n`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  }
  process.on("uncaughtException", (err) => {
    progress?.stop();
    killServersSync();
    process.stderr.write(`\nbench crashed: ${err.stack ?? String(err)}\n`);
    process.exit(1);
  });
  // A client library that lets a promise reject unobserved must not end the
  // run for everybody: report it once per message and carry on.
  const seen = new Set<string>();
  process.on("unhandledRejection", (reason) => {
    const text = errorText(reason);
    if (seen.has(text)) return;
    seen.add(text);
    say(`bench: note: unhandled rejection from a client: ${text}`);
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const gc = (globalThis as { gc?: () => void }).gc;

function emptyCell(workload: Workload, concurrency: number, client: ClientName, reason: string): CellResult {
  return {
    workload: workload.name, concurrency, client, state: "failed", reason,
    ops: 0, elapsedMs: 0, opsPerSec: 0, p50Us: NaN, p99Us: NaN, p999Us: NaN, maxUs: NaN, cpuUsPerOp: NaN, capped: false,
  };
}

/** What differs between a single-node run and a cluster run. */
interface Harness {
  mode: Mode;
  redisVersion: string;
  /** What was started (or used), for the header and the JSON. */
  serverNote: string;
  /** Extra header lines. */
  notes: string[];
  open(name: ClientName): Promise<BenchClient>;
  verify(client: BenchClient): Promise<void>;
  /** Delete what we wrote on a server that is not ours, and stop what we started. */
  finish(clients: readonly ClientName[]): Promise<void>;
  /** The cached workload's writer (single node only). */
  writer?(): Promise<Client>;
}

/** One redis-server: REDIS_URL's, or our own on a free port. */
async function singleHarness(redisCore: number | undefined, big: string): Promise<Harness> {
  const target = await acquireRedis(process.env, process.env.REDIS_URL ? undefined : redisCore);
  const info = await adminCommand(target, ["INFO", "server"], 5_000);
  const redisVersion = /redis_version:([^\r\n]+)/.exec(String(info))?.[1] ?? "?";
  await adminBatch(target, preloadCommands(big), 30_000);
  return {
    mode: "single",
    redisVersion,
    serverNote: target.note,
    notes: [],
    open: (name) => openClient(name, target),
    verify: (client) => verifyClient(client, big),
    writer: () => openWriter(target, LONG_MS),
    finish: async (clients) => {
      if (target.pid === undefined) {
        // Not our server: delete the keys we wrote, and nothing else.
        await adminBatch(target, cleanupCommands(clients.map(probeKey)), 30_000).catch((err: unknown) =>
          process.stderr.write(`bench: could not delete the bench:* keys: ${errorText(err)}\n`),
        );
      }
      await stopRedis();
    },
  };
}

/** A local Redis Cluster of 3 masters + 3 replicas, started and stopped by us. */
async function clusterHarness(redisCore: number | undefined, big: string): Promise<Harness> {
  const notes: string[] = [];
  if (process.env.REDIS_URL) notes.push("REDIS_URL is not used with --cluster: the bench starts its own cluster");
  const target = await startBenchCluster(redisCore);
  const perMaster = await clusterBatch(target, preloadCommands(big), 30_000);
  const spread = [...perMaster].map(([port, n]) => `${n} on :${port}`).join(", ");
  if (perMaster.size < target.seeds.length) throw new Error(`the ${KEY_COUNT} keys landed on ${perMaster.size} masters only (${spread})`);
  notes.push(`keys: ${KEY_COUNT} + 1 big, spread over every slot range (${spread})`);
  return {
    mode: "cluster",
    redisVersion: target.redisVersion,
    serverNote: target.note,
    notes,
    open: (name) => openClusterClient(name, target),
    // No MGET: its 10 keys span slots, which the anchors reject with CROSSSLOT.
    verify: (client) => verifyClient(client, big, { mget: false }),
    finish: () => stopBenchCluster(),
  };
}

/** The measurement's hit ratio from a cache's counters before and after it. */
function hitRatio(before: { hits: number; misses: number } | undefined, after: { hits: number; misses: number } | undefined): { hitRatio?: number } {
  if (before === undefined || after === undefined) return {};
  const hits = after.hits - before.hits;
  const total = hits + after.misses - before.misses;
  return total > 0 ? { hitRatio: hits / total } : {};
}

async function openAll(cfg: BenchConfig, harness: Harness): Promise<{ open: BenchClient[]; statuses: ClientStatus[] }> {
  const open: BenchClient[] = [];
  const statuses: ClientStatus[] = [];
  for (const name of cfg.clients) {
    const label = clientLabel(name, harness.mode);
    const missing = await unavailableReason(name);
    if (missing !== undefined) {
      say(`bench: note: skipping ${label}: ${missing}`);
      statuses.push({ name, label, state: "unavailable", reason: missing });
      continue;
    }
    let client: BenchClient | undefined;
    try {
      client = await withTimeout(harness.open(name), OPEN_TIMEOUT_MS, `connecting ${label}`);
      await harness.verify(client);
      open.push(client);
      statuses.push({ name, label, state: "ok" });
    } catch (err) {
      const reason = `verification failed: ${errorText(err)}`;
      say(`bench: ${label} FAILED, excluded from the run: ${reason}`);
      statuses.push({ name, label, state: "failed", reason });
      if (client) void withTimeout(client.close(), CLOSE_TIMEOUT_MS, "close").catch(() => undefined);
    }
  }
  return { open, statuses };
}

async function main(): Promise<void> {
  const started = new Date();
  let cfg: BenchConfig;
  try {
    cfg = parseArgs(process.argv.slice(2), join(here, "results"));
    if (cfg.protocol !== undefined) setRespiteProtocol(cfg.protocol);
  } catch (err) {
    if (err instanceof HelpRequested) {
      const src = readFileSync(fileURLToPath(import.meta.url), "utf8");
      process.stdout.write(src.split("\n").filter((l) => l.startsWith("//")).map((l) => l.slice(3)).join("\n") + "\n");
      return;
    }
    process.stderr.write(`bench: ${errorText(err)}\n`);
    process.exitCode = 2;
    return;
  }
  installExitHandlers();

  const pin = pinProcesses(cfg.noPin);
  const big = bigValue();
  const harness = cfg.cluster ? await clusterHarness(pin.redisCore, big) : await singleHarness(pin.redisCore, big);
  const mode = harness.mode;
  const redisVersion = harness.redisVersion;
  const workloads = buildWorkloads(cfg.workloads, big);
  const load = loadavg()[0]!;
  const busy = load > cpus().length * 0.5;
  const command = `npm run bench${process.argv.length > 2 ? " -- " + process.argv.slice(2).join(" ") : ""}`;

  process.stdout.write(
    [
      `# ${command}`,
      `node ${process.version}, redis ${redisVersion}, ${cpus()[0]?.model ?? "?"} x${cpus().length}`,
      `server: ${harness.serverNote}`,
      ...harness.notes,
      `pinning: ${pin.note}`,
      `gc between cells: ${gc ? "yes" : "no (run with --expose-gc)"}`,
      `load average at start: ${load.toFixed(2)}${busy ? " (WARNING: other processes are busy on this machine; expect noisy numbers)" : ""}`,
      "",
    ].join("\n"),
  );

  const { open, statuses } = await openAll(cfg, harness);
  /** Clients excluded from the remaining cells, and why. */
  const failed = new Map<ClientName, string>();
  /** Clients caught returning wrong data: none of their cells may count. */
  const wrongData = new Set<ClientName>();
  for (const s of statuses) if (s.state === "failed") failed.set(s.name, s.reason ?? "failed");

  const cellsPlan = workloads.flatMap((w) => cfg.concurrency.map((c) => ({ w, c })));
  const maxOps = Math.max(...cellsPlan.map(({ w, c }) => measuredOps(cfg, w.name, c)));
  const latencies = new Float64Array(maxOps);
  const results: CellResult[] = [];
  let writer: Client | undefined;
  const opsPerCell: Record<string, number> = {};
  // A client that failed verification is in the table as "failed" in every cell.
  for (const s of statuses) {
    if (s.state !== "failed") continue;
    for (const { w, c } of cellsPlan) results.push(emptyCell(w, c, s.name, s.reason ?? "failed"));
  }
  const steps = cellsPlan.length * open.length;
  // A step's time cap: a quarter for the warm-up, the rest for the measurement.
  const capMs = stepCapMs(cfg, steps);
  const warmCapMs = capMs / 4;
  const measureCapMs = capMs - warmCapMs;
  progress = new Progress(steps);
  progress.start();

  for (let k = 0; k < cellsPlan.length; k++) {
    const { w, c } = cellsPlan[k]!;
    const ops = measuredOps(cfg, w.name, c);
    const warm = warmupOps(ops, c);
    opsPerCell[`${w.name}/${c}`] = ops;
    // Rotate the client order per cell so no client always runs first or last.
    const shift = open.length === 0 ? 0 : k % open.length;
    const order = [...open.slice(shift), ...open.slice(0, shift)];
    for (const measured of order) {
      // Clients with a cache run the cached workload only; there, every client's SETs are the writer's.
      if (isCachedClient(measured.name) && w.name !== CACHED_WORKLOAD) {
        progress.end();
        continue;
      }
      if (w.name === CACHED_WORKLOAD && harness.writer !== undefined) writer ??= await harness.writer();
      const client = w.name === CACHED_WORKLOAD && writer !== undefined ? withWriter(measured, writer, w.writes ?? []) : measured;
      const label = `${w.label} C=${c} ${clientLabel(client.name, mode)}`;
      const excluded = failed.get(client.name);
      if (excluded !== undefined) {
        results.push(emptyCell(w, c, client.name, excluded));
        progress.end();
        continue;
      }
      const tick: Tick = { done: 0 };
      let cacheBefore: { hits: number; misses: number } | undefined;
      progress.begin(label + " (warm-up)", warm + ops, tick);
      gc?.();
      let res: LoopResult;
      client.enter?.();
      try {
        const warmRes = await withTimeout(runLoop(client, w, c, warm, warmCapMs, undefined, true, tick), warmCapMs + HANG_GRACE_MS, "warm-up");
        if (warmRes.mismatches > 0) {
          const reason = `wrong reply in warm-up (${warmRes.mismatches} of ${warmRes.done}): ${warmRes.firstMismatch}`;
          failed.set(client.name, reason);
          wrongData.add(client.name);
          say(`bench: ${clientLabel(client.name, mode)} FAILED, excluded from the run: ${reason}`);
          results.push(emptyCell(w, c, client.name, reason));
          progress.end();
          continue;
        }
        if (warmRes.errors > 0) {
          const reason = `${warmRes.errors} of ${warmRes.done} warm-up ops failed: ${errorText(warmRes.firstError)}`;
          say(`bench: ${label}: ${reason}`);
          results.push(emptyCell(w, c, client.name, reason));
          progress.end();
          continue;
        }
        progress.begin(label, warm + ops, tick, warm);
        cacheBefore = client.cacheStats?.();
        const startAt = w.continueAfterWarmup === true ? warmRes.done : 0;
        res = await withTimeout(runLoop(client, w, c, ops, measureCapMs, latencies, false, tick, startAt), measureCapMs + HANG_GRACE_MS, "measurement");
      } catch (err) {
        // A hung client is beyond saving for this run.
        const reason = errorText(err);
        failed.set(client.name, reason);
        say(`bench: ${clientLabel(client.name, mode)} FAILED in ${label}, excluded: ${reason}`);
        results.push(emptyCell(w, c, client.name, reason));
        progress.end();
        continue;
      } finally {
        client.leave?.();
      }
      if (res.errors > 0) {
        const reason = `${res.errors} of ${res.done} ops failed: ${errorText(res.firstError)}`;
        say(`bench: ${label}: ${reason}`);
        results.push(emptyCell(w, c, client.name, reason));
      } else {
        const lat = summarize(latencies.subarray(0, res.done));
        results.push({
          workload: w.name,
          concurrency: c,
          client: client.name,
          state: "ok",
          ops: res.done,
          elapsedMs: res.elapsedMs,
          opsPerSec: (res.done / res.elapsedMs) * 1000,
          ...lat,
          cpuUsPerOp: res.cpuUs / res.done,
          capped: res.capped,
          ...hitRatio(cacheBefore, client.cacheStats?.()),
        });
      }
      progress.end();
    }
  }
  progress.stop();
  progress = undefined;

  await Promise.all(open.map((c) => withTimeout(c.close(), CLOSE_TIMEOUT_MS, `closing ${c.name}`).catch(() => undefined)));
  if (writer !== undefined) await withTimeout(writer.close(), CLOSE_TIMEOUT_MS, "closing the writer").catch(() => undefined);
  await harness.finish(cfg.clients);

  for (const s of statuses) {
    const why = failed.get(s.name);
    if (s.state !== "ok" || why === undefined) continue;
    s.state = "failed";
    s.reason = why;
    if (!wrongData.has(s.name)) continue;
    // Wrong data once means its fast cells cannot be trusted either.
    for (const r of results) {
      if (r.client === s.name && r.state === "ok") Object.assign(r, emptyCell(workloads.find((w) => w.name === r.workload)!, r.concurrency, r.client, why));
    }
  }
  addRatios(results);
  const run: RunResults = {
    meta: {
      mode,
      startedAt: started.toISOString(),
      durationSec: Math.round((Date.now() - started.getTime()) / 100) / 10,
      command,
      quick: cfg.quick,
      node: process.version,
      redisVersion,
      cpu: cpus()[0]?.model ?? "?",
      cores: cpus().length,
      server: harness.serverNote,
      pinning: pin.note,
      opsPerCell,
      stepCapMs: Math.round(capMs),
      loadAverageAtStart: Math.round(load * 100) / 100,
    },
    clients: statuses,
    cells: results,
  };
  const prefix = mode === "cluster" ? "cluster-" : "";
  const written = writeJson(cfg.outDir, run, prefix);
  try {
    const svgPath = join(cfg.outDir, `${prefix}latest.svg`);
    writeFileSync(svgPath, await renderChart(run));
    written.push(svgPath);
  } catch (err) {
    process.stderr.write(`bench: could not draw the chart: ${errorText(err)}\n`);
  }

  const out = [renderTable(run), "", renderNotes(run)];
  const targets = renderTargets(run);
  const targetsTitle =
    mode === "cluster"
      ? "respite targets on the cluster (issue 10: the one-node targets of issue 6; one run, the issues ask for the median of at least 2):"
      : "respite targets (issue 6; one run: the issue asks for the median of at least 2):";
  if (targets !== "") out.push("", targetsTitle, "", targets);
  out.push("", `wall time ${run.meta.durationSec} s; wrote ${written.map((p) => relative(process.cwd(), p)).join(", ")}`, "");
  process.stdout.write(out.join("\n"));
}

main().catch((err: unknown) => {
  progress?.stop();
  killServersSync();
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
