// The parts of one cluster client that its routing and batching code share.
// ClusterClient builds it once, in its constructor.
import type { EmitClusterEvent } from "./events.js";
import type { NodeRegistry } from "./node-registry.js";
import type { ResolvedClusterOptions } from "./options.js";
import type { RefreshScheduler } from "./refresh-scheduler.js";
import type { SlotRouter } from "./router.js";
import type { Sleeps } from "./sleeps.js";
import type { ClusterCounters } from "./stats.js";

export interface ClusterContext {
  readonly options: ResolvedClusterOptions;
  readonly counters: ClusterCounters;
  readonly nodes: NodeRegistry;
  readonly router: SlotRouter;
  readonly refresher: RefreshScheduler;
  readonly sleeps: Sleeps;
  readonly emit: EmitClusterEvent;
  isClosed(): boolean;
}
