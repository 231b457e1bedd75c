// generic-pool, set up for sockets: validate on borrow, LIFO reuse, and an
// evictor that also removes sockets the server closed while they sat idle.
//
// Why the evictor: generic-pool's destroy() only takes a borrowed resource;
// an idle one can leave the pool only through validation on borrow or the
// evictor. The evictor is pluggable through the Pool constructor (exported by
// generic-pool, though its typings omit the parameters), so we pass our own.
import genericPool, { type Factory, type Pool } from "generic-pool";

export interface SlotPolicy<T> {
  create(): Promise<T>;
  destroy(slot: T): Promise<void>;
  /** In-memory check on borrow and by the evictor: false destroys the slot. */
  usable(slot: T): boolean;
  /** The evictor asks: may this idle slot be closed after idleMs idle? */
  expired(slot: T, idleMs: number): boolean;
}

export interface SocketPoolOptions {
  min: number;
  max: number;
  /** How often the evictor looks at idle slots. */
  evictionRunIntervalMs: number;
}

/** The part of generic-pool's PooledResource the evictor reads. */
interface PooledResource<T> {
  obj: T;
  lastIdleTime: number;
}

type PoolConstructor<T> = new (
  evictor: new () => { evict(config: unknown, resource: PooledResource<T>, availableCount: number): boolean },
  deque: unknown,
  priorityQueue: unknown,
  factory: Factory<T>,
  options: genericPool.Options,
) => Pool<T>;

export function createSocketPool<T>(policy: SlotPolicy<T>, options: SocketPoolOptions): Pool<T> {
  class Evictor {
    evict(_config: unknown, resource: PooledResource<T>): boolean {
      return !policy.usable(resource.obj) || policy.expired(resource.obj, Date.now() - resource.lastIdleTime);
    }
  }
  const factory: Factory<T> = {
    create: () => policy.create(),
    destroy: (slot) => policy.destroy(slot),
    validate: (slot) => Promise.resolve(policy.usable(slot)),
  };
  // index.js exports these three beside createPool; the typings list only Pool, without its parameters.
  const gp = genericPool as unknown as { Pool: PoolConstructor<T>; Deque: unknown; PriorityQueue: unknown };
  return new gp.Pool(Evictor, gp.Deque, gp.PriorityQueue, factory, {
    min: options.min,
    max: options.max,
    // Nothing is dialed before the first command or connect() (lazyConnect,
    // and the pipelined client's dedicated pool, created on first use).
    autostart: false,
    testOnBorrow: true,
    // LIFO: the most recently used socket goes out first, so under light load
    // the others stay idle long enough for the evictor to close them.
    fifo: false,
    evictionRunIntervalMillis: options.evictionRunIntervalMs,
    numTestsPerEvictionRun: options.max,
    // Our own waiting list bounds waiters and applies acquireTimeoutMs; the
    // pool only ever sees as many acquires as it has room for sockets.
  });
}
