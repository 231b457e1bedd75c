// The cluster client's counters: bumped in place by the parts that route,
// redirect and refresh; read as a copy through ClusterClient.stats().
import type { ReplyError } from "../errors.js";

/** Counters since the cluster client was created. */
export interface ClusterStats {
  moved: number;
  ask: number;
  tryAgain: number;
  clusterDown: number;
  /** Commands sent again after their node was lost (never written, or a read). */
  rerouted: number;
  refreshes: number;
  refreshFailures: number;
  /** Node clients open now. */
  nodes: number;
}

/** Everything but `nodes`, which is counted when asked. */
export type ClusterCounters = Omit<ClusterStats, "nodes">;

export function newCounters(): ClusterCounters {
  return { moved: 0, ask: 0, tryAgain: 0, clusterDown: 0, rerouted: 0, refreshes: 0, refreshFailures: 0 };
}

/** The replies that say a command did not run where it was sent, and the counter each bumps. */
const REDIRECT_COUNTER = { MOVED: "moved", ASK: "ask", TRYAGAIN: "tryAgain", CLUSTERDOWN: "clusterDown" } as const;

export type RedirectCode = keyof typeof REDIRECT_COUNTER;

export function isRedirect(err: ReplyError): err is ReplyError & { code: RedirectCode } {
  return Object.hasOwn(REDIRECT_COUNTER, err.code);
}

export function countRedirect(counters: ClusterCounters, code: RedirectCode): void {
  counters[REDIRECT_COUNTER[code]]++;
}
