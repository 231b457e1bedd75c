// Sentinel (issue 11): a real deployment (1 master, 2 replicas, 3 sentinels;
// test/support/sentinel-cluster.ts) and both transports. The data nodes and
// the sentinels have different passwords, so every test also proves the two
// sets of credentials stay apart.
//
// The tests share one deployment and run in order; each one leaves it whole
// again (waitHealthy) for the next. The measured failover pauses are printed
// with a "[sentinel]" prefix.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ConnectionError,
  createClient,
  ReplyError,
  SentinelError,
  TimeoutError,
  type Client,
  type ClientOptions,
  type RedisError,
  type TransportKind,
} from "../../src/index.js";
import { parseInfo, startSentinelCluster, type ClusterNode, type SentinelCluster } from "../support/sentinel-cluster.js";
import { waitFor } from "../support/wait.js";
import { keyOf, startLoad, startMonitor } from "./load.js";

const run = promisify(execFile);
const DATA_PASSWORD = "data-secret-1";
const SENTINEL_PASSWORD = "sentinel-secret-2";

const transports: TransportKind[] = ["pipelined", "pooled"];

let cluster: SentinelCluster;
const clients: Client[] = [];

beforeAll(async () => {
  cluster = await startSentinelCluster({ dataPassword: DATA_PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
}, 60_000);
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  // Whatever a test did (or failed to undo), the next one starts whole.
  await cluster?.heal();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

function client(transport: TransportKind, extra: Partial<ClientOptions> = {}, sentinel: Partial<NonNullable<ClientOptions["sentinel"]>> = {}): Client {
  const c = createClient({
    transport,
    password: DATA_PASSWORD,
    clientName: "respite-sentinel-test",
    connectTimeoutMs: 1000,
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    ...extra,
    sentinel: { nodes: cluster.sentinelUrls, name: cluster.name, password: SENTINEL_PASSWORD, timeoutMs: 500, ...sentinel },
  });
  clients.push(c);
  return c;
}

/** "TimeoutError(maybeExecuted) x12, ConnectionError x3" */
function describeRejections(recs: readonly { error?: RedisError }[]): string {
  const counts = new Map<string, number>();
  for (const r of recs) {
    const k = `${r.error?.constructor.name}${r.error?.maybeExecuted ? "(maybeExecuted)" : ""}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k} x${n}`).join(", ") || "none";
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function portOf(c: Client): Promise<number> {
  const reply = await c.command(["CONFIG", "GET", "port"]);
  return Number((reply as string[])[1]);
}

/** Errors emitted by the client, and the dials it announced. */
function watch(c: Client): { errors: RedisError[]; reconnecting: number } {
  const seen = { errors: [] as RedisError[], reconnecting: 0 };
  c.on("error", (e) => seen.errors.push(e));
  c.on("reconnecting", () => seen.reconnecting++);
  return seen;
}

describe("sentinel options", () => {
  it("validates the sentinel option and role without echoing secrets", () => {
    expect(() => createClient({ role: "replica", lazyConnect: true })).toThrow(/needs the sentinel option/);
    expect(() => createClient({ sentinel: { nodes: [], name: "m" }, lazyConnect: true })).toThrow(/at least one sentinel/);
    expect(() => createClient({ sentinel: { nodes: ["127.0.0.1:1"], name: "" }, lazyConnect: true })).toThrow(/sentinel.name/);
    let message = "";
    try {
      createClient({ sentinel: { nodes: ["redis://u:hunter2@127.0.0.1:1"], name: "m" }, lazyConnect: true });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/sentinel.username \/ sentinel.password/);
    expect(message).not.toContain("hunter2");
    const c = createClient({ sentinel: { nodes: ["127.0.0.1", "rediss://h:1"], name: "m" }, lazyConnect: true });
    expect(c.options.sentinel?.nodes).toEqual([
      { host: "127.0.0.1", port: 26379 },
      { host: "h", port: 1 },
    ]);
    expect(c.options.sentinel?.tls).toEqual({});
    expect(c.options.role).toBe("master");
    c.destroy();
  });
});

describe("sentinel lifecycle", () => {
  it("lets the process exit after close(), and after a fatal error without close()", async () => {
    // The watcher's socket must never keep a process alive on its own: a
    // client stopped by an unknown master name (while the sentinels are fine
    // and its event subscription is live) is not closed by its user.
    const script = `
      import { createClient } from "./src/index.ts";
      const sentinel = { nodes: JSON.parse(process.env.NODES), password: process.env.SPW, timeoutMs: 500 };
      const wrong = createClient({ password: process.env.DPW, sentinel: { ...sentinel, name: "no-such-master" } });
      const fatal = await wrong.connect().catch((e) => e.kind);
      const good = createClient({ password: process.env.DPW, sentinel: { ...sentinel, name: process.env.NAME } });
      await good.command(["SET", "sentinel:exit", "1"]);
      await new Promise((r) => setTimeout(r, 300)); // the watchers are subscribed by now
      await good.close();
      console.log(JSON.stringify({ fatal, status: wrong.status }));
    `;
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: process.cwd(),
      env: { ...process.env, NODES: JSON.stringify(cluster.sentinelUrls), SPW: SENTINEL_PASSWORD, DPW: DATA_PASSWORD, NAME: cluster.name },
      timeout: 15_000,
    });
    expect(JSON.parse(stdout.trim())).toEqual({ fatal: "unknown-master", status: "closed" });
  });
});

describe("sentinel pub/sub", () => {
  it("the subscriber follows a SIGSTOPped master: resubscribed on the new one, messages resume", async () => {
    const c = client("pipelined");
    const got: string[] = [];
    await c.subscribe("sentinel:ch", (m) => got.push(m));
    const old = await cluster.currentMaster();
    expect(await old.admin(["PUBSUB", "NUMSUB", "sentinel:ch"])).toEqual(["sentinel:ch", 1]);
    let resubscribed: { channels: string[]; patterns: string[] } | undefined;
    c.once("resubscribed", (info) => (resubscribed = info));
    // The paused master never closes the subscriber's socket: only the failover announcement can move it.
    old.pause();
    try {
      const fresh = await cluster.waitForNewMaster(old.port);
      await waitFor(() => resubscribed !== undefined, 15_000);
      expect(resubscribed).toEqual({ channels: ["sentinel:ch"], patterns: [], shardChannels: [] });
      expect(await fresh.admin(["PUBLISH", "sentinel:ch", "after failover"])).toBe(1);
      await waitFor(() => got.length > 0, 5000);
      expect(got).toEqual(["after failover"]);
    } finally {
      old.resume();
    }
  });
});

describe.each(transports)("sentinel, %s transport", (transport) => {
  it("finds the master through the sentinels and checks its ROLE", async () => {
    const c = client(transport);
    await c.connect();
    const master = await cluster.currentMaster();
    expect(await portOf(c)).toBe(master.port);
    expect(((await c.command(["ROLE"])) as string[])[0]).toBe("master");
    expect(await c.command(["SET", "sentinel:hello", "1"])).toBe("OK");
  });

  it("fails once with a clear error for an unknown master name", async () => {
    const c = client(transport, {}, { name: "no-such-master" });
    const seen = watch(c);
    const err = (await c.connect().catch((e: unknown) => e)) as SentinelError;
    expect(err).toBeInstanceOf(SentinelError);
    expect(err.kind).toBe("unknown-master");
    expect(err.message).toContain('no sentinel knows a master named "no-such-master"');
    const later = await c.command(["GET", "k"]).catch((e: unknown) => e);
    expect(later).toBeInstanceOf(SentinelError);
    await sleep(300);
    // One error, no retry loop (the pipelined transport may report the same
    // error object twice: once for the dial, once for closing).
    expect(new Set(seen.errors).size).toBe(1);
    expect(seen.reconnecting).toBe(0);
    expect(c.status).toBe("closed");
  });

  it("takes rotating credentials for the sentinels and for the data nodes, each asked on its own dials", async () => {
    let sentinelAsks = 0;
    let dataAsks = 0;
    const c = client(
      transport,
      { password: undefined, credentials: () => (dataAsks++, { password: DATA_PASSWORD }) },
      { password: undefined, credentials: () => (sentinelAsks++, { password: SENTINEL_PASSWORD }) },
    );
    expect(await c.command(["PING"])).toBe("PONG");
    expect(sentinelAsks).toBeGreaterThanOrEqual(1);
    expect(dataAsks).toBeGreaterThanOrEqual(1);
  });

  it("keeps sentinel credentials apart and never shows a password", async () => {
    const c = client(transport, {}, { password: "wrong-sentinel-pw" });
    const seen = watch(c);
    const err = (await c.connect().catch((e: unknown) => e)) as SentinelError;
    expect(err).toBeInstanceOf(SentinelError);
    expect(err.kind).toBe("auth-failed");
    expect(err.message).toMatch(/refused the sentinel credentials/);
    for (const e of [err, ...seen.errors]) {
      expect(e.message).not.toContain("wrong-sentinel-pw");
      expect(e.message).not.toContain(SENTINEL_PASSWORD);
      expect(e.message).not.toContain(DATA_PASSWORD);
    }
    expect(seen.reconnecting).toBe(0);
  });

  it('role "replica" reads from a replica and moves when that replica dies', async () => {
    const c = client(transport, { role: "replica" });
    await c.connect();
    const master = await cluster.currentMaster();
    expect(((await c.command(["ROLE"])) as string[])[0]).toBe("slave");
    const first = await portOf(c);
    expect(first).not.toBe(master.port);
    const write = await c.command(["SET", "sentinel:ro", "1"]).catch((e: unknown) => e);
    expect(write).toBeInstanceOf(ReplyError);
    expect((write as ReplyError).code).toBe("READONLY");
    const victim = cluster.dataNodes.find((n) => n.port === first) as ClusterNode;
    const t0 = Date.now();
    await victim.kill();
    let now = first;
    await waitFor(
      async () => {
        now = await portOf(c).catch(() => first);
        return now !== first;
      },
      10_000,
      20,
    );
    console.log(`[sentinel] ${transport}: role replica moved from ${first} to ${now} in ${Date.now() - t0} ms`);
    expect(now).not.toBe(master.port);
    expect(((await c.command(["ROLE"])) as string[])[0]).toBe("slave");
  });

  it("follows kill -9 of the master under load: short pause, in-flight writes maybeExecuted, nothing crossed or lost", async () => {
    const c = client(transport, { commandTimeoutMs: 10_000, pool: { max: 16 } });
    await c.connect();
    const old = await cluster.currentMaster();
    const load = startLoad(c, 16);
    await waitFor(() => load.ok > 500, 10_000);
    load.fault();
    await old.kill();
    await waitFor(() => load.firstOkAfterFault !== undefined, 20_000, 20);
    await sleep(300);
    const report = await load.stop();
    const fresh = await cluster.waitForNewMaster(old.port);
    console.log(
      `[sentinel] ${transport}: kill -9 failover pause ${report.pauseMs} ms (first reply after ${report.firstOkAfterFaultMs} ms; ` +
        `down-after ${cluster.downAfterMs} ms); rejected SETs: ${describeRejections(report.setRejections)}; rejected GETs: ${report.getRejections.length}`,
    );
    expect(report.crossed).toEqual([]);
    expect(report.unsettled).toBe(0);
    // Served again within down-after + failover + backoff.
    expect(report.pauseMs).toBeLessThan(cluster.downAfterMs + cluster.failoverTimeoutMs + 2000);
    // Writes written when the master died may have run: maybeExecuted. A
    // write rejected as not executed was never sent (pooled: the dial it
    // waited for failed).
    const inFlight = report.setRejections.filter((r) => r.error?.maybeExecuted === true);
    expect(inFlight.length).toBeGreaterThan(0);
    for (const r of report.setRejections) {
      expect(r.error).toBeInstanceOf(ConnectionError);
      if (r.error?.maybeExecuted === false) expect((r.error as ConnectionError).reason).not.toBe("socket-closed");
    }
    // Every caller's last acknowledged value is on the new master (nothing
    // was written after the failover elsewhere), unless a later write's
    // fate is unknown; a write reported as not executed never shows up.
    for (let i = 0; i < report.lastAcked.length; i++) {
      const v = (await fresh.admin(["GET", keyOf(i)])) as string | null;
      const acked = report.lastAcked[i] as { value: string | undefined; unknownAfter: boolean };
      if (!acked.unknownAfter) expect(v).toBe(acked.value);
      if (v !== null) expect(report.sets.get(v)?.error?.maybeExecuted).not.toBe(false);
    }
    expect(await portOf(c)).toBe(fresh.port);
  });

  it("follows a SIGSTOPped master: callers time out, the client moves, the old master gets no write after the move", async () => {
    const c = client(transport, { commandTimeoutMs: 400, pool: { max: 16 } });
    await c.connect();
    const old = await cluster.currentMaster();
    const monitor = await startMonitor(old.port, DATA_PASSWORD);
    const load = startLoad(c, 8);
    try {
      await waitFor(() => load.ok > 300, 10_000);
      load.fault();
      const pausedAt = Date.now();
      old.pause();
      // The paused master answers nothing: the first success after the
      // fault comes from the new master. Writes issued after it must never
      // reach the old one.
      await waitFor(() => load.firstOkAfterFault !== undefined, 20_000, 20);
      const movedAt = load.firstOkAfterFault as number;
      await sleep(200);
      const resumedAt = Date.now();
      old.resume();
      // The old master is back and still believes it is the master (the
      // sentinels convert it only seconds later): the most dangerous moment.
      await sleep(1500);
      const report = await load.stop();
      const fresh = await cluster.waitForNewMaster(old.port);
      const stillMaster = parseInfo(await old.admin(["INFO", "replication"])).role;
      console.log(
        `[sentinel] ${transport}: SIGSTOP failover pause ${movedAt - pausedAt} ms (down-after ${cluster.downAfterMs} ms); ` +
          `old master role after SIGCONT: ${stillMaster}; rejected SETs: ${describeRejections(report.setRejections)}`,
      );
      expect(report.crossed).toEqual([]);
      expect(report.unsettled).toBe(0);
      // Callers got their timeouts while the master hung.
      // (A command still waiting for a pooled socket times out as not executed.)
      expect(report.setRejections.filter((r) => r.error instanceof TimeoutError && r.error.maybeExecuted).length).toBeGreaterThan(0);
      // What the old master executed: before the pause, acknowledged writes;
      // after SIGCONT, the paused sockets' backlog: only writes issued before
      // the client moved, all rejected as maybeExecuted. A write rejected as
      // not executed (pooled: the dial it waited for failed) never shows up.
      const sets = monitor.lines.filter((l) => l.args[0]?.toUpperCase() === "SET" && l.args[1]?.startsWith("sentinel-load:"));
      const late = sets.filter((l) => l.at >= resumedAt);
      for (const l of sets) {
        const rec = report.sets.get(l.args[2] as string);
        expect(rec, `unknown value ${l.args[2]}`).toBeDefined();
        expect(rec?.issuedAt).toBeLessThan(movedAt);
        if (rec?.outcome === "rejected") expect(rec.error?.maybeExecuted).toBe(true);
      }
      for (const l of late) expect(report.sets.get(l.args[2] as string)?.outcome).toBe("rejected");
      // Writes acknowledged after the move are on the new master.
      for (let i = 0; i < report.lastAcked.length; i++) {
        const acked = report.lastAcked[i] as { value: string | undefined; unknownAfter: boolean };
        if (acked.unknownAfter) continue;
        expect(await fresh.admin(["GET", keyOf(i)])).toBe(acked.value);
      }
      expect(await portOf(c)).toBe(fresh.port);
      // afterEach demotes it now rather than wait for the sentinels' conversion (seconds).
    } finally {
      monitor.close();
      old.resume();
      await load.stop(1000);
    }
  });

  it("all sentinels down: keeps serving, clear errors with bounded retries, recovery once one sentinel returns", async () => {
    const b = client(transport, { commandTimeoutMs: 1000, reconnect: { initialDelayMs: 50, maxDelayMs: 400 } }, { timeoutMs: 300 });
    await b.connect();
    const master = await cluster.currentMaster();
    // afterEach restarts the sentinels still down.
    await Promise.all(cluster.sentinels.map((s) => s.kill()));
    // The data connection does not need the sentinels.
    expect(await b.command(["PING"])).toBe("PONG");

    // A new client cannot find the master: bounded retries, then it stops.
    const a = client(transport, { reconnect: { initialDelayMs: 20, maxDelayMs: 50, maxAttempts: 3 } });
    const aSeen = watch(a);
    const exhausted = (await a.connect().catch((e: unknown) => e)) as ConnectionError;
    expect(exhausted).toBeInstanceOf(ConnectionError);
    expect(exhausted.reason).toBe("reconnect-exhausted");
    expect(exhausted.cause).toBeInstanceOf(SentinelError);
    expect((exhausted.cause as SentinelError).kind).toBe("unreachable");
    expect(exhausted.message).toMatch(/no sentinel answered/);
    expect(aSeen.reconnecting).toBeLessThanOrEqual(3);

    // The connected client loses its socket while callers keep asking: every
    // command fails clearly, and dials are paced by the backoff, never a tight loop.
    const bSeen = watch(b);
    const lost = new Promise((resolve) => b.once("disconnect", resolve));
    await master.admin(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    await lost;
    const outcomes: unknown[] = [];
    for (const until = Date.now() + 1500; Date.now() < until; ) {
      outcomes.push(await b.command(["PING"]).catch((e: unknown) => e));
      await sleep(20);
    }
    expect(outcomes.length).toBeGreaterThan(0);
    for (const o of outcomes) {
      // Pipelined: queued offline until the deadline; pooled: the failed dial's error.
      if (o instanceof SentinelError) expect(o.kind).toBe("unreachable");
      else expect(o).toBeInstanceOf(TimeoutError);
    }
    const dialErrors = bSeen.errors.filter((e) => e instanceof SentinelError);
    expect(dialErrors.length).toBeGreaterThan(0);
    for (const e of dialErrors) expect((e as SentinelError).kind).toBe("unreachable");
    expect(dialErrors.some((e) => /no sentinel answered for "mymaster"/.test(e.message))).toBe(true);
    expect(bSeen.reconnecting).toBeGreaterThanOrEqual(2);
    expect(bSeen.reconnecting).toBeLessThan(40);

    // One sentinel returns: the client recovers by itself.
    const back = cluster.sentinels[1] as ClusterNode;
    const t0 = Date.now();
    await back.restart();
    await waitFor(async () => (await b.command(["PING"]).catch(() => null)) === "PONG", 10_000, 20);
    const recoveredMs = Date.now() - t0;
    console.log(`[sentinel] ${transport}: recovered ${recoveredMs} ms after one sentinel returned (${bSeen.reconnecting} dials while all were down)`);
    expect(recoveredMs).toBeLessThan(3000);
    expect(await portOf(b)).toBe(master.port);
  });
});
