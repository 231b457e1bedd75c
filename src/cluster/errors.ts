// Cluster errors (issue 10). Like every respite error they carry data
// (`code`, `maybeExecuted`, and here the slots or the redirection count) so
// callers branch on fields, never on message text.
import { RedisError, ReplyError, type RedisErrorOptions } from "../errors.js";

/**
 * A command (or an atomic batch) names keys in more than one hash slot, so no
 * single node can run it. Raised before anything is sent: never executed.
 * Use a {hash tag} to put keys in one slot, or the splitting helpers
 * (mget, mset, del, exists, unlink) which fan out per slot.
 */
export class CrossSlotError extends RedisError {
  /** Upper-case command name ("EXEC" for an atomic batch). */
  readonly command: string;
  /** The distinct slots, in the order the keys named them. */
  readonly slots: number[];

  constructor(command: string, slots: number[]) {
    super(`${command} names keys in ${slots.length} hash slots (${slots.slice(0, 8).join(", ")}${slots.length > 8 ? ", ..." : ""}); keys of one command must share a slot`, "ECROSSSLOT", false);
    this.command = command;
    this.slots = slots;
  }
}

/**
 * The command was redirected or retried (MOVED, ASK, TRYAGAIN, CLUSTERDOWN,
 * or re-routed after its node was lost) more than maxRedirections times.
 * Every one of those answers means it did not run: maybeExecuted is false.
 * `cause` holds the last error.
 */
export class RedirectionLimitError extends RedisError {
  readonly command: string;
  readonly redirections: number;

  constructor(command: string, redirections: number, options?: RedisErrorOptions) {
    super(`${command} was redirected ${redirections} times without being served; giving up`, "EREDIRECTIONS", false, options);
    this.command = command;
    this.redirections = redirections;
  }
}

/**
 * No node serves `slot` in the topology we have. Handled as the server's own
 * CLUSTERDOWN would be (wait, refresh, route again), so it is one: a
 * ReplyError with that code, never shown to a caller except as a cause.
 */
export function slotNotServed(slot: number | undefined, command: string): ReplyError {
  return new ReplyError(`CLUSTERDOWN Hash slot ${String(slot)} not served`, command);
}
