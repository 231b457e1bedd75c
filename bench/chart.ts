// The SVG chart: ops/s against concurrency, one panel per workload, one line
// per client. Drawn with Vega-Lite compiled to Vega and rendered headless
// (renderer "none" + toSVG needs no DOM and no node-canvas), so the chart is
// a declarative spec here rather than hand-written SVG.
import { parse, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { CLIENT_NAMES, clientLabel } from "./clients.js";
import type { RunResults } from "./results.js";
import { WORKLOAD_LABELS, WORKLOAD_NAMES } from "./workloads.js";

export async function renderChart(results: RunResults): Promise<string> {
  const present = new Set(results.cells.map((c) => c.workload));
  const values = results.cells
    .filter((c) => c.state === "ok")
    .map((c) => ({
      workload: WORKLOAD_LABELS[c.workload],
      concurrency: c.concurrency,
      client: clientLabel(c.client, results.meta.mode),
      opsPerSec: Math.round(c.opsPerSec),
    }));
  const m = results.meta;
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `respite bench${m.mode === "cluster" ? " on a Redis Cluster (3 masters + 3 replicas)" : ""}: ops/s vs concurrent callers (higher is better)`,
      subtitle: `${m.startedAt.slice(0, 16).replace("T", " ")} UTC · ${m.command} · node ${m.node} · redis ${m.redisVersion} · ${m.cores} cores`,
      anchor: "start",
    },
    background: "white",
    padding: 12,
    data: { values },
    columns: 3,
    facet: {
      field: "workload",
      type: "nominal",
      sort: WORKLOAD_NAMES.filter((w) => present.has(w)).map((w) => WORKLOAD_LABELS[w]),
      title: null,
      header: { labelFontSize: 13, labelFontWeight: "bold" },
    },
    spec: {
      width: 260,
      height: 180,
      mark: { type: "line", point: true, strokeWidth: 2 },
      encoding: {
        x: { field: "concurrency", type: "ordinal", title: "concurrent callers (C)", axis: { labelAngle: 0 } },
        y: { field: "opsPerSec", type: "quantitative", title: "ops/s", axis: { format: "~s" } },
        color: {
          field: "client",
          type: "nominal",
          sort: CLIENT_NAMES.map((n) => clientLabel(n, m.mode)),
          scale: { scheme: "tableau10" },
          legend: { title: "client", orient: "right", labelLimit: 260 },
        },
        tooltip: [{ field: "client" }, { field: "concurrency" }, { field: "opsPerSec", format: "," }],
      },
    },
    // Each workload on its own y scale (GET 100 KiB runs at a fraction of
    // GET's rate), and its own x axis so a panel above an empty slot has one.
    resolve: { scale: { y: "independent" }, axis: { x: "independent" } },
  };
  const view = new View(parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
