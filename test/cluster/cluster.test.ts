// Cluster (issue 10): a real 3-master / 3-replica cluster
// (test/support/redis-cluster.ts), started once for this file, and both
// transports. Tests run in order and leave the cluster whole (waitHealthy)
// for the next. Measured failover recovery times are printed with a
// "[cluster]" prefix.
import { describe, expect, it } from "vitest";
import {
  ClientClosedError,
  ClusterClient,
  ConnectionError,
  CrossSlotError,
  keySlot,
  RedirectionLimitError,
  RedisError as RedisErrorClass,
  type ClusterOptions,
  type RedisError,
  type TransportKind,
} from "../../src/index.js";
import { useCluster } from "../support/cluster-suite.js";
import { parseInfo, type RedisClusterNode } from "../support/redis-cluster.js";
import { waitFor } from "../support/wait.js";

const TRANSPORTS: TransportKind[] = ["pipelined", "pooled"];

const CLIENT_NAME = "respite-cluster-test";
const suite = useCluster();
const connectCluster = (transport: TransportKind, extra: Partial<ClusterOptions> = {}): ClusterClient =>
  suite.connect(transport, { clientName: CLIENT_NAME, ...extra });

/** Sum of calls + rejected calls of one command over some nodes (INFO commandstats). */
async function commandCalls(nodes: readonly RedisClusterNode[], command: string): Promise<number> {
  let total = 0;
  for (const n of nodes) {
    const stats = parseInfo(await n.admin(["INFO", "commandstats"]));
    const line = stats[`cmdstat_${command}`];
    if (line === undefined) continue;
    const fields = Object.fromEntries(line.split(",").map((kv) => kv.split("=") as [string, string]));
    total += Number(fields.calls ?? 0) + Number(fields.rejected_calls ?? 0);
  }
  return total;
}

async function replicas(): Promise<RedisClusterNode[]> {
  return (await suite.cluster.view()).filter((v) => v.role === "replica" && !v.failed).map((v) => suite.cluster.byId(v.id));
}

/** A hash tag whose slot the given master serves (or any slot when none given). */
async function tagOn(prefix: string, master?: RedisClusterNode): Promise<string> {
  for (let i = 0; ; i++) {
    const tag = `${prefix}-${i}`;
    if (master === undefined || (await suite.cluster.masterOf(keySlot(tag))).id === master.id) return tag;
  }
}

/** The longest gap between two consecutive successes, among gaps ending after `t`. */
function longestGapEndingAfter(times: readonly number[], t: number): number {
  let longest = 0;
  for (let i = 1; i < times.length; i++) {
    const end = times[i] as number;
    if (end > t) longest = Math.max(longest, end - (times[i - 1] as number));
  }
  return longest;
}

function describeError(e: RedisError): string {
  const reason = (e as { reason?: string }).reason;
  const cause = e.cause instanceof Error ? ` <- ${e.cause.message}` : "";
  return `${e.name}(${e.code}${reason === undefined ? "" : `/${reason}`}, maybeExecuted=${e.maybeExecuted}): ${e.message}${cause}`;
}

interface Load {
  stop(): Promise<void>;
  /** Per caller: Date.now() of its last success. */
  lastSuccess: number[];
  /** Per caller: Date.now() of each success, oldest first. */
  successes: number[][];
  /** Per caller: when the command of each success was issued (parallel to successes). */
  issued: number[][];
  ops: number;
  crossed: number;
  stale: number;
  /** Writes that rejected with maybeExecuted true (in flight at a kill). */
  writesMaybeExecuted: number;
  unexpected: RedisError[];
  /** Commands started and not settled. */
  readonly inflight: number;
}

/** K callers, each looping SET key value / GET key (expecting value) on its own key. */
function startLoad(c: ClusterClient, keys: readonly string[]): Load {
  let running = true;
  let inflight = 0;
  const load: Load = {
    stop: async () => undefined,
    lastSuccess: keys.map(() => 0),
    successes: keys.map(() => []),
    issued: keys.map(() => []),
    ops: 0,
    crossed: 0,
    stale: 0,
    writesMaybeExecuted: 0,
    unexpected: [],
    get inflight() {
      return inflight;
    },
  };
  const track = <T,>(p: Promise<T>): Promise<T> => {
    inflight++;
    return p.finally(() => inflight--);
  };
  const loops = keys.map(async (key, i) => {
    for (let n = 0; running; n++) {
      const value = `${i}:${n}`;
      let issuedAt = Date.now();
      try {
        await track(c.set(key, value));
      } catch (err) {
        if (err instanceof ConnectionError && err.maybeExecuted) load.writesMaybeExecuted++;
        else load.unexpected.push(err as RedisError);
        continue;
      }
      load.ops++;
      load.lastSuccess[i] = Date.now();
      load.successes[i]?.push(load.lastSuccess[i] as number);
      load.issued[i]?.push(issuedAt);
      try {
        issuedAt = Date.now();
        const got = await track(c.get(key));
        load.ops++;
        load.lastSuccess[i] = Date.now();
        load.successes[i]?.push(load.lastSuccess[i] as number);
        load.issued[i]?.push(issuedAt);
        // Another caller's value would be a crossed reply. An older value of
        // our own can be Redis losing an acknowledged write at a failover
        // (asynchronous replication): counted, not a client fault.
        if (got !== value) {
          if (got !== null && !got.startsWith(`${i}:`)) load.crossed++;
          else load.stale++;
        }
      } catch (err) {
        load.unexpected.push(err as RedisError);
      }
    }
  });
  load.stop = async () => {
    running = false;
    await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 15_000).unref())]);
  };
  return load;
}

describe.each(TRANSPORTS)("cluster, %s transport", (transport) => {
  const p = `${transport}`;

  it("spreads keys over every master, each key holding its own value", async () => {
    const c = connectCluster(transport);
    await c.connect();
    expect(c.status).toBe("ready");
    const keys = Array.from({ length: 300 }, (_, i) => `${p}:spread:${i}`);
    await Promise.all(keys.map((k, i) => c.set(k, `v${i}`)));
    expect(await Promise.all(keys.map((k) => c.get(k)))).toEqual(keys.map((_, i) => `v${i}`));
    const masters = await suite.cluster.masters();
    expect(masters).toHaveLength(3);
    const perMaster = new Map<string, number>();
    for (const [i, k] of keys.entries()) {
      if (i % 10 !== 0) continue;
      const owner = await suite.cluster.masterOf(keySlot(k));
      expect(await owner.admin(["GET", k])).toBe(`v${i}`);
      perMaster.set(owner.id, (perMaster.get(owner.id) ?? 0) + 1);
    }
    expect(perMaster.size).toBe(3);
  });

  it("puts keys with one hash tag in one slot, so multi-key commands work", async () => {
    const c = connectCluster(transport);
    const a = `${p}:{user42}:a`;
    const b = `${p}:{user42}:b`;
    expect(keySlot(a)).toBe(keySlot(b));
    expect(await c.command(["MSET", a, "1", b, "2"])).toBe("OK");
    expect(await c.command(["MGET", a, b])).toEqual(["1", "2"]);
    expect(await c.command(["EVAL", "return redis.call('GET', KEYS[1]) .. redis.call('GET', KEYS[2])", 2, a, b])).toBe("12");
  });

  it("fails a cross-slot command with CrossSlotError before sending it", async () => {
    const c = connectCluster(transport);
    await c.connect();
    const [a, b] = [`${p}:cs:a`, `${p}:cs:b`];
    expect(keySlot(a)).not.toBe(keySlot(b));
    const masters = await suite.cluster.masters();
    const before = await commandCalls(masters, "mget");
    const error = await c.command(["MGET", a, b]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrossSlotError);
    expect((error as CrossSlotError).slots).toEqual([keySlot(a), keySlot(b)]);
    expect((error as CrossSlotError).maybeExecuted).toBe(false);
    expect(await commandCalls(masters, "mget")).toBe(before);
  });

  it("splits mget / mset / exists / del / unlink across slots and merges in order", async () => {
    const c = connectCluster(transport);
    const keys = ["a", "b", "c", "d", "e", "f"].map((x) => `${p}:multi:${x}`);
    expect(new Set(keys.map(keySlot)).size).toBeGreaterThan(1);
    expect(await c.mset(Object.fromEntries(keys.map((k, i) => [k, `m${i}`])))).toBe("OK");
    expect(await c.mget(...keys, `${p}:multi:missing`)).toEqual([...keys.map((_, i) => `m${i}`), null]);
    expect(await c.exists(...keys, keys[0] as string)).toBe(7);
    expect(await c.del(keys[0] as string, keys[1] as string)).toBe(2);
    expect(await c.unlink(...keys)).toBe(4);
    expect(await c.mget(...keys)).toEqual(keys.map(() => null));
    await c.mset([
      [keys[2] as string, "x"],
      [keys[3] as string, "y"],
    ]);
    expect(await c.mget(keys[3] as string, keys[2] as string)).toEqual(["y", "x"]);
  });

  it("splits a batch by node and returns the results in the caller's order", async () => {
    const c = connectCluster(transport);
    const [k1, k2] = [`${p}:batch:1`, `${p}:batch:2`];
    expect(keySlot(k1)).not.toBe(keySlot(k2));
    const results = await c.batch([["SET", k1, "1"], ["GET", k1], ["SET", k2, "2"], ["MGET", k1, k2], ["GET", k2], ["INCR", k1], ["PING"]]);
    expect(results[0]).toBe("OK");
    expect(results[1]).toBe("1");
    expect(results[2]).toBe("OK");
    expect(results[3]).toBeInstanceOf(CrossSlotError);
    expect(results[4]).toBe("2");
    expect(results[5]).toBe(2);
    expect(results[6]).toBe("PONG");
    const t = `${p}:{tx}`;
    expect(await c.batch([["SET", `${t}:a`, "1"], ["INCR", `${t}:a`], ["GET", `${t}:a`]], { atomic: true })).toEqual(["OK", 2, "2"]);
    await expect(c.batch([["SET", k1, "1"], ["SET", k2, "2"]], { atomic: true })).rejects.toBeInstanceOf(CrossSlotError);
  });

  it("scans every master", async () => {
    const c = connectCluster(transport);
    const keys = Array.from({ length: 60 }, (_, i) => `${p}:scan:${i}`);
    await c.mset(keys.map((k) => [k, "1"] as const));
    const seen = new Set<string>();
    for await (const k of c.scan({ match: `${p}:scan:*`, count: 100 })) seen.add(k);
    expect([...seen].sort()).toEqual([...keys].sort());
  });

  it("reads from replicas with readFrom: replica (READONLY on their connections)", async () => {
    const writer = connectCluster(transport);
    const reader = connectCluster(transport, { readFrom: "replica" });
    const k = `${p}:ro`;
    // SET then WAIT on one socket of the key's master: the replica has it after.
    await writer.withConnection(k, async (conn) => {
      await conn.command(["SET", k, "replicated"]);
      await conn.command(["WAIT", 1, 5000]);
    });
    const reps = await replicas();
    const before = await commandCalls(reps, "get");
    expect(await reader.get(k)).toBe("replicated");
    expect(await commandCalls(reps, "get")).toBeGreaterThan(before);
    // Writes still go to the master.
    expect(await reader.set(k, "w")).toBe("OK");
    expect(await writer.get(k)).toBe("w");
    // preferReplica: a connected replica, else the master; the value either way.
    const prefer = connectCluster(transport, { readFrom: "preferReplica" });
    await prefer.connect();
    expect(await prefer.get(k)).toBe("w");
  });

  it("runs a blocking command on its key's node, and closes gracefully", async () => {
    // A name of its own, so CLIENT LIST tells this client's connections from any other's.
    const name = `${CLIENT_NAME}-blpop-${transport}`;
    const c = connectCluster(transport, { lazyConnect: true, clientName: name });
    expect(c.status).toBe("idle");
    const k = `${p}:blocking`;
    const owner = await suite.cluster.masterOf(keySlot(k));
    /** Per node: this client's connections blocked in BLPOP (CLIENT LIST on the node itself). */
    const blockedIn = async (node: RedisClusterNode): Promise<number> => {
      const list = await node.admin(["CLIENT", "LIST"]);
      return String(list)
        .split("\n")
        .filter((line) => line.includes(` name=${name} `) && line.includes(" cmd=blpop ")).length;
    };
    const blockedPerNode = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const n of suite.cluster.nodes) out[n.address] = await blockedIn(n);
      return out;
    };
    const expected = Object.fromEntries(suite.cluster.nodes.map((n) => [n.address, n.id === owner.id ? 1 : 0]));
    // Nothing was sent yet (lazy): the condition below is false until the BLPOP is in.
    expect(await blockedPerNode()).toEqual(Object.fromEntries(suite.cluster.nodes.map((n) => [n.address, 0])));
    const popped = c.command(["BLPOP", k, 5]);
    // Blocked on the master owning the key's slot, and nowhere else.
    let last: Record<string, number> = {};
    await waitFor(async () => JSON.stringify((last = await blockedPerNode())) === JSON.stringify(expected), 4_000).catch((err: unknown) => {
      throw new Error(`BLPOP not seen blocked on its key's node ${owner.address} only (last: ${JSON.stringify(last)})`, { cause: err });
    });
    const other = connectCluster(transport);
    await other.command(["RPUSH", k, "x"]);
    expect(await popped).toEqual([k, "x"]);
    await c.connect();
    let closed = 0;
    c.on("close", () => closed++);
    const pending = c.get(k);
    await c.close();
    expect(await pending).toBeNull();
    expect(c.status).toBe("closed");
    expect(closed).toBe(1);
    await expect(c.get(k)).rejects.toBeInstanceOf(ClientClosedError);
  });

  it("follows MOVED after a manual failover; maxRedirections bounds it with a typed error", async () => {
    const c = connectCluster(transport);
    const strict = connectCluster(transport, { maxRedirections: 0 });
    const k = `${p}:mf`;
    await c.set(k, "1");
    await strict.connect();
    const moves: { kind: string; to: string }[] = [];
    c.on("redirect", (info) => moves.push(info));
    const f = await suite.cluster.manualFailover(keySlot(k));
    expect(await c.incr(k)).toBe(2);
    expect(moves).toContainEqual(expect.objectContaining({ kind: "moved", to: f.promoted.address }));
    expect(c.stats().moved).toBeGreaterThanOrEqual(1);
    const error = await strict.incr(k).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedirectionLimitError);
    expect((error as RedirectionLimitError).maybeExecuted).toBe(false);
    expect(await c.get(k)).toBe("2");
    await suite.cluster.waitHealthy();
  }, 60_000);

  it("keeps every caller served while a slot migrates under load (ASK, then MOVED)", async () => {
    const c = connectCluster(transport);
    await c.connect();
    const masters = await suite.cluster.masters();
    const tag = await tagOn(`${p}-mig`);
    const slot = keySlot(tag);
    const source = await suite.cluster.masterOf(slot);
    const target = masters.find((m) => m.id !== source.id) as RedisClusterNode;
    const redirects = { ask: 0, moved: 0 };
    c.on("redirect", (info) => redirects[info.kind]++);
    const keys = Array.from({ length: 16 }, (_, i) => `{${tag}}:caller:${i}`);
    const load = startLoad(c, keys);
    // Multi-key commands on the moving slot too: TRYAGAIN while its keys are split, retried.
    let multiRunning = true;
    let multiOps = 0;
    const multiErrors: RedisError[] = [];
    const [m1, m2] = [`{${tag}}:multi:1`, `{${tag}}:multi:2`];
    const multi = (async () => {
      for (let n = 0; multiRunning; n++) {
        try {
          await c.command(["MSET", m1, `a${n}`, m2, `b${n}`]);
          expect(await c.command(["MGET", m1, m2])).toEqual([`a${n}`, `b${n}`]);
          multiOps++;
        } catch (err) {
          multiErrors.push(err as RedisError);
        }
      }
    })();
    await waitFor(() => load.ops > 100, 10_000);
    let batches = 0;
    await suite.cluster.migrateSlot(slot, target, {
      batch: 4,
      // Half of the MSET pair goes first: MSET gets TRYAGAIN until the other half follows.
      firstKeys: [m1, ...keys.slice(0, 4)],
      // After the first keys moved, wait until callers have been sent there by ASK, and MSET told TRYAGAIN.
      onStep: async (step) => {
        if (step === "migrated-batch" && batches++ === 0) await waitFor(() => redirects.ask > 0 && c.stats().tryAgain > 0, 10_000);
      },
    });
    await waitFor(() => redirects.moved > 0, 10_000);
    const opsAtMove = load.ops;
    await waitFor(() => load.ops > opsAtMove + 100, 10_000);
    await load.stop();
    multiRunning = false;
    await multi;
    expect(multiErrors.map(describeError)).toEqual([]);
    expect(multiOps).toBeGreaterThan(0);
    expect(load.unexpected.map(describeError)).toEqual([]);
    expect(load.crossed).toBe(0);
    expect(load.stale).toBe(0);
    expect(load.inflight).toBe(0);
    expect(c.stats().ask).toBeGreaterThan(0);
    expect(c.stats().moved).toBeGreaterThan(0);
    expect(c.stats().tryAgain).toBeGreaterThan(0);
    expect(c.masterOf(slot)).toBe(target.address);
    expect(await target.admin(["CLUSTER", "COUNTKEYSINSLOT", slot])).toBe(keys.length + 2);
    console.log(
      `[cluster] ${transport}: slot ${slot} migrated under load: ${load.ops} ops + ${multiOps} MSET/MGET pairs, ` +
        `${redirects.ask} ASK, ${redirects.moved} MOVED, ${c.stats().tryAgain} TRYAGAIN`,
    );
    await suite.cluster.waitHealthy();
  }, 60_000);

  it("serves every caller from the promoted replica after kill -9 of a master under load", async () => {
    const c = connectCluster(transport);
    await c.connect();
    const keys = Array.from({ length: 30 }, (_, i) => `${p}:kill:${i}`);
    const victim = await suite.cluster.masterOf(keySlot(keys[0] as string));
    const owners = await Promise.all(keys.map((k) => suite.cluster.masterOf(keySlot(k))));
    const onVictim = keys.map((_, i) => (owners[i] as RedisClusterNode).id === victim.id);
    expect(onVictim.filter(Boolean).length).toBeGreaterThan(0);
    const load = startLoad(c, keys);
    // Every caller is under way before the kill.
    await waitFor(() => load.successes.every((times) => times.length >= 10), 10_000);
    const f = await suite.cluster.killMaster(keySlot(keys[0] as string));
    expect(f.old.id).toBe(victim.id);
    // Every caller, those of the dead master's slots included, is served a
    // command it issued after the kill. Recovery: when the last one was.
    const servedAfterKill = (): (number | undefined)[] =>
      load.issued.map((issued, i) => {
        const j = issued.findIndex((t) => t > f.startedAt);
        return j === -1 ? undefined : load.successes[i]?.[j];
      });
    await waitFor(() => servedAfterKill().every((t) => t !== undefined), suite.cluster.nodeTimeoutMs + 15_000);
    const recoveryMs = Math.max(...(servedAfterKill() as number[])) - f.startedAt;
    const pauseMs = Math.max(...load.successes.map((times) => longestGapEndingAfter(times, f.startedAt)));
    const opsAtRecovery = load.ops;
    await waitFor(() => load.ops > opsAtRecovery + 200, 10_000);
    await load.stop();
    console.log(
      `[cluster] ${transport}: kill -9 of ${f.old.address}: cluster promoted ${f.promoted.address} in ${f.doneAt - f.startedAt} ms; ` +
        `every caller served again ${recoveryMs} ms after the kill (longest caller pause ${pauseMs} ms); ${load.writesMaybeExecuted} writes in flight (maybeExecuted), ` +
        `${load.stale} stale reads (writes lost by async replication), stats ${JSON.stringify(c.stats())}`,
    );
    expect(load.unexpected.map(describeError)).toEqual([]);
    expect(load.crossed).toBe(0);
    expect(load.inflight).toBe(0);
    expect(recoveryMs).toBeLessThan(suite.cluster.nodeTimeoutMs + 5_000);
    expect(c.masterOf(keySlot(keys[0] as string))).toBe(f.promoted.address);

    // The old master comes back as a replica: no write goes to it.
    await f.old.restart();
    await suite.cluster.waitHealthy();
    const role = await f.old.admin(["ROLE"]);
    expect(Array.isArray(role) && role[0]).toBe("slave");
    await Promise.all(keys.map((k) => c.set(k, "after")));
    expect(await c.mget(...keys)).toEqual(keys.map(() => "after"));
    expect(c.nodes().map((n) => `${n.options.host}:${n.options.port}`)).not.toContain(f.old.address);
    // Not one connection of ours on it (its master link and our probe aside).
    const list = await f.old.admin(["CLIENT", "LIST"]);
    expect(String(list)).not.toContain(`name=${CLIENT_NAME}`);
  }, 90_000);

  it("waits out every node down, then serves again without a restart", async () => {
    const LIMIT = 100;
    const c = connectCluster(transport, { offlineQueue: { maxLength: LIMIT }, maxPending: LIMIT });
    await c.connect();
    const keys = Array.from({ length: 12 }, (_, i) => `${p}:down:${i}`);
    await Promise.all(keys.map((k) => c.set(k, "before")));
    const dials = new Map<string, number>();
    for (const n of c.nodes()) n.on("reconnecting", () => dials.set(`${n.options.port}`, (dials.get(`${n.options.port}`) ?? 0) + 1));
    await Promise.all(suite.cluster.nodes.map((n) => n.kill()));
    const downAt = Date.now();
    // Commands issued while every node is down: queued (pipelined) or retried with backoff (pooled).
    const during = keys.map((k) => c.set(k, "during").catch((e: unknown) => e));
    await waitFor(() => c.stats().refreshFailures >= 2, 10_000);
    // Load while every node is down: what the client holds stays bounded
    // (each master's client: its offline queue, or its pool's waiting list;
    // plus the cluster's retry waits, bounded alike); the rest is refused at
    // once. Sustained, because a command a node client fails (pooled: its
    // dial failed) makes room there and moves to the cluster's retry waits.
    const bound = LIMIT * (3 + 1) + keys.length;
    let issued = 0;
    let settled = 0;
    let maxHeld = 0;
    const refusals = new Map<string, number>();
    const burst: Promise<void>[] = [];
    for (let wave = 0; wave < 20; wave++) {
      for (let i = 0; i < 300; i++, issued++) {
        burst.push(
          c.set(`${p}:burst:${i % 50}`, "x").then(
            () => void settled++,
            (e: unknown) => {
              settled++;
              const name = e instanceof RedisErrorClass ? e.name : String(e);
              refusals.set(name, (refusals.get(name) ?? 0) + 1);
            },
          ),
        );
      }
      await new Promise((r) => setTimeout(r, 50));
      maxHeld = Math.max(maxHeld, issued - settled);
    }
    expect(maxHeld).toBeLessThanOrEqual(bound);
    expect(refusals.get("QueueFullError") ?? 0).toBeGreaterThanOrEqual(issued - bound);
    await new Promise((r) => setTimeout(r, 1_500));
    const outageMs = Date.now() - downAt;
    // The backoff paces both the node clients' dials and the refreshes: no hot loop.
    for (const [port, n] of dials) expect(n, `dials to ${port} in ${outageMs} ms`).toBeLessThan(outageMs / 50);
    // Refreshes back off too (100 ms doubling to 2 s while they fail).
    expect(c.stats().refreshFailures).toBeLessThan(12);
    await Promise.all(suite.cluster.nodes.map((n) => n.restart()));
    await suite.cluster.waitHealthy();
    const outcomes = await Promise.all(during);
    await Promise.all(burst); // every command of the burst settles
    for (const o of outcomes) {
      // Served once the cluster was back; or given up with a typed error (pooled: each
      // try waits for one dial, within maxRedirections; or written on a socket whose
      // death was not yet seen: maybeExecuted).
      if (o !== "OK") expect(o).toBeInstanceOf(RedisErrorClass);
    }
    await waitFor(async () => (await c.set(keys[0] as string, "after").catch(() => "no")) === "OK", 20_000);
    await Promise.all(keys.map((k) => c.set(k, "after")));
    expect(await c.mget(...keys)).toEqual(keys.map(() => "after"));
    console.log(
      `[cluster] ${transport}: every node down for ${Date.now() - downAt} ms; ${outcomes.filter((o) => o === "OK").length}/${keys.length} commands issued meanwhile served; ` +
        `dials per node ${JSON.stringify([...dials.values()])}; stats ${JSON.stringify(c.stats())}`,
    );
  }, 90_000);
});
