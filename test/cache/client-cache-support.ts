// Shared by the client-side cache tests: the protocol x transport matrix, a
// cached client that is destroyed after its test, and ways to wait for the
// cache to be able to serve (tracking established, lease proven) without sleeping.
import type { Client } from "../../src/index.js";
import { DEFAULTS } from "../../src/options.js";
import type { Reply } from "../../src/protocol/decode.js";
import { waitFor } from "../support/wait.js";
import { LEASE_MS } from "../../src/cache/tracking.js";

/**
 * The most a read may lag a write it was issued after, whatever the fault:
 * the lease (or Redis' active expiry, 10 times a second, for a key that
 * expires), plus what a loaded 2-core CI box adds.
 */
export const STALE_BOUND_MS = LEASE_MS + 100;

export const PROTOCOLS = [2, 3] as const;
export const TRANSPORTS = ["pipelined", "pooled"] as const;
/**
 * The "resp2" test project runs test/cache/ again with RESP2 as the default;
 * these suites name the protocol of every client (the matrix covers both), so
 * their real-server parts run once, in the default project.
 */
export const SKIP_DUPLICATE = (DEFAULTS.protocol as number) === 2;
export const MATRIX = PROTOCOLS.flatMap((protocol) => TRANSPORTS.map((transport) => ({ protocol, transport })));

/** Until the cache can serve hits (tracking established, the invalidation channel proven). */
export async function cacheServing(client: Client, timeoutMs = 5000): Promise<void> {
  // A read renews the lease when it lapsed; poll with one until it holds.
  await waitFor(async () => {
    await client.command(["PING"]);
    return client.clientCacheStats()?.tracking === true;
  }, timeoutMs);
}

/**
 * Read `args` until one answer comes from the cache (the lease may lapse
 * between two reads on a slow machine: a read then goes to the server and
 * renews it). Returns the hit's reply.
 */
export async function readHit(client: Client, args: (string | Buffer | number)[], returnBuffers = false, attempts = 20): Promise<Reply> {
  for (let i = 0; i < attempts; i++) {
    const before = client.clientCacheStats()?.hits ?? 0;
    const reply = await client.command(args, returnBuffers ? { returnBuffers } : undefined);
    if ((client.clientCacheStats()?.hits ?? 0) > before) return reply;
    await cacheServing(client);
  }
  throw new Error(`${args.map(String).join(" ")} never came from the cache`);
}

/** Deep equality of replies with Buffers compared by bytes (and kind). */
export function sameReply(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => sameReply(x, b[i]));
  }
  return Object.is(a, b);
}

// ---- stale reads: the history of every key and the checks on every read ------

/** What the server held for a key from `at` on (performance.now(), the writer's ack); `at` undefined: a write whose fate is unknown. */
interface Fact {
  value: string | null;
  at: number | undefined;
  /** An emptied key: the earliest it can have happened (`at` is the latest). */
  from?: number;
}

export interface ReadRecord {
  reader: number;
  key: string;
  value: string | null;
  /** performance.now() when the read was issued, and when it was answered. */
  issuedAt: number;
  doneAt: number;
}

export interface StaleReport {
  reads: number;
  /** Reads that returned a value already overwritten (acknowledged) when they were issued. */
  stale: number;
  /** Over the stale reads: how long before the read its value had been overwritten, in ms. */
  maxMs: number;
  p999Ms: number;
  /** Over every read (0 for fresh ones). */
  allP999Ms: number;
  /** A reader saw a key go back to an older value than one it had read or written. */
  regressions: string[];
  /** Reads issued after a fault's recovery that returned a value overwritten before the fault. */
  afterRecovery: string[];
}

/**
 * Every key's history as the test's writers made it (each key has one writer,
 * whose writes are sequential, so the order of its facts is the server's), and
 * the faults that emptied keys (FLUSHALL, expiry, a restart, eviction).
 */
export class History {
  private readonly facts = new Map<string, Fact[]>();
  private readonly reads: ReadRecord[] = [];
  private readonly faults: { name: string; at: number; recovered: number }[] = [];
  /** reader -> key -> index of the newest fact it read or wrote. */
  private readonly seen = new Map<number, Map<string, number>>();
  private readonly regressions: string[] = [];

  private list(key: string): Fact[] {
    let l = this.facts.get(key);
    if (l === undefined) {
      l = [{ value: null, at: Number.NEGATIVE_INFINITY }];
      this.facts.set(key, l);
    }
    return l;
  }

  /** A write is about to be sent; returns the fact, to stamp with its ack (or leave unknown). */
  writing(key: string, value: string | null): Fact {
    const f: Fact = { value, at: undefined };
    this.list(key).push(f);
    return f;
  }

  /** A write acknowledged at `at` by `reader` (undefined: the test's writer): its own reads must not go back past it. */
  acked(fact: Fact, at: number, key: string, reader?: number): void {
    fact.at = at;
    if (reader !== undefined) this.note(reader, key, this.list(key).indexOf(fact));
  }

  /**
   * Keys the server emptied between `from` (the earliest: FLUSHALL sent, a
   * kill started, an expiry's first moment, eviction's start) and `at` (the
   * latest: acknowledged, seen). A read of nil must end after `from`; a value
   * counts as overwritten from `at`.
   */
  emptied(keys: readonly string[], from: number, at = from): void {
    for (const k of keys) this.list(k).push({ value: null, at, from });
  }

  fault(name: string, at: number, recovered: number): void {
    this.faults.push({ name, at, recovered });
  }

  read(r: ReadRecord): void {
    this.reads.push(r);
    if (r.value === null) return;
    const l = this.list(r.key);
    const i = l.findIndex((f) => f.value === r.value);
    if (i === -1) return;
    const m = this.seen.get(r.reader)?.get(r.key);
    if (m !== undefined && i < m && this.regressions.length < 20) {
      this.regressions.push(`reader ${r.reader} read ${r.key}=${r.value} after ${String(l[m]?.value)}`);
    }
    this.note(r.reader, r.key, i);
  }

  private note(reader: number, key: string, i: number): void {
    let m = this.seen.get(reader);
    if (m === undefined) this.seen.set(reader, (m = new Map()));
    if ((m.get(key) ?? -1) < i) m.set(key, i);
  }

  /** When the value of fact `i` had surely been replaced: the first later acknowledged (or known) fact. */
  private overwrittenAt(l: readonly Fact[], i: number): number {
    for (let j = i + 1; j < l.length; j++) {
      const at = l[j]?.at;
      if (at !== undefined && l[j]?.value !== l[i]?.value) return at;
    }
    return Number.POSITIVE_INFINITY;
  }

  /** How long before it was issued the read's value had been overwritten (0: fresh), most favourably to the client. */
  staleness(r: ReadRecord): { ms: number; overwrittenAt: number } {
    const l = this.list(r.key);
    let best = { ms: Number.POSITIVE_INFINITY, overwrittenAt: Number.POSITIVE_INFINITY };
    for (let i = 0; i < l.length; i++) {
      const f = l[i] as Fact;
      if (f.value !== r.value) continue;
      // A value can only be read once it may exist: an empty key after its emptying (or an unknown write).
      const since = f.from ?? f.at;
      if (since !== undefined && since > r.doneAt && r.value === null) continue;
      const over = this.overwrittenAt(l, i);
      const ms = Math.max(0, r.issuedAt - over);
      if (ms < best.ms) best = { ms, overwrittenAt: over };
    }
    return best;
  }

  /** The stale reads over `minMs`, with the fault whose window they fall in (debugging). */
  explain(minMs: number, limit = 15): string[] {
    const found: { ms: number; text: string }[] = [];
    for (const r of this.reads) {
      const s = this.staleness(r);
      if (!(s.ms > minMs)) continue;
      const f = [...this.faults].reverse().find((x) => x.at <= r.issuedAt);
      found.push({ ms: s.ms, text: `${r.key}=${String(r.value)} stale ${s.ms.toFixed(1)} ms, ${f === undefined ? "before any fault" : `${(r.issuedAt - f.at).toFixed(0)} ms after ${f.name}`}` });
    }
    return found.sort((a, b) => b.ms - a.ms).slice(0, limit).map((x) => x.text);
  }

  /** Per fault window (the reads issued after a fault and before the next; "steady" before the first): reads, stale ones, their max and the p99.9 over all its reads, in ms. */
  byFault(): Record<string, { reads: number; stale: number; maxMs: number; p999Ms: number }> {
    const windows = new Map<string, number[]>();
    for (const r of this.reads) {
      const s = this.staleness(r);
      const f = [...this.faults].reverse().find((x) => x.at <= r.issuedAt);
      const name = f?.name ?? "steady";
      let w = windows.get(name);
      if (w === undefined) windows.set(name, (w = []));
      w.push(Number.isFinite(s.ms) ? s.ms : Number.POSITIVE_INFINITY);
    }
    const out: Record<string, { reads: number; stale: number; maxMs: number; p999Ms: number }> = {};
    const round = (x: number): number => Math.round(x * 100) / 100;
    for (const [name, ms] of windows) {
      ms.sort((a, b) => a - b);
      out[name] = {
        reads: ms.length,
        stale: ms.filter((x) => x > 0).length,
        maxMs: round(ms[ms.length - 1] ?? 0),
        p999Ms: round(ms[Math.max(0, Math.ceil(0.999 * ms.length) - 1)] ?? 0),
      };
    }
    return out;
  }

  report(): StaleReport {
    const staleMs: number[] = [];
    const afterRecovery: string[] = [];
    for (const r of this.reads) {
      const s = this.staleness(r);
      if (!Number.isFinite(s.ms)) {
        if (afterRecovery.length < 20) afterRecovery.push(`${r.key}=${String(r.value)} was never written`);
        continue;
      }
      if (s.ms > 0) staleMs.push(s.ms);
      for (const f of this.faults) {
        if (r.issuedAt >= f.recovered && s.overwrittenAt < f.at && afterRecovery.length < 20) {
          afterRecovery.push(`${f.name}: ${r.key}=${String(r.value)} read ${(r.issuedAt - f.recovered).toFixed(1)} ms after recovery, overwritten ${(f.at - s.overwrittenAt).toFixed(1)} ms before the fault`);
        }
      }
    }
    staleMs.sort((a, b) => a - b);
    // The q-quantile of n values: the sorted stale ones, after n - xs.length zeros.
    const pct = (xs: number[], q: number, n = xs.length): number => {
      const i = Math.ceil(q * n) - 1 - (n - xs.length);
      return n === 0 || i < 0 ? 0 : (xs[Math.min(xs.length - 1, i)] as number);
    };
    return {
      reads: this.reads.length,
      stale: staleMs.length,
      maxMs: staleMs.length === 0 ? 0 : (staleMs[staleMs.length - 1] as number),
      p999Ms: pct(staleMs, 0.999),
      allP999Ms: pct(staleMs, 0.999, this.reads.length),
      regressions: [...this.regressions],
      afterRecovery,
    };
  }
}

// ---- load: readers on a cached client, one writer on another ------------------

/** The part of a client (single node or cluster) the load uses. */
export interface Commander {
  command(args: (string | Buffer | number)[]): Promise<unknown>;
}

export interface Load {
  readonly history: History;
  /** Ops done (reads and writes), to wait for progress. */
  readonly ops: number;
  /** Stop every write, the writer's and the readers' own (those under way finish first); reads go on. */
  pauseWrites(): Promise<void>;
  resumeWrites(): void;
  stop(): Promise<void>;
}

/**
 * `readers` tasks on `cached`, each reading every key and writing a key of its
 * own every tenth op; one writer on `writer` bumping `writerKeys` in turn.
 * Every value is `${key}#${n}`, n growing: each key has one writer, whose
 * writes are sequential, so a key's history is in order.
 */
export function startLoad(cached: Commander, writer: Commander, writerKeys: readonly string[], readers: number, readerKey: (r: number) => string): Load {
  const history = new History();
  const all = [...writerKeys, ...Array.from({ length: readers }, (_, r) => readerKey(r))];
  let n = 0;
  let ops = 0;
  let stop = false;
  let paused = false;
  const writing = new Set<Promise<void>>();
  const write = (client: Commander, key: string, reader?: number): Promise<void> => {
    if (paused) return Promise.resolve();
    const w = writeNow(client, key, reader);
    writing.add(w);
    void w.finally(() => writing.delete(w));
    return w;
  };
  const writeNow = async (client: Commander, key: string, reader?: number): Promise<void> => {
    const value = `${key}#${++n}`;
    const fact = history.writing(key, value);
    try {
      await client.command(["SET", key, value]);
      history.acked(fact, performance.now(), key, reader);
    } catch {
      // Unknown fate: the fact keeps no time.
    }
    ops++;
  };
  const writerLoop = (async () => {
    for (let i = 0; !stop; i++) {
      if (paused) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      await write(writer, writerKeys[i % writerKeys.length] as string);
      await new Promise(setImmediate);
    }
  })();
  const readerLoops = Array.from({ length: readers }, async (_, r) => {
    for (let i = 0; !stop; i++) {
      if (i % 10 === 0) await write(cached, readerKey(r), r);
      else {
        const key = all[(i * 7 + r) % all.length] as string;
        const issuedAt = performance.now();
        try {
          const value = (await cached.command(["GET", key])) as string | null;
          history.read({ reader: r, key, value, issuedAt, doneAt: performance.now() });
        } catch {
          // A fault: only answers are checked.
        }
        ops++;
      }
      // While writes are paused there is little to learn from a read: fewer of them.
      if (paused) await new Promise((res) => setTimeout(res, 1));
      else if (i % 4 === 0) await new Promise(setImmediate);
    }
  });
  return {
    history,
    get ops() {
      return ops;
    },
    async pauseWrites() {
      paused = true;
      await Promise.all([...writing]);
    },
    resumeWrites() {
      paused = false;
    },
    async stop() {
      stop = true;
      await Promise.all([writerLoop, ...readerLoops]);
    },
  };
}
