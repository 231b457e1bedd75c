// respite/otel: OpenTelemetry metrics and spans, built on respite's
// diagnostics channels (src/observability/channels.ts). `@opentelemetry/api`
// is an optional peer dependency: only this entry point imports it, so users
// who never import "respite/otel" need no OpenTelemetry package at all.
//
//   import { instrumentRespite } from "respite/otel";
//   const off = instrumentRespite();          // the global MeterProvider and TracerProvider
//   ...
//   off.disable();
//
// Metrics follow the database semantic conventions: db.client.operation.duration
// (histogram, seconds; db.system.name, db.operation.name, server.address,
// server.port, db.namespace, error.type), db.client.connection.count (per
// client, up while ready), db.client.connection.create_time and
// db.client.connection.wait_time (pooled), plus respite.client.errors by
// error.type and reason. Spans: one CLIENT span per command or batch, a child
// of the context active when it was sent.
import { checkKeys, type KeySet } from "../option-keys.js";
import dc from "node:diagnostics_channel";
import { context, metrics, SpanKind, SpanStatusCode, trace, type Attributes, type MeterProvider, type Span, type TracerProvider } from "@opentelemetry/api";
import {
  batchChannel,
  CHANNELS,
  commandChannel,
  connectChannel,
  type BatchTraceContext,
  type ClientIdentity,
  type CommandTraceContext,
  type ConnectTraceContext,
} from "../observability/channels.js";

export interface InstrumentOptions {
  /** Default: the global one (metrics.getMeterProvider()). */
  meterProvider?: MeterProvider;
  /** Default: the global one (trace.getTracerProvider()). */
  tracerProvider?: TracerProvider;
  /** One span per command and batch. Default true. */
  spans?: boolean;
  /** Default true. */
  metrics?: boolean;
}

const INSTRUMENT_OPTION_KEYS: KeySet<InstrumentOptions> = { meterProvider: true, tracerProvider: true, spans: true, metrics: true };

export interface Instrumentation {
  /** Stop recording (unsubscribes from every channel). */
  disable(): void;
}

const SCOPE = "respite";
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface InFlight {
  startedAt: number;
  span: Span | undefined;
}

function baseAttributes(id: ClientIdentity | ConnectTraceContext): Attributes {
  const a: Attributes = { "db.system.name": "redis", "server.address": id.serverAddress };
  if (id.serverPort !== undefined) a["server.port"] = id.serverPort;
  if ("database" in id) a["db.namespace"] = String(id.database);
  return a;
}

function errorType(error: unknown): string {
  if (error instanceof Error) return (error as { code?: unknown }).code === undefined ? error.name : String((error as { code?: unknown }).code);
  return "_OTHER";
}

/** Start recording every respite client of this process. */
export function instrumentRespite(options: InstrumentOptions = {}): Instrumentation {
  checkKeys("instrumentRespite(options)", options, INSTRUMENT_OPTION_KEYS);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const tracer = options.spans === false ? undefined : (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const recordMetrics = options.metrics !== false;
  const duration = meter.createHistogram("db.client.operation.duration", {
    unit: "s",
    description: "Duration of database client operations.",
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  const connections = meter.createUpDownCounter("db.client.connection.count", { unit: "{connection}", description: "Connections that are ready to serve." });
  const createTime = meter.createHistogram("db.client.connection.create_time", { unit: "s", description: "Time to create a new connection (dial and handshake)." });
  const waitTime = meter.createHistogram("db.client.connection.wait_time", { unit: "s", description: "Time a command waited for a pooled connection." });
  const errors = meter.createCounter("respite.client.errors", { unit: "{error}", description: "Errors a client reported, by class and reason." });

  const ignore = (): void => undefined;
  /** TracingChannel subscribers must name every phase; those not listed do nothing. */
  const phases = { end: ignore, asyncStart: ignore, error: ignore };
  const inFlight = new WeakMap<object, InFlight>();
  const start = (ctx: object, name: string, attributes: Attributes): void => {
    const span = tracer?.startSpan(name, { kind: SpanKind.CLIENT, attributes }, context.active());
    inFlight.set(ctx, { startedAt: performance.now(), span });
  };
  const finish = (ctx: CommandTraceContext | BatchTraceContext, attributes: Attributes): void => {
    const f = inFlight.get(ctx);
    if (f === undefined) return;
    inFlight.delete(ctx);
    const failed = ctx.error !== undefined;
    const attrs: Attributes = failed ? { ...attributes, "error.type": errorType(ctx.error) } : attributes;
    if (recordMetrics) duration.record((performance.now() - f.startedAt) / 1000, attrs);
    if (f.span !== undefined) {
      if (failed) {
        f.span.setAttribute("error.type", errorType(ctx.error));
        if (ctx.maybeExecuted !== undefined) f.span.setAttribute("respite.maybe_executed", ctx.maybeExecuted);
        f.span.setStatus({ code: SpanStatusCode.ERROR, message: ctx.error instanceof Error ? ctx.error.message : String(ctx.error) });
      }
      f.span.end();
    }
  };

  const commandAttributes = (ctx: CommandTraceContext): Attributes => ({ ...baseAttributes(ctx), "db.operation.name": ctx.command, "respite.transport": ctx.transport });
  const commandHandlers = {
    ...phases,
    start(ctx: CommandTraceContext) {
      start(ctx, ctx.command, { ...commandAttributes(ctx), "db.query.text": [ctx.command, ...ctx.args].join(" ") });
    },
    asyncEnd(ctx: CommandTraceContext) {
      finish(ctx, commandAttributes(ctx));
    },
  };
  const batchAttributes = (ctx: BatchTraceContext): Attributes => ({
    ...baseAttributes(ctx),
    "db.operation.name": ctx.batchMode,
    "db.operation.batch.size": ctx.batchSize,
    "respite.transport": ctx.transport,
  });
  const batchHandlers = {
    ...phases,
    start(ctx: BatchTraceContext) {
      start(ctx, ctx.batchMode, batchAttributes(ctx));
    },
    asyncEnd(ctx: BatchTraceContext) {
      finish(ctx, batchAttributes(ctx));
    },
  };
  const connectStarted = new WeakMap<object, number>();
  const connectHandlers = {
    ...phases,
    start(ctx: ConnectTraceContext) {
      connectStarted.set(ctx, performance.now());
    },
    asyncEnd(ctx: ConnectTraceContext) {
      const t0 = connectStarted.get(ctx);
      if (t0 === undefined || !recordMetrics) return;
      const attrs = ctx.error === undefined ? baseAttributes(ctx) : { ...baseAttributes(ctx), "error.type": errorType(ctx.error) };
      createTime.record((performance.now() - t0) / 1000, attrs);
    },
  };
  const points: [string, (message: unknown) => void][] = [
    [CHANNELS.ready, (m) => recordMetrics && connections.add(1, baseAttributes(m as ClientIdentity))],
    [CHANNELS.disconnect, (m) => recordMetrics && connections.add(-1, baseAttributes(m as ClientIdentity))],
    [CHANNELS.poolWait, (m) => recordMetrics && waitTime.record((m as { waitMs: number }).waitMs / 1000, baseAttributes(m as ClientIdentity))],
    [
      CHANNELS.error,
      (m) => {
        if (!recordMetrics) return;
        const { error } = m as { error: unknown };
        const reason = (error as { reason?: unknown }).reason;
        errors.add(1, { ...baseAttributes(m as ClientIdentity), "error.type": errorType(error), ...(typeof reason === "string" ? { "respite.reason": reason } : {}) });
      },
    ],
  ];

  commandChannel.subscribe(commandHandlers);
  batchChannel.subscribe(batchHandlers);
  connectChannel.subscribe(connectHandlers);
  for (const [name, handler] of points) dc.subscribe(name, handler);
  let enabled = true;
  return {
    disable() {
      if (!enabled) return;
      enabled = false;
      commandChannel.unsubscribe(commandHandlers);
      batchChannel.unsubscribe(batchHandlers);
      connectChannel.unsubscribe(connectHandlers);
      for (const [name, handler] of points) dc.unsubscribe(name, handler);
    },
  };
}

export { CHANNELS } from "../observability/channels.js";
export type { BatchTraceContext, ClientIdentity, CommandTraceContext, ConnectTraceContext } from "../observability/channels.js";
