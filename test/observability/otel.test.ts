// respite/otel with the real OpenTelemetry SDK: metrics read through an
// in-memory reader, spans through an in-memory exporter, parents from the
// active context, on both transports.
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Client } from "../../src/index.js";
import { instrumentRespite, type Instrumentation } from "../../src/otel/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";

let server: RedisServer;
let contextManager: AsyncLocalStorageContextManager;
beforeAll(async () => {
  server = await startRedis();
  contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
});
afterAll(async () => {
  context.disable();
  await server.stop();
});

interface Setup {
  spans: InMemorySpanExporter;
  metrics: () => Promise<ResourceMetrics>;
  tracerProvider: BasicTracerProvider;
  off: Instrumentation;
  shutdown(): Promise<void>;
}

function setup(): Setup {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const off = instrumentRespite({ meterProvider, tracerProvider });
  return {
    spans,
    tracerProvider,
    off,
    metrics: async () => (await reader.collect()).resourceMetrics,
    async shutdown() {
      off.disable();
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

function metric(rm: ResourceMetrics, name: string) {
  for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.descriptor.name === name) return m;
  return undefined;
}

describe.each(["pipelined", "pooled"] as const)("%s transport", (transport) => {
  let s: Setup;
  let c: Client;
  beforeAll(() => {
    s = setup();
  });
  afterEach(() => c?.destroy());
  afterAll(async () => {
    await s.shutdown();
  });

  it("one CLIENT span per command, a child of the active span, with the semantic-convention attributes", async () => {
    c = createClient({ host: server.host, port: server.port, transport });
    const tracer = s.tracerProvider.getTracer("test");
    const parent = tracer.startSpan("request");
    await context.with(trace.setSpan(context.active(), parent), async () => {
      await c.command(["SET", `otel:${transport}`, "v"]);
      await c.command(["HGET", `otel:${transport}`, "f"]).catch(() => undefined); // WRONGTYPE
      await c.batch([["GET", `otel:${transport}`], ["GET", `otel:${transport}`]], { atomic: true });
    });
    parent.end();
    const finished = s.spans.getFinishedSpans().filter((sp) => sp.name !== "request");
    expect(finished.map((sp) => sp.name)).toEqual(["SET", "HGET", "MULTI"]);
    for (const sp of finished) {
      expect(sp.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
      expect(sp.attributes["db.system.name"]).toBe("redis");
      expect(sp.attributes["server.address"]).toBe(server.host);
      expect(sp.attributes["server.port"]).toBe(server.port);
      expect(sp.attributes["respite.transport"]).toBe(transport);
    }
    expect(finished[0]?.attributes["db.query.text"]).toBe(`SET otel:${transport} ?`);
    expect(finished[1]?.status.code).toBe(2); // ERROR
    expect(finished[1]?.attributes["error.type"]).toBe("WRONGTYPE");
    expect(finished[1]?.attributes["respite.maybe_executed"]).toBe(true);
    expect(finished[2]?.attributes["db.operation.batch.size"]).toBe(2);
    s.spans.reset();
  });

  it("db.client.operation.duration, connection count and create time", async () => {
    c = createClient({ host: server.host, port: server.port, transport });
    await c.connect();
    for (let i = 0; i < 5; i++) await c.command(["GET", "otel:m"]);
    const rm = await s.metrics();
    const duration = metric(rm, "db.client.operation.duration");
    expect(duration?.descriptor.unit).toBe("s");
    const gets = duration?.dataPoints.filter((p) => p.attributes["db.operation.name"] === "GET" && p.attributes["respite.transport"] === transport) ?? [];
    expect(gets.length).toBe(1);
    expect((gets[0]?.value as { count: number }).count).toBeGreaterThanOrEqual(5);
    expect(gets[0]?.attributes["error.type"]).toBeUndefined();
    const created = metric(rm, "db.client.connection.create_time");
    expect(created?.dataPoints.length).toBeGreaterThanOrEqual(1);
    const count = metric(rm, "db.client.connection.count");
    expect(count?.dataPoints.some((p) => (p.value as number) >= 1)).toBe(true);
  });
});

describe("pool waits", () => {
  it("db.client.connection.wait_time is recorded when a pooled command waited for a socket", async () => {
    const s = setup();
    const c = createClient({ host: server.host, port: server.port, transport: "pooled", pool: { max: 1 } });
    try {
      await Promise.all(Array.from({ length: 10 }, () => c.command(["PING"])));
      const waits = metric(await s.metrics(), "db.client.connection.wait_time");
      expect((waits?.dataPoints[0]?.value as { count: number } | undefined)?.count).toBeGreaterThanOrEqual(9);
    } finally {
      c.destroy();
      await s.shutdown();
    }
  });
});
