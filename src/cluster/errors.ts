// The cluster's internal stand-in for the server's CLUSTERDOWN. Its public
// error classes (CrossSlotError, RedirectionLimitError) live with all the
// others in src/errors.ts.
import { ReplyError } from "../errors.js";

/**
 * No node serves `slot` in the topology we have. Handled as the server's own
 * CLUSTERDOWN would be (wait, refresh, route again), so it is one: a
 * ReplyError with that code, never shown to a caller except as a cause.
 */
export function slotNotServed(slot: number | undefined, command: string): ReplyError {
  return new ReplyError(`CLUSTERDOWN Hash slot ${String(slot)} not served`, command);
}
