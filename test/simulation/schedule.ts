// What a simulated run is made of: the client's configuration and the
// schedule of actions (plain objects, so fast-check prints a failing one as
// it is), and the fast-check arbitraries that generate them.
import fc from "fast-check";
import type { DialMode } from "./sim-net.js";

export type Op = "echo" | "get" | "set" | "incrby";

export interface ReconnectConfig {
  initialDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
}

export interface SimConfig {
  transport: "pipelined" | "pooled";
  lazyConnect: boolean;
  /** 0: none. */
  commandTimeoutMs: number;
  /** Always > 0 here: a hung dial must end. */
  connectTimeoutMs: number;
  reconnect: ReconnectConfig | false;
  maxPending: number;
  offlineQueue: number | false;
  retryReadOnly: boolean;
  pool: { min: number; max: number; acquireTimeoutMs: number; idleTimeoutMs: number };
  /** Half-open detection (0: off): a PING after half an interval of silence, the socket dropped after a whole one. */
  healthCheckIntervalMs: number;
  /** The client's protocol option (3: HELLO 3 first, RESP2 fallback). */
  protocol: 2 | 3;
  /** The server knows HELLO (Redis >= 6); false: it answers "unknown command" (Redis < 6). */
  serverHello: boolean;
  /** Seeds Math.random (the backoff's jitter) for this run. */
  randomSeed: number;
}

export type Action =
  /** command(): ECHO token / GET of a key holding token / SET key token / INCRBY unique-key n. */
  | { t: "cmd"; op: Op; timeoutMs?: number; abortMs?: number }
  /** batch(): plain or atomic (MULTI/EXEC). */
  | { t: "batch"; atomic: boolean; ops: Op[]; timeoutMs?: number; abortMs?: number }
  /** How the server answers the next dials. */
  | { t: "dial"; mode: DialMode }
  | { t: "freeze" }
  | { t: "unfreeze" }
  /** Replies (and the server's FIN) arrive this much later from now on. */
  | { t: "delay"; ms: number }
  /** The next reply is cut in half, then the connection closes. */
  | { t: "cut" }
  /** Every server connection closes now (rst: a reset instead of a FIN). */
  | { t: "kill"; rst: boolean }
  /** Client writes return false and are held back for ms, then 'drain'. */
  | { t: "stall"; ms: number }
  | { t: "advance"; ms: number }
  /** close(), or close({ timeoutMs }). */
  | { t: "close"; timeoutMs?: number }
  | { t: "destroy" }
  // ---- pub/sub ----
  | { t: "subscribe"; ch: number }
  | { t: "unsubscribe"; ch: number }
  /** Another client publishes a (unique) message on channel ch. */
  | { t: "publish"; ch: number };

const opArb: fc.Arbitrary<Op> = fc.constantFrom("echo", "get", "set", "incrby");
const deadline = fc.integer({ min: 1, max: 2500 });
const abortAfter = fc.integer({ min: 0, max: 2500 });

const cmdArb: fc.Arbitrary<Action> = fc.record(
  { t: fc.constant("cmd" as const), op: opArb, timeoutMs: deadline, abortMs: abortAfter },
  { requiredKeys: ["t", "op"] },
);

const batchArb: fc.Arbitrary<Action> = fc.record(
  { t: fc.constant("batch" as const), atomic: fc.boolean(), ops: fc.array(opArb, { minLength: 1, maxLength: 4 }), timeoutMs: deadline, abortMs: abortAfter },
  { requiredKeys: ["t", "atomic", "ops"] },
);

const faultArbs: { weight: number; arbitrary: fc.Arbitrary<Action> }[] = [
  { weight: 6, arbitrary: fc.record({ t: fc.constant("dial" as const), mode: fc.constantFrom<DialMode>("accept", "refuse", "hang", "accept-then-close") }) },
  { weight: 3, arbitrary: fc.constant({ t: "freeze" as const }) },
  { weight: 4, arbitrary: fc.constant({ t: "unfreeze" as const }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("delay" as const), ms: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1500 })) }) },
  { weight: 4, arbitrary: fc.constant({ t: "cut" as const }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant("kill" as const), rst: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("stall" as const), ms: fc.integer({ min: 1, max: 1500 }) }) },
];

const advanceArb: fc.Arbitrary<Action> = fc.record({
  t: fc.constant("advance" as const),
  ms: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 60 }) }, { weight: 3, arbitrary: fc.integer({ min: 61, max: 1500 }) }, { weight: 1, arbitrary: fc.integer({ min: 1501, max: 8000 }) }),
});

const closeArb: fc.Arbitrary<Action> = fc.record({ t: fc.constant("close" as const), timeoutMs: fc.integer({ min: 1, max: 3000 }) }, { requiredKeys: ["t"] });

/** Commands, batches, faults, time, close() and destroy(), interleaved. */
export function clientActions(): fc.Arbitrary<Action> {
  return fc.oneof(
    { weight: 28, arbitrary: cmdArb },
    { weight: 8, arbitrary: batchArb },
    { weight: 24, arbitrary: advanceArb },
    ...faultArbs,
    { weight: 3, arbitrary: closeArb },
    { weight: 2, arbitrary: fc.constant({ t: "destroy" as const }) },
  );
}

/** Subscribe / unsubscribe / publish, faults, time, close() and destroy(). */
export function subscriberActions(): fc.Arbitrary<Action> {
  const ch = fc.integer({ min: 0, max: 3 });
  return fc.oneof(
    { weight: 14, arbitrary: fc.record({ t: fc.constant("subscribe" as const), ch }) },
    { weight: 6, arbitrary: fc.record({ t: fc.constant("unsubscribe" as const), ch }) },
    { weight: 16, arbitrary: fc.record({ t: fc.constant("publish" as const), ch }) },
    { weight: 22, arbitrary: advanceArb },
    ...faultArbs,
    { weight: 2, arbitrary: closeArb },
    { weight: 2, arbitrary: fc.constant({ t: "destroy" as const }) },
  );
}

export function configArb(transport: SimConfig["transport"], opts: { lazy?: boolean } = {}): fc.Arbitrary<SimConfig> {
  const reconnect: fc.Arbitrary<ReconnectConfig | false> = fc.oneof(
    {
      weight: 12,
      arbitrary: fc.record({
        initialDelayMs: fc.integer({ min: 1, max: 300 }),
        maxDelayMs: fc.integer({ min: 10, max: 3000 }),
        maxAttempts: fc.oneof({ weight: 3, arbitrary: fc.constant(Number.POSITIVE_INFINITY) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 6 }) }),
      }),
    },
    { weight: 1, arbitrary: fc.constant(false as const) },
  );
  const pool = fc
    .record({
      max: fc.integer({ min: 1, max: 3 }),
      min: fc.integer({ min: 0, max: 1 }),
      acquireTimeoutMs: fc.oneof(fc.constant(0), fc.integer({ min: 50, max: 3000 })),
      idleTimeoutMs: fc.oneof(fc.constant(0), fc.integer({ min: 100, max: 5000 })),
    })
    .map((p) => ({ ...p, min: Math.min(p.min, p.max) }));
  return fc
    .record({
    transport: fc.constant(transport),
    lazyConnect: opts.lazy !== undefined ? fc.constant(opts.lazy) : fc.boolean(),
    commandTimeoutMs: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 20, max: 3000 }) }),
    connectTimeoutMs: fc.integer({ min: 20, max: 3000 }),
    reconnect,
    maxPending: fc.integer({ min: 1, max: 12 }),
    offlineQueue: fc.oneof({ weight: 1, arbitrary: fc.constant(false as const) }, { weight: 4, arbitrary: fc.integer({ min: 1, max: 12 }) }),
    retryReadOnly: fc.boolean(),
    pool,
    healthCheckIntervalMs: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 20, max: 2000 }) }),
    protocol: fc.constantFrom<2 | 3>(3, 2),
    serverHello: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    randomSeed: fc.integer(),
  });
}

/** Full-jitter cap of the delay before redial `attempt`. */
export function backoffCap(reconnect: ReconnectConfig, attempt: number): number {
  return Math.min(reconnect.initialDelayMs * 2 ** Math.max(0, attempt - 1), reconnect.maxDelayMs);
}
