// Reconnect delays: capped exponential growth with full jitter
// (delay = random(0, min(maxDelay, initial * 2^attempt))).
//
// The numbers come from exponential-backoff's own option sanitising and
// jitter. We do not use its backOff() driver: its sleep cannot be cancelled
// (close() during backoff must leave no timer behind, so the process can exit)
// and it does not tell us each delay, which the `reconnecting` event reports.
import { getSanitizedOptions } from "exponential-backoff/dist/options.js";
import { JitterFactory } from "exponential-backoff/dist/jitter/jitter.factory.js";

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
