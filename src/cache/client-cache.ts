// The client-side cache's store: entries by cache key (command + arguments +
// reply form), an index from each Redis key to its entries (so one
// invalidation drops GET k, HGET k f, LRANGE k 0 -1 ... together), an LRU
// list bounded in bytes, an optional TTL, and the guards that keep a reply
// from being stored once it may be stale:
//
// - epoch: bumped by every flush (a connection lost, FLUSHALL, a failover,
//   tracking not on). A read stores its reply only if the epoch it was sent
//   under is still the current one, so a read in flight across a flush is
//   never stored. While tracking is not established the cache hands out
//   tickets that can never store (epoch -1).
// - the invalidations seen while a read was in flight: every invalidation
//   (from the server, or a write this client sends) is numbered and its key
//   kept in a ring of the last INVALIDATION_RING ones; a read stores its reply
//   only if none of those since it was sent names its key (more of them than
//   the ring holds: it does not store, to be safe).
//
// Lookups: a command with one argument (GET k, HGETALL k ...) has a table of
// its own, keyed by that argument as given, so a hit builds no string (and a
// key string used again hashes once); other shapes share one table keyed by
// the whole command.
//
// The store knows nothing of connections; the controller (tracking.ts)
// decides when to flush and when tickets may store.
//
// Memory: every entry counts its cache key, its Redis key, its value and
// ENTRY_OVERHEAD_BYTES (the Entry object, its slots in two Maps, the LRU
// links), measured by test/cache/client-cache-memory.test.ts; strings count
// one byte per character when ASCII, two otherwise (V8's two string forms).
// Buffers are stored as one-byte strings of their bytes (no ArrayBuffer, no
// pooled slab kept alive) and handed out as a fresh Buffer on every hit:
// a caller that writes into its Buffer cannot change what the next one reads.
// Every other value is shared between hits without copying: strings are
// immutable, numbers too, and arrays are frozen (deeply) when stored.
import type { Reply } from "../protocol/decode.js";
import type { Command } from "../protocol/encode.js";

/** Bytes counted for each entry on top of its keys and value (see the header). */
export const ENTRY_OVERHEAD_BYTES = 240;
/** An entry larger than this share of maxBytes is not stored (it would flush the rest). */
export const MAX_ENTRY_SHARE = 8;

export interface ClientCacheStats {
  /** Reads answered from the cache. */
  hits: number;
  /** Reads of cacheable commands that went to the server. */
  misses: number;
  /** Entries dropped to stay under maxBytes, or past their ttlMs. */
  evictions: number;
  /** Entries dropped because their key changed (the server said so, or this client wrote it). */
  invalidations: number;
  /** Times the whole cache was emptied (a connection lost, FLUSHALL/FLUSHDB, a failover, slots moved). */
  flushes: number;
  /** Entries held now. */
  entries: number;
  /** Bytes held now (as counted against maxBytes). */
  bytes: number;
  /** maxBytes. */
  maxBytes: number;
  /** Can hits be served now (tracking established and the invalidation channel recently proven)? */
  tracking: boolean;
}

/** A Buffer inside a stored array: its bytes as a one-byte string. */
class Bin {
  constructor(readonly s: string) {}
}

const enum Form {
  /** Shared as is (strings, numbers, null, frozen arrays of those). */
  Plain,
  /** One Buffer, stored as a one-byte string. */
  Buffer,
  /** An array holding Bin values: rebuilt per hit. */
  Nested,
}

/**
 * Entries by key; one per command with one argument (keyed by that argument,
 * which is the Redis key: an invalidation finds them with one lookup per
 * table holding entries), and `general` for the rest (keyed by the whole
 * command, found through the Redis key index).
 */
export class Table {
  readonly map = new Map<string, Entry>();
  /** Holds entries since the last flush (in `active`). */
  active = false;
  constructor(readonly indexed: boolean) {}
}

class Entry {
  /** LRU links: `newer` toward the head (most recent), `older` toward the tail. */
  newer: Entry | null = null;
  older: Entry | null = null;
  /** The next entry of the same Redis key. */
  sibling: Entry | null = null;
  /** Hit since it last reached the tail of the LRU list (second chance). */
  used = false;
  /** In the Redis key index (general entries, and a one-argument entry whose key is not its Redis key's name). */
  indexed = false;
  /** Plain values: one resolved promise handed to every hit (no allocation per hit). */
  promise: Promise<Reply> | undefined = undefined;
  constructor(
    readonly table: Table,
    readonly key: string,
    readonly redisKey: string,
    readonly value: unknown,
    readonly form: Form,
    readonly bytes: number,
    readonly expiresAt: number,
  ) {}
}

/** How many recent invalidations a read in flight is checked against. */
export const INVALIDATION_RING = 256;

/** A read on its way to the server: may its reply be stored? */
export interface Ticket {
  readonly table: Table;
  readonly key: string;
  readonly redisKey: string;
  readonly epoch: number;
  /** The number of the last invalidation when it was sent. */
  readonly seq: number;
}

type WellFormed = string & { isWellFormed(): boolean; toWellFormed(): string };

/**
 * The key as the server names it in an invalidation (UTF-8 bytes, decoded).
 * A string with a lone surrogate goes out as U+FFFD's bytes, so it is
 * normalised the same way; Buffers decode like the invalidation's keys.
 * Distinct binary keys may share a name here: that only invalidates more.
 */
export function redisKeyName(arg: unknown): string {
  if (typeof arg === "string") return (arg as WellFormed).isWellFormed() ? arg : (arg as WellFormed).toWellFormed();
  if (Buffer.isBuffer(arg)) return arg.toString("utf8");
  return String(arg);
}

/** `name` (lower case), then every argument tagged with its kind and, but for the last, its length: unambiguous. */
export function cacheKeyOf(name: string, args: Command, binary: boolean): string | undefined {
  let k = binary ? name + "\u0000b" : name + "\u0000s";
  const last = args.length - 1;
  for (let i = 1; i <= last; i++) {
    const a = args[i];
    let text: string;
    let tag: string;
    if (typeof a === "string") {
      text = a;
      tag = "s";
    } else if (typeof a === "number" || typeof a === "bigint") {
      text = String(a);
      tag = "s";
    } else if (Buffer.isBuffer(a)) {
      text = a.toString("latin1");
      tag = "b";
    } else {
      return undefined;
    }
    k += i === last ? "\u0000" + tag + text : "\u0000" + tag + text.length + ":" + text;
  }
  return k;
}

/** A string's heap bytes: V8 keeps one byte per character when all are Latin-1, else two. Short ones count two (no scan). */
function stringBytes(s: string): number {
  const n = s.length;
  if (n <= 64) return 24 + 2 * n;
  return 24 + (/[^\u0000-\u00ff]/.test(s) ? 2 * n : n);
}

/** Bytes of a value as stored; -1 for a value the cache does not keep (RESP3 maps and sets, errors). */
function valueBytes(v: unknown): number {
  if (v === null) return 8;
  switch (typeof v) {
    case "string":
      return stringBytes(v);
    case "number":
      return 16;
    case "bigint":
      return 24;
    case "boolean":
      return 8;
    default:
      break;
  }
  if (v instanceof Bin) return 24 + v.s.length + 24;
  if (Array.isArray(v)) {
    let n = 48 + 8 * v.length;
    for (const x of v) {
      const b = valueBytes(x);
      if (b < 0) return -1;
      n += b;
    }
    return n;
  }
  return -1;
}

/** The form the store keeps: Buffers become one-byte strings (the caller keeps its own Buffer), arrays are copied if they hold Buffers. */
function toStored(reply: Reply): { value: unknown; form: Form } | undefined {
  if (Buffer.isBuffer(reply)) return { value: reply.toString("latin1"), form: Form.Buffer };
  if (!Array.isArray(reply)) return { value: reply, form: Form.Plain };
  if (!holdsBuffer(reply)) return { value: freezeDeep(reply), form: Form.Plain };
  return { value: binCopy(reply), form: Form.Nested };
}

function holdsBuffer(a: readonly unknown[]): boolean {
  for (const x of a) if (Buffer.isBuffer(x) || (Array.isArray(x) && holdsBuffer(x))) return true;
  return false;
}

function freezeDeep<T>(a: T): T {
  if (Array.isArray(a) && !Object.isFrozen(a)) {
    for (const x of a) freezeDeep(x);
    Object.freeze(a);
  }
  return a;
}

function binCopy(a: readonly unknown[]): unknown[] {
  return Object.freeze(a.map((x) => (Buffer.isBuffer(x) ? new Bin(x.toString("latin1")) : Array.isArray(x) ? binCopy(x) : x))) as unknown[];
}

function valueOf(e: Entry): unknown {
  switch (e.form) {
    case Form.Plain:
      return e.value;
    case Form.Buffer:
      return Buffer.from(e.value as string, "latin1");
    default:
      return thaw(e.value);
  }
}

function thaw(v: unknown): unknown {
  if (v instanceof Bin) return Buffer.from(v.s, "latin1");
  if (Array.isArray(v)) return v.map(thaw);
  return v;
}

export class ClientCache {
  /** Tables holding entries now (an invalidation looks in each; a flush clears them). */
  private active: Table[] = [];
  /** Commands with more than one argument, keyed by the whole command. */
  readonly general: Table = new Table(true);
  private count = 0;
  /** Redis key -> its first indexed entry (the rest through `sibling`). */
  private readonly byRedisKey = new Map<string, Entry>();
  /** The keys of the last INVALIDATION_RING invalidations; invalidation n is at n % INVALIDATION_RING. */
  private readonly ring: (string | undefined)[] = new Array<string | undefined>(INVALIDATION_RING).fill(undefined);
  private seq = 0;
  private head: Entry | null = null;
  private tail: Entry | null = null;
  private bytes = 0;
  private epoch = 0;
  /** Tickets store only while this is true (the controller's word: tracking is established). */
  private storing = false;
  readonly counters = { hits: 0, misses: 0, evictions: 0, invalidations: 0, flushes: 0 };
  private readonly maxEntryBytes: number;

  constructor(
    readonly maxBytes: number,
    private readonly ttlMs: number,
  ) {
    this.maxEntryBytes = maxBytes / MAX_ENTRY_SHARE;
  }

  /** A new table (one per command with one argument, and reply form). */
  table(): Table {
    return new Table(false);
  }

  get size(): number {
    return this.count;
  }

  get byteCount(): number {
    return this.bytes;
  }

  /** Entries held now, oldest first (tests). */
  keys(): string[] {
    const out: string[] = [];
    for (let e = this.tail; e !== null; e = e.newer) out.push(e.key);
    return out;
  }

  /** A live entry (moved to the head of the LRU list), or undefined; one past its TTL is dropped. `now`: performance.now(). */
  private find(table: Table, key: string, now: number): Entry | undefined {
    const e = table.map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.remove(e);
      this.counters.evictions++;
      return undefined;
    }
    // LRU by second chance (CLOCK): a hit only marks the entry; eviction moves
    // marked entries to the head instead of dropping them. No list surgery per hit.
    e.used = true;
    this.counters.hits++;
    return e;
  }

  /** A hit's value (a fresh Buffer for binary replies), or undefined. */
  get(key: string, now: number, table: Table = this.general): unknown {
    const e = this.find(table, key, now);
    return e === undefined ? undefined : valueOf(e);
  }

  /** A hit as the promise command() returns: shared by every hit of a plain value, fresh for Buffers. */
  hit(table: Table, key: string, now: number): Promise<Reply> | undefined {
    const e = this.find(table, key, now);
    if (e === undefined) return undefined;
    if (e.form !== Form.Plain) return Promise.resolve(valueOf(e) as Reply);
    return (e.promise ??= Promise.resolve(e.value as Reply));
  }

  /** A read about to be sent: what says later whether its reply may be stored. */
  begin(key: string, redisKey: string, table: Table = this.general): Ticket {
    this.counters.misses++;
    return { table, key, redisKey, epoch: this.storing ? this.epoch : -1, seq: this.seq };
  }

  /** The read settled: store its reply (undefined: it failed) unless a flush or an invalidation of its key came meanwhile. */
  end(t: Ticket, reply: Reply | undefined, now: number): void {
    if (reply === undefined || t.epoch !== this.epoch || !this.storing) return;
    const since = this.seq - t.seq;
    if (since > INVALIDATION_RING) return;
    for (let n = t.seq + 1; n <= this.seq; n++) if (this.ring[n % INVALIDATION_RING] === t.redisKey) return;
    this.store(t.table, t.key, t.redisKey, reply, now);
  }

  private store(table: Table, key: string, redisKey: string, reply: Reply, now: number): void {
    const stored = toStored(reply);
    if (stored === undefined) return;
    const vb = valueBytes(stored.value);
    if (vb < 0) return;
    const bytes = ENTRY_OVERHEAD_BYTES + stringBytes(key) + (key === redisKey ? 0 : stringBytes(redisKey)) + vb;
    if (bytes > this.maxEntryBytes) return;
    const old = table.map.get(key);
    if (old !== undefined) this.remove(old);
    const e = new Entry(table, key, redisKey, stored.value, stored.form, bytes, this.ttlMs > 0 ? now + this.ttlMs : Infinity);
    table.map.set(key, e);
    if (!table.active) {
      table.active = true;
      this.active.push(table);
    }
    this.count++;
    if (table.indexed || key !== redisKey) {
      e.indexed = true;
      e.sibling = this.byRedisKey.get(redisKey) ?? null;
      this.byRedisKey.set(redisKey, e);
    }
    this.pushHead(e);
    this.bytes += bytes;
    while (this.bytes > this.maxBytes && this.tail !== null) {
      const t = this.tail;
      if (t.used && t !== e) {
        t.used = false;
        this.unlink(t);
        this.pushHead(t);
        continue;
      }
      this.remove(t);
      this.counters.evictions++;
    }
  }

  /** Key `redisKey` changed: drop its entries, and keep reads of it in flight from storing. */
  invalidate(redisKey: string): void {
    this.ring[++this.seq % INVALIDATION_RING] = redisKey;
    const active = this.active;
    for (let i = 0; i < active.length; i++) {
      const t = active[i] as Table;
      if (t.indexed) continue;
      const e = t.map.get(redisKey);
      if (e !== undefined && !e.indexed) {
        this.remove(e);
        this.counters.invalidations++;
      }
    }
    let e: Entry | null = this.byRedisKey.get(redisKey) ?? null;
    if (e === null) return;
    this.byRedisKey.delete(redisKey);
    while (e !== null) {
      const next: Entry | null = e.sibling;
      e.sibling = null;
      e.indexed = false;
      this.remove(e);
      this.counters.invalidations++;
      e = next;
    }
  }

  /** Drop everything; reads in flight now never store. */
  flush(): void {
    this.epoch++;
    if (this.count > 0) this.counters.flushes++;
    for (const t of this.active) {
      t.map.clear();
      t.active = false;
    }
    this.active = [];
    this.count = 0;
    this.byRedisKey.clear();
    this.head = this.tail = null;
    this.bytes = 0;
  }

  /** Tickets may store from now on (true), or never again until told (false: also flushes). */
  setStoring(on: boolean): void {
    if (!on) this.flush();
    this.storing = on;
  }

  get isStoring(): boolean {
    return this.storing;
  }

  // ---- the LRU list ------------------------------------------------------------

  private pushHead(e: Entry): void {
    e.older = this.head;
    e.newer = null;
    if (this.head !== null) this.head.newer = e;
    this.head = e;
    if (this.tail === null) this.tail = e;
  }

  private unlink(e: Entry): void {
    if (e.newer !== null) e.newer.older = e.older;
    else this.head = e.older;
    if (e.older !== null) e.older.newer = e.newer;
    else this.tail = e.newer;
    e.newer = e.older = null;
  }

  /** One entry, out of the map, the index, the list and the count. */
  private remove(e: Entry): void {
    e.table.map.delete(e.key);
    this.count--;
    this.unlink(e);
    this.bytes -= e.bytes;
    if (!e.indexed) return;
    e.indexed = false;
    const first = this.byRedisKey.get(e.redisKey);
    if (first === e) {
      if (e.sibling === null) this.byRedisKey.delete(e.redisKey);
      else this.byRedisKey.set(e.redisKey, e.sibling);
    } else {
      for (let s = first ?? null; s !== null; s = s.sibling) {
        if (s.sibling === e) {
          s.sibling = e.sibling;
          break;
        }
      }
    }
    e.sibling = null;
  }
}
