// The features chaos suite (issue 7, last bullet): pub/sub, scripts, batches
// and blocking commands, run concurrently against one real redis-server while
// faults are injected on a fixed schedule: kill -9 + restart, CLIENT KILL TYPE
// normal, CLIENT KILL TYPE pubsub (each at least twice per transport).
//
// Workload, per transport:
//   (a) a subscriber client on one channel; a publisher loop PUBLISHes
//       numbered messages through the main client;
//   (b) 4 callers loop batch() of SET/INCR/GET on their own keys, alternating
//       plain and atomic: true;
//   (c) 2 callers loop a Lua script (INCR + SET + GET) through client.script();
//   (d) 2 callers loop BLPOP (1 s) on their own list, fed by an RPUSH loop.
//
// What is asserted:
//   - every issued call (batch, script, BLPOP, PUBLISH, RPUSH, subscribe)
//     settles exactly once: issued = resolved + rejected, nothing unsettled;
//   - every rejection is a RedisError (never a ProtocolError; never
//     ClientClosedError, the clients are closed only after every loop ended);
//     a plain batch's per-command results are values or RedisError instances,
//     never undefined;
//   - an atomic batch is all or nothing: either it rejects, or it returns
//     exactly ["OK", <integer>, <the value its own SET wrote>];
//   - nothing crossed: every value a caller reads (GET, script, BLPOP) is its own;
//   - after every kill -9 and every CLIENT KILL TYPE pubsub, the subscriber
//     emits 'resubscribed'; after every fault each script caller, each BLPOP
//     caller and each batch caller succeeds again (after a restart the script
//     cache is empty: that success is the NOSCRIPT -> EVAL fallback);
//   - messages arrive in strictly increasing order (no duplicates), some
//     arrive after the last fault, and once the subscriber is back after the
//     last fault, every PUBLISH that reached a subscriber is delivered.
// One summary line per transport.
//
// CHAOS_SECONDS (default 12) is the length of the fault schedule per
// transport, as in chaos.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientClosedError, createClient, ProtocolError, RedisError, type BatchResult, type Client, type Reply } from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { delay, transports, trapEscapes, type Settled, type TransportName } from "../robustness/support.js";

const SECONDS = Number(process.env.CHAOS_SECONDS ?? 12);
const COMMAND_TIMEOUT_MS = 1000;
const RECONNECT = { initialDelayMs: 20, maxDelayMs: 200 };
const BATCH_CALLERS = 4;
const SCRIPT_CALLERS = 2;
const POP_CALLERS = 2;
/** Faults of each kind, at least, per transport. */
const MIN_EACH = 2;
/** How long the server stays dead in a kill -9 outage (schedule pacing). */
const OUTAGE_MS = 300;
/** Pause between faults (schedule pacing), so the workload runs healthy in between. */
const BETWEEN_FAULTS_MS = 700;
/** Deadline for everything to work again after a fault. */
const RECOVERY_DEADLINE_MS = 10_000;

const escaped = trapEscapes();

type FaultName = "kill9-restart" | "kill-normal" | "kill-pubsub";
const FAULTS: readonly FaultName[] = ["kill9-restart", "kill-normal", "kill-pubsub"];

const SCRIPT = `
local n = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1])
return {n, redis.call('GET', KEYS[2])}
`;

/** Counts every call and how it settled; a rejection must be a RedisError. */
class Settlements {
  issued = 0;
  resolved = 0;
  rejected = 0;
  doubleSettled = 0;
  readonly rejectedBy: Record<string, number> = {};
  readonly violations: string[] = [];
  private readonly outstanding = new Set<number>();

  get unsettled(): number {
    return this.outstanding.size;
  }

  violation(text: string): void {
    if (this.violations.length < 50) this.violations.push(text);
  }

  track<T>(name: string, send: () => Promise<T>): Promise<Settled<T>> {
    const id = this.issued++;
    this.outstanding.add(id);
    let settled = false;
    const once = (): boolean => {
      if (settled) {
        this.doubleSettled++;
        this.violation(`${name}#${id} settled twice`);
        return false;
      }
      settled = true;
      this.outstanding.delete(id);
      return true;
    };
    let promise: Promise<T>;
    try {
      promise = send();
    } catch (err) {
      this.violation(`${name}#${id} threw synchronously: ${String(err)}`);
      promise = Promise.reject(err);
    }
    return promise.then(
      (value) => {
        if (once()) this.resolved++;
        return { ok: true as const, value };
      },
      (error: unknown) => {
        if (once()) {
          this.rejected++;
          const type = error instanceof Error ? error.constructor.name : typeof error;
          this.rejectedBy[type] = (this.rejectedBy[type] ?? 0) + 1;
          if (!(error instanceof RedisError)) this.violation(`${name}#${id} rejected with a non-RedisError: ${String(error)}`);
          if (error instanceof ProtocolError) this.violation(`${name}#${id}: ProtocolError from a real server: ${error.message}`);
          if (error instanceof ClientClosedError) this.violation(`${name}#${id}: ClientClosedError before close`);
        }
        return { ok: false as const, error };
      },
    );
  }
}

interface FaultReport {
  name: FaultName;
  /** When the fault was over (server back, or the kill answered). */
  at: number;
  /** ms until everything worked again; Infinity if not within the deadline. */
  recoveryMs: number;
  /** What had not recovered at the deadline. */
  missing: string[];
  /** CLIENT KILL's reply: how many connections it killed. */
  killed?: number;
}

describe.each(transports)("features chaos (%s)", (transport: TransportName) => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server.stop();
  });

  it(
    `pub/sub, batches, scripts and BLPOP through kill -9, CLIENT KILL normal/pubsub for ${SECONDS} s: all settle once, nothing crossed, all recover`,
    async () => {
      await server.admin(["FLUSHALL"]);
      const options = {
        url: server.url,
        transport,
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
        connectTimeoutMs: COMMAND_TIMEOUT_MS,
        reconnect: RECONNECT,
        pool: { max: 16, acquireTimeoutMs: COMMAND_TIMEOUT_MS },
      };
      const client: Client = createClient(options);
      const subClient: Client = createClient(options);
      const clientErrors: Record<string, number> = {};
      const countError = (e: Error): void => {
        clientErrors[e.constructor.name] = (clientErrors[e.constructor.name] ?? 0) + 1;
      };
      client.on("error", countError);
      subClient.on("error", countError);
      const ledger = new Settlements();
      const prefix = `fc:${transport}`;
      let running = true;

      // ---- (a) pub/sub -------------------------------------------------------------
      const channel = `${prefix}:chan`;
      let messages = 0;
      let lastMessage = -1;
      let lastMessageAt = 0;
      /** Messages received since the latest fault was over (reset by each fault). */
      let messagesSinceFault = 0;
      const received = new Set<number>();
      /** Once set, numbers >= it are remembered for the final no-loss check. */
      let trackFrom = Infinity;
      const resubscribedAt: number[] = [];
      let subscriberDisconnects = 0;
      subClient.on("resubscribed", (info) => {
        if (!info.channels.includes(channel)) ledger.violation(`resubscribed without ${channel}: ${JSON.stringify(info)}`);
        resubscribedAt.push(Date.now());
      });
      subClient.on("subscriber-disconnect", () => subscriberDisconnects++);
      const sub = await ledger.track("SUBSCRIBE", () =>
        subClient.subscribe(channel, (message, ch) => {
          const n = Number(/^m:(\d+)$/.exec(message)?.[1] ?? NaN);
          if (ch !== channel || !Number.isInteger(n)) {
            ledger.violation(`message ${JSON.stringify(message)} on ${ch}: not ours`);
            return;
          }
          if (n <= lastMessage) ledger.violation(`message ${n} after ${lastMessage}: out of order or duplicated`);
          lastMessage = n;
          lastMessageAt = Date.now();
          messages++;
          messagesSinceFault++;
          if (n >= trackFrom) received.add(n);
        }),
      );
      expect(sub.ok, "initial subscribe").toBe(true);

      let published = 0;
      /** Numbers >= trackFrom whose PUBLISH reached a subscriber. */
      const deliveredTo = new Set<number>();
      const publisher = async (): Promise<void> => {
        for (let n = 0; running; n++) {
          const r = await ledger.track("PUBLISH", () => client.command(["PUBLISH", channel, `m:${n}`]));
          if (r.ok) {
            if (r.value !== 0 && r.value !== 1) ledger.violation(`PUBLISH got ${JSON.stringify(r.value)}`);
            published++;
            if (n >= trackFrom && r.value === 1) deliveredTo.add(n);
          }
          await delay(r.ok ? 2 : 10); // rate, not synchronisation
        }
      };

      // ---- (b) batches ---------------------------------------------------------------
      let batches = 0;
      let crossed = 0;
      const crossedSamples: string[] = [];
      const cross = (text: string): void => {
        crossed++;
        if (crossedSamples.length < 10) crossedSamples.push(text);
      };
      // *OkAt: when the caller's latest successful call was *issued*: a call
      // issued after a fault and answered proves recovery (one answered just
      // after it may have been served before it).
      const batchOkAt: number[] = Array.from({ length: BATCH_CALLERS }, () => 0);
      let atomicOk = 0;
      let atomicRejected = 0;
      let plainOk = 0;
      const batchCaller = async (i: number): Promise<void> => {
        const str = `${prefix}:b${i}:str`;
        const ctr = `${prefix}:b${i}:ctr`;
        const mine = `b${i}:`;
        for (let seq = 0; running; seq++) {
          const atomic = seq % 2 === 1;
          const value = `b${i}:${seq}`;
          const t0 = Date.now();
          const r = await ledger.track(atomic ? "BATCH-ATOMIC" : "BATCH", () =>
            client.batch([["SET", str, value], ["INCR", ctr], ["GET", str]], { atomic }),
          );
          batches++;
          if (!r.ok) {
            if (!atomic) ledger.violation(`a plain batch rejected as a whole: ${String(r.error)}`);
            else atomicRejected++;
            if (Date.now() - t0 < 5) await delay(10);
            continue;
          }
          const results: BatchResult[] = r.value;
          if (!Array.isArray(results) || results.length !== 3) {
            ledger.violation(`batch returned ${JSON.stringify(results)}: expected 3 results`);
            continue;
          }
          if (atomic) {
            // All or nothing: every result is a reply, and GET saw its own SET.
            const [set, incr, get] = results;
            if (set !== "OK" || typeof incr !== "number" || incr < 1 || get !== value) {
              if (typeof get === "string" && get !== value) cross(`atomic GET ${str} got ${get}, expected ${value}`);
              ledger.violation(`atomic batch partial or wrong: ${results.map((x) => (x instanceof Error ? `${x.constructor.name}` : JSON.stringify(x))).join(", ")}`);
            } else {
              atomicOk++;
              batchOkAt[i] = t0;
            }
            continue;
          }
          let allOk = true;
          results.forEach((x, k) => {
            if (x === undefined) ledger.violation(`plain batch result ${k} is undefined`);
            else if (x instanceof Error) {
              allOk = false;
              if (!(x instanceof RedisError)) ledger.violation(`plain batch result ${k} is a non-RedisError ${String(x)}`);
              if (x instanceof ProtocolError) ledger.violation(`plain batch result ${k}: ProtocolError ${x.message}`);
            }
          });
          const [set, incr, get] = results;
          if (!(set instanceof RedisError) && set !== "OK") cross(`SET ${str} got ${JSON.stringify(set)}`);
          if (!(incr instanceof RedisError) && (typeof incr !== "number" || incr < 1)) cross(`INCR ${ctr} got ${JSON.stringify(incr)}`);
          if (!(get instanceof RedisError) && get !== null && !(typeof get === "string" && get.startsWith(mine))) cross(`GET ${str} got ${JSON.stringify(get)}`);
          if (allOk) {
            plainOk++;
            batchOkAt[i] = t0;
          }
        }
      };

      // ---- (c) scripts -----------------------------------------------------------------
      const script = client.script(SCRIPT);
      let scriptsOk = 0;
      const scriptOkAt: number[] = Array.from({ length: SCRIPT_CALLERS }, () => 0);
      const scriptCaller = async (i: number): Promise<void> => {
        const keys = [`${prefix}:s${i}:ctr`, `${prefix}:s${i}:tag`];
        for (let seq = 0; running; seq++) {
          const tag = `s${i}:${seq}`;
          const t0 = Date.now();
          const r = await ledger.track("SCRIPT", () => script(keys, [tag]));
          if (r.ok) {
            const v: Reply = r.value;
            if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== "number" || v[0] < 1 || v[1] !== tag) {
              cross(`script ${i} got ${JSON.stringify(v)}, expected [n, ${tag}]`);
            } else {
              scriptsOk++;
              scriptOkAt[i] = t0;
            }
          } else if (Date.now() - t0 < 5) await delay(10);
        }
      };

      // ---- (d) BLPOP fed by RPUSH ------------------------------------------------------------
      const lists = Array.from({ length: POP_CALLERS }, (_, i) => `${prefix}:l${i}`);
      let pops = 0;
      let pushes = 0;
      const popOkAt: number[] = Array.from({ length: POP_CALLERS }, () => 0);
      const popper = async (i: number): Promise<void> => {
        const list = lists[i] as string;
        let last = -1;
        while (running) {
          const t0 = Date.now();
          const r = await ledger.track("BLPOP", () => client.command(["BLPOP", list, "1"]));
          if (!r.ok) {
            if (Date.now() - t0 < 5) await delay(10);
            continue;
          }
          const v: Reply = r.value;
          if (v === null) continue; // timed out on the server: nothing pushed in that second
          const item = Array.isArray(v) && v.length === 2 && v[0] === list && typeof v[1] === "string" ? /^l(\d+):(\d+)$/.exec(v[1]) : null;
          if (item === null || Number(item[1]) !== i) {
            cross(`BLPOP ${list} got ${JSON.stringify(v)}`);
            continue;
          }
          const n = Number(item[2]);
          if (n <= last) ledger.violation(`BLPOP ${list}: item ${n} after ${last}`);
          last = n;
          pops++;
          popOkAt[i] = t0;
        }
      };
      const feeder = async (): Promise<void> => {
        for (let n = 0; running; n++) {
          const rs = await Promise.all(lists.map((list, i) => ledger.track("RPUSH", () => client.command(["RPUSH", list, `l${i}:${n}`]))));
          pushes += rs.filter((r) => r.ok).length;
          await delay(10); // rate, not synchronisation
        }
      };

      // ---- faults -------------------------------------------------------------------------
      const faults: FaultReport[] = [];
      let lastFaultAt = 0;
      const countSince = (times: readonly number[], since: number): number => times.filter((t) => t > since).length;

      /**
       * Poll until everything the fault touched works again (or the deadline):
       * a 'resubscribed' event and a message after `eventsSince`, and a call
       * issued after `callsSince` answered, for every script, BLPOP and batch caller.
       */
      const recovered = async (name: FaultName, eventsSince: number, callsSince: number, killed?: number): Promise<void> => {
        const needsResubscribe = name !== "kill-normal";
        const missing = (): string[] => {
          const m: string[] = [];
          if (needsResubscribe && countSince(resubscribedAt, eventsSince) === 0) m.push("resubscribed");
          if (needsResubscribe && lastMessageAt <= eventsSince) m.push("message");
          scriptOkAt.forEach((t, i) => t <= callsSince && m.push(`script${i}`));
          popOkAt.forEach((t, i) => t <= callsSince && m.push(`pop${i}`));
          batchOkAt.forEach((t, i) => t <= callsSince && m.push(`batch${i}`));
          return m;
        };
        const deadline = Date.now() + RECOVERY_DEADLINE_MS;
        while (missing().length > 0 && Date.now() < deadline) await delay(10);
        const left = missing();
        faults.push({ name, at: callsSince, recoveryMs: left.length === 0 ? Date.now() - callsSince : Infinity, missing: left, killed });
      };

      const runFault = async (name: FaultName): Promise<void> => {
        switch (name) {
          case "kill9-restart": {
            await server.kill();
            await delay(OUTAGE_MS);
            // The old process is gone and the replies it sent were read long
            // ago: from here on, whatever succeeds was served by the new one
            // (the subscriber may well resubscribe before restart() returns).
            const down = Date.now();
            messagesSinceFault = 0;
            lastFaultAt = down;
            await server.restart();
            await recovered(name, down, down);
            // The restarted server's script cache was empty: only EVAL (the
            // NOSCRIPT fallback) can have loaded the script since.
            const exists = await server.admin(["SCRIPT", "EXISTS", script.sha1]);
            if (JSON.stringify(exists) !== "[1]") ledger.violation(`after a restart, SCRIPT EXISTS answered ${JSON.stringify(exists)}: no EVAL fallback ran`);
            return;
          }
          case "kill-normal":
          case "kill-pubsub": {
            // The subscriber may be back before the reply to CLIENT KILL is read.
            const before = Date.now();
            const reply = await server.admin(["CLIENT", "KILL", "TYPE", name === "kill-normal" ? "normal" : "pubsub", "SKIPME", "yes"]);
            const after = Date.now();
            messagesSinceFault = 0;
            lastFaultAt = after;
            await recovered(name, before, after, typeof reply === "number" ? reply : -1);
            return;
          }
        }
      };

      // ---- run ---------------------------------------------------------------------------
      const started = Date.now();
      await client.connect();
      const loops = [
        publisher(),
        feeder(),
        ...Array.from({ length: BATCH_CALLERS }, (_, i) => batchCaller(i)),
        ...Array.from({ length: SCRIPT_CALLERS }, (_, i) => scriptCaller(i)),
        ...Array.from({ length: POP_CALLERS }, (_, i) => popper(i)),
      ];
      // Healthy first: every loop has worked once before the first fault.
      await recovered("kill-normal", started, started);
      const warmup = faults.pop() as FaultReport;
      const end = Date.now() + SECONDS * 1000;
      const count = (n: FaultName): number => faults.filter((f) => f.name === n).length;
      for (let k = 0; Date.now() < end || FAULTS.some((f) => count(f) < MIN_EACH); k++) {
        await runFault(FAULTS[k % FAULTS.length] as FaultName);
        if (faults.some((f) => f.recoveryMs === Infinity)) break; // no point going on: reported below
        await delay(BETWEEN_FAULTS_MS);
      }

      // ---- after the last fault: nothing published to a live subscription is lost -------------
      // Wait until a PUBLISH reaches the subscriber again, then track every
      // number from the next one on: each that reached a subscriber must arrive.
      let deliveryCheck = "not run";
      try {
        const reachedAgain = Date.now();
        while (Date.now() - reachedAgain < RECOVERY_DEADLINE_MS && lastMessageAt <= lastFaultAt) await delay(10);
        trackFrom = lastMessage + 1;
        const windowStart = Date.now();
        while (Date.now() - windowStart < RECOVERY_DEADLINE_MS && deliveredTo.size < 100) await delay(10);
        running = false; // no more PUBLISH after this point
        const loopsDone = await Promise.race([Promise.all(loops).then(() => true), delay(10_000).then(() => false)]);
        const all = [...deliveredTo];
        const waitDelivered = Date.now();
        while (Date.now() - waitDelivered < 5000 && all.some((n) => !received.has(n))) await delay(10);
        const lost = all.filter((n) => !received.has(n));
        deliveryCheck = `tracked=${all.length} lost=${lost.length}${lost.length > 0 ? ` (first: ${lost.slice(0, 5).join(",")})` : ""} loopsDone=${loopsDone}`;
        if (!loopsDone) ledger.violation("the loops did not end within 10 s of the stop");
        if (all.length === 0) ledger.violation("no PUBLISH reached the subscriber after the last fault");
        if (lost.length > 0) ledger.violation(`messages published to the subscriber after the last fault and never delivered: ${deliveryCheck}`);
      } finally {
        running = false;
        const deadline = Date.now() + 5000;
        while (ledger.unsettled > 0 && Date.now() < deadline) await delay(10);
        await client.close();
        await subClient.close();
      }
      const messagesAfterLastFault = messagesSinceFault;

      const rejected = JSON.stringify(ledger.rejectedBy).replace(/"/g, "");
      console.log(
        `chaos-features[${transport}]: batches=${batches} scripts=${scriptsOk} pops=${pops} messages=${messages} faults=${faults.length} ` +
          `settled=${ledger.resolved + ledger.rejected} rejected=${rejected} unsettled=${ledger.unsettled}`,
      );
      const healthy =
        escaped.length === 0 && ledger.unsettled === 0 && ledger.violations.length === 0 && crossed === 0 && faults.every((f) => f.recoveryMs !== Infinity);
      if (!healthy || process.env.CHAOS_VERBOSE === "1") {
        console.log(
          `chaos-features[${transport}] details: seconds=${SECONDS} ran=${Date.now() - started}ms atomicOk=${atomicOk} atomicRejected=${atomicRejected} plainOk=${plainOk} ` +
            `published=${published} pushes=${pushes} resubscribed=${resubscribedAt.length} subscriberDisconnects=${subscriberDisconnects} ` +
            `clientErrors=${JSON.stringify(clientErrors).replace(/"/g, "")} warmup=${warmup.recoveryMs}ms delivery: ${deliveryCheck}\n` +
            `  faults: ${faults.map((f) => `${f.name}${f.killed !== undefined ? `(killed ${f.killed})` : ""}=${f.recoveryMs}ms${f.missing.length > 0 ? ` missing ${f.missing.join(",")}` : ""}`).join(" ")}\n` +
            `  violations: ${ledger.violations.join(" | ")}`,
        );
      }

      expect(escaped).toEqual([]);
      expect(warmup.missing, "every loop worked before the first fault").toEqual([]);
      // Settlement: every call exactly once.
      expect(ledger.unsettled).toBe(0);
      expect(ledger.doubleSettled).toBe(0);
      expect(ledger.issued).toBe(ledger.resolved + ledger.rejected);
      // Typed errors, all-or-nothing transactions, ordered messages, nothing lost at the end.
      expect(ledger.violations).toEqual([]);
      expect(crossedSamples).toEqual([]);
      expect(crossed).toBe(0);
      // The schedule ran, and the faults did something.
      for (const f of FAULTS) expect(count(f), `${f} faults`).toBeGreaterThanOrEqual(MIN_EACH);
      expect(faults.filter((f) => f.name === "kill-pubsub").every((f) => (f.killed ?? 0) >= 1), "CLIENT KILL TYPE pubsub killed the subscriber").toBe(true);
      expect(faults.filter((f) => f.name === "kill-normal").every((f) => (f.killed ?? 0) >= 1), "CLIENT KILL TYPE normal killed connections").toBe(true);
      // Recovery after every fault: resubscribed (restart, pubsub kill), scripts
      // (NOSCRIPT fallback after a restart), BLPOP, batches.
      for (const f of faults) expect(f.missing, `${f.name} at +${f.at - started} ms: not recovered within ${RECOVERY_DEADLINE_MS} ms`).toEqual([]);
      expect(resubscribedAt.length).toBeGreaterThanOrEqual(2 * MIN_EACH);
      expect(messagesAfterLastFault).toBeGreaterThan(0);
      expect(atomicOk).toBeGreaterThan(0);
      expect(plainOk).toBeGreaterThan(0);
    },
    (SECONDS + 90) * 1000,
  );
});
