// Option objects are checked for names we do not know: a JavaScript caller
// has no compiler to catch `scan({ MATCH: "user:*" })`, and an option that is
// silently ignored (a SCAN that walks every key, a timeout that never fires)
// is worse than an error. Every public option object goes through checkKeys()
// (or, on the per-command hot path, its switch-based twin in request.ts),
// which throws a TypeError naming the option and the nearest valid one.
import type { BatchOptions } from "./batch.js";
import type { CloseOptions } from "./client.js";
import type { SubscribeOptions } from "./pubsub/subscriber.js";

/** The valid names of an options type: TypeScript insists that every key of T is listed, and nothing else. */
export type KeySet<T> = { readonly [K in keyof Required<T>]: true };

/**
 * Throw a TypeError if `object` has an own enumerable key that is not in
 * `allowed`. `where` says which call ("createClient(options)"), `path` the
 * nesting ("pool.") so the message names the option as the caller wrote it.
 */
export function checkKeys(where: string, object: unknown, allowed: KeySet<object> | readonly string[], path = ""): void {
  if (typeof object !== "object" || object === null || Array.isArray(object)) {
    const what = path === "" ? "options" : `option "${path.slice(0, -1)}"`;
    const got = object === null ? "null" : Array.isArray(object) ? "an array" : typeof object;
    throw new TypeError(`${where}: ${what} must be an object, got ${got}`);
  }
  const list = Array.isArray(allowed) ? (allowed as readonly string[]) : undefined;
  for (const key of Object.keys(object)) {
    const known = list === undefined ? Object.hasOwn(allowed, key) : list.includes(key);
    if (!known) throw unknownOption(where, key, list ?? Object.keys(allowed), path);
  }
}

/** `${where}: unknown option "${path}${name}"; did you mean "..."?` (or the valid names, when none is near). */
export function unknownOption(where: string, name: string, allowed: readonly string[], path = ""): TypeError {
  const near = nearest(name, allowed);
  const hint =
    near !== undefined
      ? `did you mean "${path}${near}"?`
      : allowed.length === 0
        ? "it takes no options"
        : `valid options are ${allowed.map((a) => `"${path}${a}"`).join(", ")}`;
  return new TypeError(`${where}: unknown option "${path}${name}"; ${hint}`);
}

/**
 * The valid name the caller most likely meant: the same name in another case
 * (MATCH -> match), else the closest one within an edit distance of 2
 * (maxAttemps -> maxAttempts, ties to the first listed); undefined when none.
 */
export function nearest(name: string, allowed: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const sameCase = allowed.find((a) => a.toLowerCase() === lower);
  if (sameCase !== undefined) return sameCase;
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = distance(lower, candidate.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance; gives up (returns `limit`) once it cannot be below `limit`. */
function distance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
      current.push(value);
      if (value < rowMin) rowMin = value;
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return Math.min(previous[b.length] as number, limit);
}

// Checks for option objects whose calls live in files of their own (client.ts,
// cluster-client.ts, the pub/sub code): each is one line at the call's start.

const BATCH_OPTION_KEYS: KeySet<BatchOptions> = { atomic: true, returnBuffers: true, timeoutMs: true, signal: true };
const CLOSE_OPTION_KEYS: KeySet<CloseOptions> = { timeoutMs: true };
const SUBSCRIBE_OPTION_KEYS: KeySet<SubscribeOptions> = { returnBuffers: true };

/** batch(commands, options): throws a TypeError for an unknown option name. */
export function checkBatchOptions(options: BatchOptions | undefined): void {
  if (options !== undefined) checkKeys("batch(commands, options)", options, BATCH_OPTION_KEYS);
}

/** close(options): throws a TypeError for an unknown option name. */
export function checkCloseOptions(options: CloseOptions | undefined): void {
  if (options !== undefined) checkKeys("close(options)", options, CLOSE_OPTION_KEYS);
}

/** subscribe / psubscribe / ssubscribe(..., options): throws a TypeError for an unknown option name. */
export function checkSubscribeOptions(options: SubscribeOptions | undefined): void {
  if (options !== undefined) checkKeys("subscribe(..., options)", options, SUBSCRIBE_OPTION_KEYS);
}

const CONNECT_OPTION_KEYS: KeySet<{ timeoutMs?: number }> = { timeoutMs: true };

/** connect(options): throws a TypeError for an unknown option name. */
export function checkConnectOptions(options: { timeoutMs?: number } | undefined): void {
  if (options !== undefined) checkKeys("connect(options)", options, CONNECT_OPTION_KEYS);
}

/**
 * close({ timeoutMs }) or connect({ timeoutMs }), checked: the bound in ms
 * (0: none). Throws a TypeError for an unknown option or a bad number.
 */
export function timeoutOption(call: "close" | "connect", options: { timeoutMs?: number } | undefined): number {
  if (call === "close") checkCloseOptions(options);
  else checkConnectOptions(options);
  const timeoutMs = options?.timeoutMs ?? 0;
  if (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new TypeError(`${call}({ timeoutMs }) must be a non-negative number, got ${String(timeoutMs)}`);
  }
  return Number.isFinite(timeoutMs) ? timeoutMs : 0;
}
