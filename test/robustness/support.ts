// Helpers shared by the robustness and chaos suites.
import { afterAll, beforeAll } from "vitest";
import { RedisError, type Client, type Command, type Reply } from "../../src/index.js";

export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

export function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** The error of a settled result that must have been a rejection. */
export function rejection(result: Settled<unknown>): unknown {
  if (result.ok) throw new Error(`expected a rejection, got ${JSON.stringify(result.value)}`);
  return result.error;
}

export const transports = ["pipelined", "pooled"] as const;
export type TransportName = (typeof transports)[number];

/**
 * Collect every unhandled rejection and uncaught exception of the test file,
 * so a test can assert that none escaped the client.
 */
export function trapEscapes(): unknown[] {
  const escaped: unknown[] = [];
  const onEscape = (err: unknown): void => {
    escaped.push(err);
  };
  beforeAll(() => {
    process.on("unhandledRejection", onEscape);
    process.on("uncaughtException", onEscape);
  });
  afterAll(() => {
    process.off("unhandledRejection", onEscape);
    process.off("uncaughtException", onEscape);
  });
  return escaped;
}

/**
 * Send `args` until it succeeds (each failure must be a RedisError), within
 * timeoutMs. Returns the reply. For "the client serves again".
 */
export async function eventually(client: Client, args: Command, timeoutMs = 5000): Promise<Reply> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const r = await settle(client.command(args));
    if (r.ok) return r.value;
    if (!(r.error instanceof RedisError)) throw r.error;
    last = r.error;
    await new Promise((res) => setTimeout(res, 5));
  }
  throw new Error(`${String(args[0])} did not succeed within ${timeoutMs} ms; last error: ${String(last)}`);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Most dials a client may make in `windowMs` of outage under full-jitter
 * backoff (`reconnect`): twice the number of attempts whose mean delays fill
 * the window, plus a few. A reconnect storm makes thousands.
 */
export function dialBound(windowMs: number, reconnect: { initialDelayMs: number; maxDelayMs: number }): number {
  let sum = 0;
  let n = 0;
  while (sum < windowMs) {
    n++;
    sum += Math.min(reconnect.maxDelayMs, reconnect.initialDelayMs * 2 ** (n - 1)) / 2;
  }
  return 2 * n + 5;
}

/**
 * fast-check runs per property: FUZZ_RUNS from the environment, or
 * `defaultRuns` when it is unset or empty. Anything but a positive integer
 * throws at load time: FUZZ_RUNS=0 (or a typo) must not turn the property
 * tests into silent no-ops.
 */
export function fuzzRuns(defaultRuns: number, env: string | undefined = process.env.FUZZ_RUNS): number {
  if (env === undefined || env.trim() === "") return defaultRuns;
  const text = env.trim();
  const runs = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(runs) || runs < 1) {
    throw new Error(`FUZZ_RUNS must be a positive integer (fast-check runs per property), got ${JSON.stringify(env)}; unset it for the default of ${defaultRuns}`);
  }
  return runs;
}
