// Text output: the results table (Markdown, so it pastes into the README as
// is), the clients that were excluded and why, and respite's targets from
// issue 6 checked against this run. Also writes the JSON files.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ANCHORS, CLIENT_NAMES, clientLabel, type ClientName } from "./clients.js";
import type { CellResult, RunResults } from "./results.js";
import { WORKLOAD_LABELS, WORKLOAD_NAMES, type WorkloadName } from "./workloads.js";

function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "—";
}

function us(n: number): string {
  if (!Number.isFinite(n)) return "—";
  return n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US");
}

function ratio(n: number | undefined): string {
  return n === undefined ? "—" : `${n.toFixed(2)}×`;
}

function order(cells: readonly CellResult[]): CellResult[] {
  return [...cells].sort(
    (a, b) =>
      WORKLOAD_NAMES.indexOf(a.workload) - WORKLOAD_NAMES.indexOf(b.workload) ||
      a.concurrency - b.concurrency ||
      CLIENT_NAMES.indexOf(a.client) - CLIENT_NAMES.indexOf(b.client),
  );
}

export function renderTable(results: RunResults): string {
  const header = ["workload", "C", "client", "ops/s", "p50 µs", "p99 µs", "p99.9 µs", "vs ioredis", "vs best anchor", "CPU µs/op"];
  const rows: string[][] = [];
  for (const c of order(results.cells)) {
    const name = clientLabel(c.client, results.meta.mode);
    if (c.state !== "ok") {
      rows.push([WORKLOAD_LABELS[c.workload], String(c.concurrency), name, "failed", "", "", "", "", "", ""]);
      continue;
    }
    rows.push([
      WORKLOAD_LABELS[c.workload],
      String(c.concurrency),
      name,
      int(c.opsPerSec) + (c.capped ? "*" : ""),
      us(c.p50Us),
      us(c.p99Us),
      us(c.p999Us),
      ratio(c.vsIoredis),
      ratio(c.vsBestAnchor),
      c.cpuUsPerOp.toFixed(2),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([1, 3, 4, 5, 6, 7, 8, 9]);
  const line = (cells: string[]): string =>
    "| " + cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(" | ") + " |";
  const sep = "|" + widths.map((w, i) => (numeric.has(i) ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|") + "|";
  const out = [line(header), sep];
  let previous = "";
  for (const r of rows) {
    const group = r[0]! + "/" + r[1]!;
    // Repeat workload and C only on the first row of a cell, so cells stand out.
    out.push(line(group === previous ? ["", "", ...r.slice(2)] : r));
    previous = group;
  }
  return out.join("\n");
}

export function renderNotes(results: RunResults): string {
  const lines: string[] = [];
  const mode = results.meta.mode;
  const anchors = ANCHORS.filter((a) => results.clients.some((c) => c.name === a));
  lines.push(`Anchors: ${anchors.map((a) => clientLabel(a, mode)).join(", ")}. "vs best anchor" divides by the fastest anchor in the same cell.`);
  if (results.cells.some((c) => c.capped)) lines.push("* the cell hit its time cap before its op count; ops/s is over the ops completed.");
  for (const c of results.clients) {
    if (c.state !== "ok") lines.push(`${c.label}: ${c.state === "failed" ? "FAILED" : "skipped"}: ${c.reason ?? ""}`);
  }
  const cellFailures = results.cells.filter((c) => c.state === "failed" && results.clients.find((s) => s.name === c.client)?.state === "ok");
  for (const c of cellFailures) lines.push(`${clientLabel(c.client, mode)} failed ${c.workload} C=${c.concurrency}: ${c.reason ?? ""}`);
  const ratios = results.cells.filter((c) => c.hitRatio !== undefined);
  if (ratios.length > 0) {
    lines.push(`Cache hit ratio in the measurement: ${ratios.map((c) => `${clientLabel(c.client, mode)} C=${c.concurrency} ${(100 * (c.hitRatio as number)).toFixed(1)}%`).join(", ")}.`);
  }
  return lines.join("\n");
}

interface TargetRow {
  target: string;
  measured: string;
  met: boolean | undefined;
}

function find(cells: readonly CellResult[], client: ClientName, workload: WorkloadName, c: number): CellResult | undefined {
  return cells.find((x) => x.client === client && x.workload === workload && x.concurrency === c && x.state === "ok");
}

function anchorsOf(cells: readonly CellResult[], workload: WorkloadName, c: number): CellResult[] {
  return cells.filter((x) => ANCHORS.includes(x.client) && x.workload === workload && x.concurrency === c && x.state === "ok");
}

/** The issue's targets for respite, checked on this one run (the issue asks for the median of at least 2 runs). */
export function renderTargets(results: RunResults): string {
  const cells = results.cells;
  const rows: TargetRow[] = [];
  const P: ClientName = "respite-pipelined";
  const ratioRow = (target: string, workload: WorkloadName, c: number, min: number): void => {
    const cell = find(cells, P, workload, c);
    if (cell?.vsBestAnchor === undefined) return;
    rows.push({ target: `${target} (${WORKLOAD_LABELS[workload]}, C=${c})`, measured: ratio(cell.vsBestAnchor), met: cell.vsBestAnchor >= min });
  };
  const concurrencies = [...new Set(cells.map((c) => c.concurrency))].sort((a, b) => a - b);
  for (const w of ["get", "set"] as const) {
    for (const c of [128, 1024]) {
      ratioRow("pipelined ≥ 2× best anchor", w, c, 2);
      const cell = find(cells, P, w, c);
      if (cell) rows.push({ target: `pipelined ≤ 3 µs CPU/op (${WORKLOAD_LABELS[w]}, C=${c})`, measured: cell.cpuUsPerOp.toFixed(2), met: cell.cpuUsPerOp <= 3 });
    }
    ratioRow("pipelined ≥ 1.5× best anchor", w, 16, 1.5);
  }
  for (const c of concurrencies.filter((c) => c >= 16)) ratioRow("pipelined ≥ 1.5× best anchor", "mget10", c, 1.5);
  for (const c of concurrencies) ratioRow("pipelined ≥ 1.2× best anchor", "get100k", c, 1.2);
  for (const w of ["get", "set"] as const) {
    const cell = find(cells, P, w, 1);
    const best = Math.min(...anchorsOf(cells, w, 1).map((a) => a.p50Us));
    if (cell && Number.isFinite(best)) {
      rows.push({ target: `pipelined p50 ≤ best anchor's (${WORKLOAD_LABELS[w]}, C=1)`, measured: `${us(cell.p50Us)} vs ${us(best)} µs`, met: cell.p50Us <= best });
    }
    const tail = find(cells, P, w, 128);
    const bestTail = Math.min(...anchorsOf(cells, w, 128).map((a) => a.p999Us));
    if (tail && Number.isFinite(bestTail)) {
      rows.push({ target: `pipelined p99.9 ≤ best anchor's (${WORKLOAD_LABELS[w]}, C=128)`, measured: `${us(tail.p999Us)} vs ${us(bestTail)} µs`, met: tail.p999Us <= bestTail });
    }
  }
  for (const w of ["get", "set"] as const) {
    for (const c of concurrencies.filter((c) => c >= 16)) {
      const pooled = find(cells, "respite-pooled", w, c);
      const nrPool = find(cells, "node-redis-pool", w, c);
      const target = `pooled ≥ 1.5× node-redis pool (${WORKLOAD_LABELS[w]}, C=${c})`;
      if (pooled && nrPool) rows.push({ target, measured: ratio(pooled.opsPerSec / nrPool.opsPerSec), met: pooled.opsPerSec / nrPool.opsPerSec >= 1.5 });
      else if (nrPool && cells.some((x) => x.client === "respite-pooled")) rows.push({ target, measured: "pooled failed", met: false });
    }
  }
  // Client-side caching (bench/cached.ts): against respite without it, and node-redis with its own.
  for (const c of concurrencies) {
    const cached = find(cells, "respite-cached", "cached", c);
    const plain = find(cells, P, "cached", c);
    const nr = find(cells, "node-redis-cached", "cached", c);
    if (cached && plain) rows.push({ target: `cached ≥ 5× respite uncached (${WORKLOAD_LABELS.cached}, C=${c})`, measured: ratio(cached.opsPerSec / plain.opsPerSec), met: cached.opsPerSec / plain.opsPerSec >= 5 });
    if (cached && nr) rows.push({ target: `cached ≥ 2× node-redis cached (${WORKLOAD_LABELS.cached}, C=${c})`, measured: ratio(cached.opsPerSec / nr.opsPerSec), met: cached.opsPerSec / nr.opsPerSec >= 2 });
  }
  if (rows.length === 0) return "";
  const w0 = Math.max(6, ...rows.map((r) => r.target.length));
  const w1 = Math.max(8, ...rows.map((r) => r.measured.length));
  const out = [`| ${"target".padEnd(w0)} | ${"measured".padEnd(w1)} | met |`, `|${"-".repeat(w0 + 2)}|${"-".repeat(w1 + 2)}|-----|`];
  for (const r of rows) out.push(`| ${r.target.padEnd(w0)} | ${r.measured.padEnd(w1)} | ${r.met === undefined ? " — " : r.met ? "yes" : "NO "} |`);
  return out.join("\n");
}

/** Write <prefix>latest.json and a timestamped copy; returns the paths written. */
export function writeJson(outDir: string, results: RunResults, prefix = ""): string[] {
  mkdirSync(outDir, { recursive: true });
  const text = JSON.stringify(results, null, 2) + "\n";
  const stamp = results.meta.startedAt.replace(/[:]/g, "").replace(/\.\d+Z$/, "Z");
  const paths = [join(outDir, `${prefix}latest.json`), join(outDir, `${prefix}results-${stamp}.json`)];
  for (const p of paths) writeFileSync(p, text);
  return paths;
}
