// One command's journey across redirections and retries: a budget of
// maxRedirections, a backoff that grows with each wait, and one deadline for
// the whole journey (a resend gets what is left of it).
import { commandName, semantics } from "../commands.js";
import { TimeoutError } from "../errors.js";
import type { Command } from "../protocol/encode.js";
import type { CommandOptions } from "../request.js";
import { RedirectionLimitError } from "../errors.js";

/** TRYAGAIN / CLUSTERDOWN / lost node: wait BASE * 2^n ms (capped, jittered 50-100 %) before resending. */
const RETRY_BASE_MS = 25;
const RETRY_MAX_MS = 1000;

export interface Journey {
  redirections: number;
  /** Backoff exponent for TRYAGAIN / CLUSTERDOWN / lost nodes. */
  waits: number;
  /** A read that may have executed was sent again: its one retry is spent. */
  readRetried: boolean;
}

export function newJourney(): Journey {
  return { redirections: 0, waits: 0, readRetried: false };
}

/** Spend one redirection; the error to reject with instead when none is left. */
export function spendRedirection(journey: Journey, maxRedirections: number, command: string, cause: Error): RedirectionLimitError | undefined {
  if (journey.redirections >= maxRedirections) return new RedirectionLimitError(command, journey.redirections, { cause });
  journey.redirections++;
  return undefined;
}

/** The next backoff wait, growing with each one taken. */
export function nextWaitMs(journey: Journey): number {
  const cap = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** journey.waits++);
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/** The whole deadline in ms, from the options or commandTimeoutMs (0: none). */
export function totalTimeoutMs(options: CommandOptions | undefined, commandTimeoutMs: number): number {
  const t = options?.timeoutMs ?? commandTimeoutMs;
  return t > 0 && Number.isFinite(t) ? t : 0;
}

/** A resend gets what is left of the command's deadline; throws TimeoutError when nothing is. */
export function remainingOptions(args: Command, options: CommandOptions | undefined, started: number, commandTimeoutMs: number): CommandOptions | undefined {
  const total = totalTimeoutMs(options, commandTimeoutMs);
  if (total === 0) return options;
  // A blocking command's own timeout is added by the node client when none is given.
  if (options?.timeoutMs === undefined && semantics(args).holds) return options;
  const left = total - (Date.now() - started);
  if (left <= 0) throw new TimeoutError(commandName(args), total, false);
  return { ...options, timeoutMs: left };
}
