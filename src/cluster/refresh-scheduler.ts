// When the topology is read again: on demand (refresh(), the first command);
// in the background after MOVED, CLUSTERDOWN or a lost node, rate limited so
// a burst of triggers shares one read; every refreshIntervalMs; and, while a
// node serving slots stays unreachable, every 100 ms or so until it is back
// or has left the topology (a failover needs the new master found fast).
// One refresh at a time, shared by every trigger; background refreshes back
// off while refreshes keep failing (every node down).
import { ClientClosedError } from "../errors.js";

/** While a node serving slots is unreachable, refresh this often (doubling on failed refreshes, to 2 s). */
const DOWN_REFRESH_MS = 100;
const DOWN_REFRESH_MAX_MS = 2000;
/** Background refreshes start at most this often (doubling on failed refreshes, to 2 s); triggers in between share one. */
const MIN_REFRESH_GAP_MS = 100;

export interface SchedulerDeps {
  /** Read and install the topology once. */
  load(): Promise<void>;
  isClosed(): boolean;
  /** Is a node we route to still without a connection? */
  anyNodeDown(): boolean;
  reportError(err: unknown): void;
}

export class RefreshScheduler {
  private refreshing: Promise<void> | undefined;
  private periodicTimer: NodeJS.Timeout | undefined;
  private downTimer: NodeJS.Timeout | undefined;
  private gapTimer: NodeJS.Timeout | undefined;
  private lastRefreshAt = 0;
  /** Refreshes in a row that failed. */
  private failStreak = 0;

  constructor(
    private readonly deps: SchedulerDeps,
    intervalMs: number,
  ) {
    if (intervalMs > 0) {
      this.periodicTimer = setInterval(() => this.inBackground(), intervalMs);
      this.periodicTimer.unref();
    }
  }

  /** A refresh is under way. */
  get running(): boolean {
    return this.refreshing !== undefined;
  }

  /** Read the topology now, or join the read under way. */
  refresh(): Promise<void> {
    if (this.deps.isClosed()) return Promise.reject(new ClientClosedError());
    this.refreshing ??= this.deps.load().then(
      () => {
        this.refreshing = undefined;
        this.lastRefreshAt = Date.now();
        this.failStreak = 0;
      },
      (err: unknown) => {
        this.refreshing = undefined;
        this.lastRefreshAt = Date.now();
        this.failStreak++;
        throw err;
      },
    );
    return this.refreshing;
  }

  /** A refresh soon: now, or (rate limited) a gap after the last one; joins one under way. */
  inBackground(): void {
    if (this.deps.isClosed() || this.refreshing !== undefined || this.gapTimer !== undefined) return;
    const wait = this.lastRefreshAt + this.backoffMs(MIN_REFRESH_GAP_MS) - Date.now();
    if (wait > 0) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = undefined;
        this.inBackground();
      }, wait);
      this.gapTimer.unref();
      return;
    }
    this.refresh().catch((err: unknown) => this.deps.reportError(err));
  }

  /** A node lost its connection: refresh now, and keep refreshing while a serving node stays down. */
  nodeLost(): void {
    if (this.deps.isClosed()) return;
    this.inBackground();
    this.scheduleDownCheck();
  }

  stop(): void {
    if (this.periodicTimer !== undefined) clearInterval(this.periodicTimer);
    if (this.downTimer !== undefined) clearTimeout(this.downTimer);
    if (this.gapTimer !== undefined) clearTimeout(this.gapTimer);
    this.periodicTimer = undefined;
    this.downTimer = undefined;
    this.gapTimer = undefined;
  }

  /** `baseMs`, doubling with each refresh in a row that failed, to DOWN_REFRESH_MAX_MS. */
  private backoffMs(baseMs: number): number {
    return Math.min(DOWN_REFRESH_MAX_MS, baseMs * 2 ** this.failStreak);
  }

  private scheduleDownCheck(): void {
    if (this.downTimer !== undefined || this.deps.isClosed()) return;
    this.downTimer = setTimeout(() => {
      this.downTimer = undefined;
      if (!this.deps.anyNodeDown()) return;
      this.refresh().then(
        () => this.scheduleDownCheck(),
        (err: unknown) => {
          this.deps.reportError(err);
          this.scheduleDownCheck();
        },
      );
    }, this.backoffMs(DOWN_REFRESH_MS));
    this.downTimer.unref();
  }
}
