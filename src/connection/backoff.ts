// Reconnect delays: capped exponential growth with full jitter
// (delay = random(0, min(maxDelay, initial * 2^(attempt - 1))), attempt counting from 1).
//
// The numbers come from exponential-backoff's own option sanitising and
// jitter. We do not use its backOff() driver: its sleep cannot be cancelled
// (close() during backoff must leave no timer behind, so the process can exit)
// and it does not tell us each delay, which the `reconnecting` event reports.
import { getSanitizedOptions } from "exponential-backoff/dist/options.js";
import { JitterFactory } from "exponential-backoff/dist/jitter/jitter.factory.js";
import { ConnectionError, type RedisError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";

export type ReconnectPolicy = ResolvedOptions["reconnect"];

export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
}

export function createBackoff(policy: BackoffPolicy): (attempt: number) => number {
  const options = getSanitizedOptions({
    startingDelay: policy.initialDelayMs,
    maxDelay: policy.maxDelayMs,
    timeMultiple: 2,
    jitter: "full",
  });
  const jitter = JitterFactory(options);
  return (attempt) => {
    const capped = Math.min(options.startingDelay * Math.pow(options.timeMultiple, Math.max(0, attempt - 1)), options.maxDelay);
    return jitter(capped);
  };
}

/** The delays of a client's `reconnect` option (reconnect: false still makes its first dial at once). */
export function reconnectBackoff(policy: ReconnectPolicy): (attempt: number) => number {
  return createBackoff(policy === false ? { initialDelayMs: 0, maxDelayMs: 0 } : policy);
}

/** Connect failures that retrying cannot fix (a wrong password stays wrong): the owner closes, no retry loop. */
export function isFatalConnectError(error: unknown): error is ConnectionError {
  return error instanceof ConnectionError && (error.reason === "auth-failed" || error.reason === "handshake-failed");
}

/**
 * The error that ends an owner whose reconnect policy allows no further
 * dial (`attempt` is the dial about to be made), or undefined to go on.
 */
export function reconnectExhausted(policy: ReconnectPolicy, attempt: number, cause: RedisError, what = "Could not connect"): ConnectionError | undefined {
  if (policy !== false && attempt <= policy.maxAttempts) return undefined;
  const why = policy === false ? "reconnect is disabled" : `gave up after ${policy.maxAttempts} attempts`;
  return new ConnectionError(`${what} (${why}): ${cause.message}`, "reconnect-exhausted", false, { cause });
}
