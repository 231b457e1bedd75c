// An API that refuses what it does not understand: an unknown option name,
// anywhere in the public API, throws a TypeError naming it and the nearest
// valid one (for JavaScript callers, who have no compiler), and nothing is
// sent; the multi-key helpers take an array as well as separate arguments,
// as ioredis and node-redis do.
import { describe, expect, it } from "vitest";
import { createClient, createCluster, type Client } from "../../src/index.js";
import { KeyvRespite } from "../../src/keyv/index.js";
import { checkBatchOptions, checkCloseOptions, checkConnectOptions, checkKeys, checkSubscribeOptions, nearest } from "../../src/option-keys.js";
import { checkCommandOptions, Request } from "../../src/request.js";
import { setArgs } from "../../src/helpers/strings.js";
import { flatKeys } from "../../src/helpers/base.js";
import { rejectionOf, TRANSPORTS, useRedis } from "./support.js";

const redis = useRedis();

/** Call `fn` with an argument the types refuse: what an untyped JavaScript caller can write. */
function untyped<T>(value: unknown): T {
  return value as T;
}

/** The TypeError `fn` throws synchronously. */
function thrown(fn: () => unknown): TypeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TypeError);
    return err as TypeError;
  }
  throw new Error("expected a TypeError, nothing was thrown");
}

async function rejected(promise: Promise<unknown>): Promise<TypeError> {
  const err = await rejectionOf(promise);
  expect(err).toBeInstanceOf(TypeError);
  return err as TypeError;
}

/** Commands the server has run since the last CONFIG RESETSTAT, by name. */
async function commandCalls(): Promise<Map<string, number>> {
  const info = String(await redis.server.admin(["INFO", "commandstats"]));
  return new Map([...info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)].map((m) => [m[1] as string, Number(m[2])]));
}

describe("the nearest valid name", () => {
  it("is the same name in another case, else one within 2 edits, else none", () => {
    expect(nearest("MATCH", ["match", "count", "type"])).toBe("match");
    expect(nearest("connectTimeOutMs", ["connectTimeoutMs", "commandTimeoutMs"])).toBe("connectTimeoutMs");
    expect(nearest("maxAttemps", ["initialDelayMs", "maxDelayMs", "maxAttempts"])).toBe("maxAttempts");
    expect(nearest("timeout", ["returnBuffers", "timeoutMs", "signal"])).toBe("timeoutMs");
    expect(nearest("mx", ["min", "max"])).toBe("max");
    expect(nearest("banana", ["match", "count", "type"])).toBeUndefined();
  });

  it("lists the valid names when none is near, and refuses a non-object", () => {
    expect(thrown(() => checkKeys("f(options)", { banana: 1 }, ["match", "count"])).message).toBe(
      'f(options): unknown option "banana"; valid options are "match", "count"',
    );
    expect(thrown(() => checkKeys("f(options)", "EX", ["EX"])).message).toBe("f(options): options must be an object, got string");
    expect(thrown(() => checkKeys("f(options)", ["a"], ["EX"])).message).toBe("f(options): options must be an object, got an array");
    expect(thrown(() => checkKeys("f(options)", { o: 1 }, [], "x.")).message).toBe('f(options): unknown option "x.o"; it takes no options');
  });
});

describe("createClient(options)", () => {
  const cases: [string, unknown, string][] = [
    ["a top-level name", { transprot: "pooled" }, 'createClient(options): unknown option "transprot"; did you mean "transport"?'],
    ["another case", { connectTimeOutMs: 5 }, 'createClient(options): unknown option "connectTimeOutMs"; did you mean "connectTimeoutMs"?'],
    ["a reconnect name", { reconnect: { maxAttemps: 3 } }, 'createClient(options): unknown option "reconnect.maxAttemps"; did you mean "reconnect.maxAttempts"?'],
    ["a pool name", { pool: { mx: 3 } }, 'createClient(options): unknown option "pool.mx"; did you mean "pool.max"?'],
    ["an offlineQueue name", { offlineQueue: { size: 5 } }, 'createClient(options): unknown option "offlineQueue.size"; valid options are "offlineQueue.maxLength"'],
    [
      "a sentinel name",
      { sentinel: { nodes: ["127.0.0.1:1"], name: "m", pasword: "x" } },
      'createClient(options): unknown option "sentinel.pasword"; did you mean "sentinel.password"?',
    ],
  ];
  it.each(cases)("refuses %s, naming it and the nearest valid one", (_, options, message) => {
    expect(thrown(() => createClient(untyped({ lazyConnect: true, ...(options as object) }))).message).toBe(message);
  });

  it("keeps the maxWaiting message, and takes node:tls' own names as they are", () => {
    expect(thrown(() => createClient(untyped({ lazyConnect: true, pool: { maxWaiting: 10 } }))).message).toMatch(/pool.maxWaiting was replaced by maxPending/);
    const c = createClient({ lazyConnect: true, tls: { rejectUnauthorized: false, servername: "x" } });
    c.destroy();
  });

  it("refuses options that are neither a URL nor an object", () => {
    expect(thrown(() => createClient(untyped(6379))).message).toBe("createClient(options): options must be an object, got number");
    expect(thrown(() => createClient(untyped({ lazyConnect: true, reconnect: 3 }))).message).toBe(
      'createClient(options): option "reconnect" must be an object, got number',
    );
  });
});

describe("createCluster(options)", () => {
  const root = { rootNodes: ["redis://127.0.0.1:1"], lazyConnect: true };
  const cases: [string, unknown, string][] = [
    ["a cluster name", { readfrom: "replica" }, 'createCluster(options): unknown option "readfrom"; did you mean "readFrom"?'],
    ["a node option name", { comandTimeoutMs: 5 }, 'createCluster(options): unknown option "comandTimeoutMs"; did you mean "commandTimeoutMs"?'],
    ["a nested node option name", { pool: { maxx: 3 } }, 'createCluster(options): unknown option "pool.maxx"; did you mean "pool.max"?'],
    ["a createClient option a cluster does not take", { host: "127.0.0.1" }, 'createCluster(options): option "host" is not for a cluster: list the nodes in rootNodes'],
    ["a root node's name", { rootNodes: [{ host: "127.0.0.1", port: 1, pasword: "x" }] }, 'createCluster(options): unknown option "rootNodes[0].pasword"; valid options are "rootNodes[0].host", "rootNodes[0].port"'],
  ];
  it.each(cases)("refuses %s", (_, options, message) => {
    expect(thrown(() => createCluster(untyped({ ...root, ...(options as object) }))).message).toBe(message);
  });
});

describe("the Keyv adapter's options", () => {
  it("refuses an unknown adapter option, and adapter options given as client options", () => {
    const client = createClient({ lazyConnect: true });
    try {
      expect(thrown(() => new KeyvRespite(client, untyped({ namespce: "app" }))).message).toBe(
        'new KeyvRespite(connection, options): unknown option "namespce"; did you mean "namespace"?',
      );
      expect(thrown(() => new KeyvRespite(untyped({ lazyConnect: true, namespace: "app" }))).message).toMatch(
        /^createClient\(options\): unknown option "namespace"/,
      );
    } finally {
      client.destroy();
    }
  });
});

describe("options of calls wired in client.ts, cluster-client.ts and pub/sub", () => {
  it("batch, close, subscribe and connect options are checked by name", () => {
    expect(thrown(() => checkBatchOptions(untyped({ atomc: true }))).message).toBe('batch(commands, options): unknown option "atomc"; did you mean "atomic"?');
    expect(thrown(() => checkCloseOptions(untyped({ timeout: 5 }))).message).toBe('close(options): unknown option "timeout"; did you mean "timeoutMs"?');
    expect(thrown(() => checkSubscribeOptions(untyped({ buffers: true }))).message).toBe(
      'subscribe(..., options): unknown option "buffers"; valid options are "returnBuffers"',
    );
    expect(thrown(() => checkConnectOptions(untyped({ timeOutMs: 5 }))).message).toBe('connect(options): unknown option "timeOutMs"; did you mean "timeoutMs"?');
    checkBatchOptions({ atomic: true, returnBuffers: false, timeoutMs: 1, signal: undefined });
    checkCloseOptions({ timeoutMs: 1 });
    checkSubscribeOptions({ returnBuffers: true });
    checkConnectOptions({ timeoutMs: 1 });
  });
});

describe("command options (the per-command hot path)", () => {
  it("takes every CommandOptions name, and refuses others before any state exists", () => {
    checkCommandOptions({ returnBuffers: true, timeoutMs: 1, signal: new AbortController().signal });
    const ok = new Request(["GET", "k"], { returnBuffers: false, timeoutMs: 0, signal: undefined }, 0);
    ok.resolve(null);
    expect(thrown(() => new Request(["GET", "k"], untyped({ timeout: 5 }), 0)).message).toBe(
      'command(args, options): unknown option "timeout"; did you mean "timeoutMs"?',
    );
    expect(thrown(() => new Request(["GET", "k"], untyped("buffers"), 0)).message).toBe("command(args, options): options must be an object, got string");
  });

  it("setArgs (exported for batches) checks SET's option names too", () => {
    expect(thrown(() => setArgs(untyped({ ex: 10 }))).message).toBe('set(key, value, options): unknown option "ex"; did you mean "EX"?');
  });
});

for (const transport of TRANSPORTS) {
  describe(`unknown options send nothing (${transport})`, () => {
    it("every helper and command() refuses a misspelt option with a TypeError, and the server sees no command", async () => {
      const c: Client = redis.client(transport);
      await c.ping();
      await redis.server.admin(["CONFIG", "RESETSTAT"]);
      const k = `${transport}:strict`;
      // The SCAN iterators check their options at the first step, before sending.
      const expectations: [Promise<unknown>, string][] = [
        [c.command(["GET", k], untyped({ timeout: 5 })), 'command(args, options): unknown option "timeout"; did you mean "timeoutMs"?'],
        [c.command(["GET", k], untyped({ returnBuffer: true })), 'command(args, options): unknown option "returnBuffer"; did you mean "returnBuffers"?'],
        [c.set(k, "v", untyped({ ex: 10 })), 'set(key, value, options): unknown option "ex"; did you mean "EX"?'],
        [c.set(k, "v", untyped("EX")), "set(key, value, options): options must be an object, got string"],
        [c.getex(k, untyped({ persist: true })), 'getex(key, options): unknown option "persist"; did you mean "PERSIST"?'],
        [c.zadd(k, 1, "m", untyped({ nx: true })), 'zadd(key, ..., options): unknown option "nx"; did you mean "NX"?'],
        [c.zadd(k, untyped([{ score: 1, value: "a" }])), 'zadd(key, members, options): unknown option "members[0].value"; valid options are "members[0].score", "members[0].member"'],
        [c.zrange(k, 0, -1, untyped({ withscores: true })), 'zrange(key, start, stop, options): unknown option "withscores"; did you mean "withScores"?'],
        [c.zrange(k, 0, -1, untyped({ by: "SCORE", limit: { offset: 0, cnt: 1 } })), 'zrange(key, start, stop, options): unknown option "limit.cnt"; did you mean "limit.count"?'],
        [c.zrange(k, 0, -1, untyped({ by: "score" })), 'zrange(key, start, stop, options): option by must be "SCORE" or "LEX", got "score"'],
        [c.scan(untyped({ MATCH: "user:*" })).next(), 'scan(options): unknown option "MATCH"; did you mean "match"?'],
        [c.scan(untyped({ match: "user:*", COUNT: 10 })).next(), 'scan(options): unknown option "COUNT"; did you mean "count"?'],
        [c.hscan(k, untyped({ type: "hash" })).next(), 'hscan(key, options): unknown option "type"; valid options are "match", "count"'],
        [c.sscan(k, untyped({ cout: 10 })).next(), 'sscan(key, options): unknown option "cout"; did you mean "count"?'],
        [c.zscan(k, untyped({ Match: "*" })).next(), 'zscan(key, options): unknown option "Match"; did you mean "match"?'],
      ];
      for (const [call, message] of expectations) {
        const err = await rejected(call);
        expect(err.message).toBe(message);
      }
      const calls = await commandCalls();
      for (const name of ["get", "set", "getex", "zadd", "zrange", "scan", "hscan", "sscan", "zscan"]) {
        expect(calls.get(name), name).toBeUndefined();
      }
    });
  });

  describe(`multi-key helpers take an array (${transport})`, () => {
    it("mget, del, exists, unlink: separate keys, one array, or both, with the same replies", async () => {
      const c = redis.client(transport);
      const p = `${transport}:arr`;
      await c.mset({ [`${p}:a`]: "1", [`${p}:b`]: "2", [`${p}:c`]: "3", [`${p}:d`]: "4" });
      expect(await c.mget([`${p}:a`, `${p}:b`, `${p}:none`])).toEqual(["1", "2", null]);
      expect(await c.mget(`${p}:a`, `${p}:b`, `${p}:none`)).toEqual(["1", "2", null]);
      expect(await c.mget([`${p}:a`], `${p}:c`)).toEqual(["1", "3"]);
      expect(await c.mget([Buffer.from(`${p}:d`)])).toEqual(["4"]);
      expect(await c.exists([`${p}:a`, `${p}:b`, `${p}:none`, `${p}:a`])).toBe(3);
      expect(await c.del([`${p}:a`, `${p}:b`, `${p}:none`])).toBe(2);
      expect(await c.unlink([`${p}:c`], [`${p}:d`, `${p}:none`])).toBe(2);
      expect(await c.exists([`${p}:a`, `${p}:b`, `${p}:c`, `${p}:d`])).toBe(0);
    });

    it("hmget, hdel, lpush, rpush, sadd, srem, zrem take their fields / values / members as an array", async () => {
      const c = redis.client(transport);
      const p = `${transport}:arr2`;
      await c.hset(`${p}:h`, { f1: "1", f2: "2", f3: "3" });
      expect(await c.hmget(`${p}:h`, ["f1", "f2", "nope"])).toEqual(["1", "2", null]);
      expect(await c.hdel(`${p}:h`, ["f1", "f2", "nope"])).toBe(2);
      expect(await c.hgetall(`${p}:h`)).toEqual({ f3: "3" });
      expect(await c.lpush(`${p}:l`, ["a", "b"])).toBe(2);
      expect(await c.rpush(`${p}:l`, ["c", 4])).toBe(4);
      expect(await c.lrange(`${p}:l`, 0, -1)).toEqual(["b", "a", "c", "4"]);
      expect(await c.sadd(`${p}:s`, ["a", "b", "a"])).toBe(2);
      expect(await c.srem(`${p}:s`, ["a", "x"])).toBe(1);
      expect(await c.smembers(`${p}:s`)).toEqual(["b"]);
      await c.zadd(`${p}:z`, { a: 1, b: 2, c: 3 });
      expect(await c.zrem(`${p}:z`, ["a", "b", "x"])).toBe(2);
      expect(await c.zrange(`${p}:z`, 0, -1)).toEqual(["c"]);
    });
  });
}

describe("flatKeys", () => {
  it("spreads array arguments one level, in place, and returns plain arguments as they are", () => {
    const plain = ["a", "b"];
    expect(flatKeys(plain)).toBe(plain);
    expect(flatKeys([["a", "b"]])).toEqual(["a", "b"]);
    expect(flatKeys(["a", ["b", "c"], "d", []])).toEqual(["a", "b", "c", "d"]);
    expect(flatKeys([[]])).toEqual([]);
  });
});
