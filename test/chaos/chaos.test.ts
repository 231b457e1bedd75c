// The chaos suite (issue 5): K callers loop on SET key_i <unique value> /
// GET key_i through the fault proxy while faults are injected on a seeded
// schedule: CLIENT KILL, kill -9 and restart, SIGSTOP/SIGCONT, proxy
// blackhole, cut after N bytes, RST, 1-byte split, delay.
//
// What is asserted, and how it is observed from outside the client:
//   - every promise settles exactly once: issued = resolved + rejected, and
//     nothing is left unsettled once the callers stop (each call is wrapped
//     and counted; see ledger.ts);
//   - crossed replies = 0: a SET must get "OK", a GET null or a value written
//     by the same caller (values are unique: `c<i>:<seq>:<transport>`);
//   - no stale read: a GET returns the caller's last confirmed value, a value
//     whose SET ended with maybeExecuted: true, or null once the server was
//     restarted (no persistence) after the last confirmed SET was issued;
//   - every rejection is a RedisError, and maybeExecuted holds where it can be
//     known from outside:
//       QueueFullError, ConnectionError "offline" -> false; "connect-failed"
//           -> false for a write (a read may have been written once, then retried);
//       R1 (pipelined): issued while the client was not ready and no 'ready'
//           event until it settled -> false (it cannot have been written);
//       R2 (pipelined): a TimeoutError for a command issued while ready, with
//           no 'disconnect' until it timed out -> true (it was written);
//       a SET rejected with maybeExecuted false never ran: a MONITOR tap on
//           the server never sees its value, and no GET ever returns it;
//     and no ProtocolError ever (a real server's bytes, split or cut, must
//     never desync the decoder);
//   - during each kill -9 outage: bursts of 3x offlineQueue.maxLength issued
//     while the client reports itself offline get at most maxLength accepted
//     (the rest: QueueFullError at once), and the commands pending overall
//     stay within maxLength plus what the limit does not cover by design (see
//     pendingBound); heap growth stays under a bound; dials counted at the
//     proxy stay within what the backoff allows (no storm); and the client
//     serves again within maxDelayMs + connect time after the server is back;
//   - after every other fault the client serves again within a bound.
// One summary line is printed at the end.
//
// CHAOS_SECONDS (default 60) is the length of the fault schedule per
// transport; CHAOS_SECONDS=600 is the soak. CHAOS_SEED replays a schedule
// (the seed is in the details, printed on failure or with CHAOS_VERBOSE=1).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, QueueFullError, RedisError, type Client, type Reply } from "../../src/index.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { delay, dialBound, transports, trapEscapes, type TransportName } from "../robustness/support.js";
import { runFaultSchedule, seeded } from "../support/seeded.js";
import { expectCleanRun, Ledger } from "./ledger.js";
import { MonitorTap } from "./monitor.js";

const SECONDS = Number(process.env.CHAOS_SECONDS ?? 60);
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CALLERS = 32;
const COMMAND_TIMEOUT_MS = 500;
const CONNECT_TIMEOUT_MS = 1000;
const RECONNECT = { initialDelayMs: 50, maxDelayMs: 1000 };
const OFFLINE_MAX = 200;
const POOL_MAX = 8;
/** Allowance for a dial, the proxy and a reply on a loaded 2-core machine. */
const CONNECT_SLACK_MS = 500;
const HEAP_GROWTH_LIMIT = 64 * 1024 * 1024;

const escaped = trapEscapes();

type FaultName = "client-kill" | "kill9-restart" | "sigstop" | "blackhole" | "cut" | "reset" | "split" | "delay";
const FAULTS: FaultName[] = ["client-kill", "kill9-restart", "sigstop", "blackhole", "cut", "reset", "split", "delay"];

interface OutageReport {
  windowMs: number;
  dials: number;
  dialBound: number;
  /** Most commands pending (all callers) right after a burst issued offline. */
  maxPending: number;
  /** Most commands of one offline burst the client accepted (did not refuse at once). */
  maxAccepted: number;
  /** Bursts issued while the client said "ready" (a dial the proxy accepted, about to be reset). */
  readyBursts: number;
  burstRejected: number;
  burstIssued: number;
  heapGrowth: number;
  recoveryMs: number;
  sawBackoff: boolean;
}

interface FaultReport {
  name: FaultName;
  recoveryMs: number;
  boundMs: number;
}

describe.each(transports)("chaos (%s)", (transport: TransportName) => {
  let server: RedisServer;
  let proxy: FaultProxy;

  beforeAll(async () => {
    server = await startRedis();
    proxy = await startFaultProxy({ target: { port: server.port }, acceptors: 4, maxConnections: 256, overflow: "queue" });
  });
  afterAll(async () => {
    await proxy.close();
    await server.stop();
  });

  it(
    `${CALLERS} callers, SET/GET through faults for ${SECONDS} s: all settle once, nothing crossed, typed errors, bounded outages`,
    async () => {
      await server.admin(["FLUSHALL"]);
      const seed = seeded(SEED);
      const { rand, between } = seed;

      const client: Client = createClient({
        port: proxy.port,
        host: "127.0.0.1",
        transport,
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        reconnect: RECONNECT,
        offlineQueue: { maxLength: OFFLINE_MAX },
        pool: { max: POOL_MAX, acquireTimeoutMs: COMMAND_TIMEOUT_MS },
      });
      let readyEvents = 0;
      let disconnectEvents = 0;
      let reconnectingEvents = 0;
      const clientErrors: Record<string, number> = {};
      client.on("ready", () => readyEvents++);
      client.on("disconnect", () => disconnectEvents++);
      client.on("reconnecting", () => reconnectingEvents++);
      client.on("error", (e) => {
        clientErrors[e.constructor.name] = (clientErrors[e.constructor.name] ?? 0) + 1;
      });
      const ledger = new Ledger(
        { context: () => ({ ready: client.status === "ready", readyEvents, disconnectEvents }) },
        transport === "pipelined",
      );

      // maybeExecuted false must mean: never ran. Checked both ways round: a
      // value seen executed after its rejection, or within the few seconds
      // before it (a command is rejected at most commandTimeoutMs after it was
      // issued, so it cannot have run earlier than that). Bounded memory.
      const notExecuted = new Set<string>();
      const recentlyExecuted = new Map<string, number>();
      const monitor = new MonitorTap(server.port, (value) => {
        if (notExecuted.has(value)) ledger.violation(`SET ${value} was rejected with maybeExecuted false, but the server executed it`);
        recentlyExecuted.set(value, Date.now());
      });
      const markNotExecuted = (value: string): void => {
        notExecuted.add(value);
        if (recentlyExecuted.has(value)) ledger.violation(`SET ${value} was rejected with maybeExecuted false, but the server had executed it`);
      };
      const pruneTimer = setInterval(() => {
        const old = Date.now() - 5000;
        for (const [v, t] of recentlyExecuted) {
          if (t >= old) break; // insertion order is time order
          recentlyExecuted.delete(v);
        }
      }, 1000);
      await monitor.whenAttached();

      // ---- the data model each GET is checked against ------------------------
      /** Bumped before a kill and again once the process is gone (see below). */
      let generation = 0;
      let crossed = 0;
      /** SETs of the callers that returned OK (each ran on the server: the MONITOR tap must have seen most). */
      let confirmedSets = 0;
      let stale = 0;
      const crossedSamples: string[] = [];

      let running = true;
      const caller = async (i: number): Promise<void> => {
        const key = `chaos:${transport}:${i}`;
        const mine = `c${i}:`;
        let confirmed: string | null = null;
        let confirmedGeneration = 0;
        const unknown = new Set<string>();
        for (let seq = 0; running; seq++) {
          const value = `c${i}:${seq}:${transport}`;
          const issuedAtGeneration = generation;
          const t0 = Date.now();
          const set = await ledger.track("SET", () => client.command(["SET", key, value]));
          if (set.ok) {
            if (set.value !== "OK") {
              crossed++;
              crossedSamples.push(`SET ${key} got ${JSON.stringify(set.value)}`);
            }
            confirmed = value;
            confirmedGeneration = issuedAtGeneration;
            confirmedSets++;
          } else if (set.error instanceof RedisError && set.error.maybeExecuted) {
            unknown.add(value);
          } else {
            markNotExecuted(value);
          }
          const get = await ledger.track("GET", () => client.command(["GET", key]));
          if (get.ok) {
            const v: Reply = get.value;
            if (v === null) {
              if (confirmed !== null && generation === confirmedGeneration) {
                stale++;
                ledger.violation(`GET ${key} returned null, but ${confirmed} was confirmed and the server was not restarted since`);
              }
            } else if (typeof v !== "string" || !v.startsWith(mine)) {
              crossed++;
              if (crossedSamples.length < 10) crossedSamples.push(`GET ${key} got ${JSON.stringify(v)}`);
            } else if (v !== confirmed && !unknown.has(v)) {
              stale++;
              ledger.violation(
                notExecuted.has(v)
                  ? `GET ${key} returned ${v}, whose SET was rejected with maybeExecuted false`
                  : `GET ${key} returned ${v}, expected ${String(confirmed)} or one of ${unknown.size} unknown-outcome values`,
              );
            }
          }
          // Fail-fast rejections (a full queue) must not turn a caller into a busy loop.
          if (!set.ok && !get.ok && Date.now() - t0 < 5) await delay(10);
        }
      };

      // ---- heap sampling --------------------------------------------------------
      let heapMax = 0;
      const heapTimer = setInterval(() => {
        heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
      }, 50);

      /** Wait until some command succeeded after `since`; returns the time it took. */
      const servesAgain = async (since: number, boundMs: number): Promise<number> => {
        const deadline = since + boundMs + 10_000; // measure past the bound, to report how far off it was
        while (ledger.lastOkAt <= since && Date.now() < deadline) await delay(5);
        return ledger.lastOkAt > since ? ledger.lastOkAt - since : Infinity;
      };

      const burstValues = { n: 0 };
      /** Burst commands settled (they are fire-and-forget: only this count shows one left hanging). */
      let burstSettled = 0;
      /** Burst commands refused with QueueFullError, of bursts issued while the client was not ready. */
      let offlineBurstRejected = 0;
      const outages: OutageReport[] = [];
      const faultReports: FaultReport[] = [];

      const killClients = async (): Promise<void> => {
        const ports = proxy.connections.map((c) => c.upstreamLocalPort).filter((p): p is number => p !== undefined);
        await Promise.all(
          ports.map((p) => server.admin(["CLIENT", "KILL", "ADDR", `127.0.0.1:${p}`, "SKIPME", "yes"]).catch(() => undefined)),
        );
      };

      const outage = async (): Promise<void> => {
        generation++;
        await server.kill();
        generation++;
        const windowMs = between(1500, 2500);
        const start = Date.now();
        // The client notices (its socket closes) and starts backing off.
        let sawBackoff = false;
        while (Date.now() - start < 1000) {
          if (client.status === "reconnecting") {
            sawBackoff = true;
            break;
          }
          await delay(2);
        }
        const acceptedAtStart = proxy.stats.accepted;
        const dialStart = Date.now();
        const heapBefore = process.memoryUsage().heapUsed;
        heapMax = heapBefore;
        let maxPending = 0;
        let maxAccepted = 0;
        let burstRejected = 0;
        let burstIssued = 0;
        let readyBursts = 0;
        /** Commands of bursts issued while the client said "ready" (see below), not settled yet. */
        let readyBurstPending = 0;
        // Bursts of 3x the offline queue limit, every 200 ms while down.
        while (Date.now() - start < windowMs) {
          // Through the proxy a dial "succeeds" (it accepts, then resets when
          // its own upstream dial is refused), and a client with no handshake
          // command is "ready" for that moment: its commands are then in
          // flight, not offline. Such bursts are not held to the offline limit.
          const ready = client.status === "ready";
          let pendingOfBurst = 0;
          for (let b = 0; b < 3 * OFFLINE_MAX; b++) {
            const value = `burst:${transport}:${burstValues.n++}`;
            burstIssued++;
            pendingOfBurst++;
            void ledger.track("SET", () => client.command(["SET", `chaos:${transport}:burst`, value])).then((r) => {
              burstSettled++;
              pendingOfBurst--;
              if (ready) readyBurstPending--;
              if (r.ok) return;
              if (r.error instanceof QueueFullError) {
                burstRejected++;
                if (!ready) offlineBurstRejected++;
              }
              if (r.error instanceof RedisError && !r.error.maybeExecuted) markNotExecuted(value);
            });
          }
          if (ready) {
            readyBursts++;
            readyBurstPending += 3 * OFFLINE_MAX;
          }
          await new Promise((r) => setImmediate(r));
          if (!ready) {
            maxAccepted = Math.max(maxAccepted, pendingOfBurst);
            maxPending = Math.max(maxPending, ledger.unsettled - readyBurstPending);
          }
          await delay(200);
        }
        const dials = proxy.stats.accepted - acceptedAtStart;
        const dialWindow = Date.now() - dialStart;
        const heapGrowth = heapMax - heapBefore;
        await server.restart();
        const back = Date.now();
        const recoveryMs = await servesAgain(back, RECONNECT.maxDelayMs + CONNECT_SLACK_MS);
        await monitor.whenAttached();
        outages.push({
          windowMs: dialWindow,
          dials,
          dialBound: dialBound(dialWindow, RECONNECT),
          maxPending,
          maxAccepted,
          readyBursts,
          burstRejected,
          burstIssued,
          heapGrowth,
          recoveryMs,
          sawBackoff,
        });
        faultReports.push({ name: "kill9-restart", recoveryMs, boundMs: RECONNECT.maxDelayMs + CONNECT_SLACK_MS });
      };

      const runFault = async (name: FaultName): Promise<void> => {
        const hold = between(500, 1500);
        // After any other fault: the socket has to be noticed dead (or the
        // held bytes flow again), at worst one backoff delay, a dial, a reply.
        const bound = RECONNECT.maxDelayMs + CONNECT_TIMEOUT_MS + COMMAND_TIMEOUT_MS;
        let healed: number;
        switch (name) {
          case "kill9-restart":
            await outage();
            return;
          case "client-kill":
            await killClients();
            healed = Date.now();
            break;
          case "reset":
            proxy.resetAll();
            healed = Date.now();
            break;
          case "cut":
            for (const c of proxy.connections) {
              c.setFault({ type: "cut", afterBytes: between(0, 400), direction: rand() < 0.5 ? "up" : "down" });
            }
            await delay(hold);
            proxy.setFault({ type: "pass" });
            healed = Date.now();
            break;
          case "sigstop":
            server.pause();
            await delay(hold);
            server.resume();
            healed = Date.now();
            break;
          case "blackhole":
            proxy.setFault({ type: "blackhole" });
            await delay(hold);
            proxy.setFault({ type: "pass" });
            healed = Date.now();
            break;
          case "split":
            proxy.setFault({ type: "split" });
            await delay(hold);
            proxy.setFault({ type: "pass" });
            healed = Date.now();
            break;
          case "delay":
            proxy.setFault({ type: "delay", ms: between(10, 150) });
            await delay(hold);
            proxy.setFault({ type: "pass" });
            healed = Date.now();
            break;
        }
        faultReports.push({ name, recoveryMs: await servesAgain(healed, bound), boundMs: bound });
      };

      // ---- run ---------------------------------------------------------------
      await client.connect();
      const callers = Array.from({ length: CALLERS }, (_, i) => caller(i));
      await delay(500);
      // Until the time is up, and at least one full round.
      await runFaultSchedule(FAULTS, SECONDS, seed, [200, 600], runFault);
      running = false;
      const settledInTime = await Promise.race([Promise.all(callers).then(() => true), delay(10_000).then(() => false)]);
      // Everything issued must settle on its own, before close() (which would
      // settle what is stuck with ClientClosedError): bounded poll, the burst
      // commands included (every command times out within commandTimeoutMs).
      const deadline = Date.now() + 5000;
      while ((ledger.unsettled > 0 || burstSettled < burstValues.n) && Date.now() < deadline) await delay(10);
      const burstUnsettled = burstValues.n - burstSettled;
      clearInterval(heapTimer);
      // Every SET the server ran has been read by the MONITOR tap once its marker line is in.
      await monitor.sync((args) => server.admin(args));
      clearInterval(pruneTimer);
      ledger.beginClose();
      await client.close();
      monitor.close();

      const faultCount = faultReports.length;
      const rejected = JSON.stringify(ledger.rejectedBy).replace(/"/g, "");
      console.log(
        `chaos[${transport}]: commands=${ledger.issued} faults=${faultCount} settled=${ledger.resolved + ledger.rejected} ok=${ledger.resolved} ` +
          `rejected=${rejected} crossed=${crossed} unsettled=${String(ledger.unsettledAtClose)} (bursts: ${burstUnsettled}) before close`,
      );
      const details =
        `chaos[${transport}] details: seed=${SEED} seconds=${SECONDS} stale=${stale} violations=${ledger.violations.length} ` +
          `R1=${ledger.checkedR1} R2=${ledger.checkedR2} notExecuted=${notExecuted.size} monitoredSets=${monitor.sets}/${confirmedSets} confirmed ` +
          `tapAttachments=${monitor.attachments} offlineBurstRejected=${offlineBurstRejected} ` +
          `events={ready:${readyEvents},disconnect:${disconnectEvents},reconnecting:${reconnectingEvents}} clientErrors=${JSON.stringify(clientErrors).replace(/"/g, "")} ` +
          `proxy=${JSON.stringify(proxy.stats).replace(/"/g, "")}\n` +
          `  outages: ${outages
            .map((o) => `{window=${o.windowMs}ms dials=${o.dials}/${o.dialBound} backoff=${o.sawBackoff} pending<=${o.maxPending} accepted<=${o.maxAccepted} readyBursts=${o.readyBursts} burst=${o.burstRejected}/${o.burstIssued} rejected heap+${Math.round(o.heapGrowth / 1e6)}MB back=${o.recoveryMs}ms}`)
            .join(" ")}\n` +
          `  recovery: ${faultReports.map((f) => `${f.name}=${f.recoveryMs}ms`).join(" ")}`;
      // Offline: the queue's limit, plus what the limit does not cover by design:
      // pipelined, a read re-queued for its one retry after the socket it was
      // written on died (at most one per caller here); pooled, one command on
      // each socket being dialed or torn down.
      const pendingBound = OFFLINE_MAX + (transport === "pooled" ? POOL_MAX : CALLERS);
      const healthy =
        escaped.length === 0 &&
        settledInTime &&
        ledger.unsettledAtClose === 0 &&
        burstUnsettled === 0 &&
        ledger.unsettled === 0 &&
        crossed === 0 &&
        stale === 0 &&
        ledger.violations.length === 0 &&
        faultReports.every((f) => f.recoveryMs <= f.boundMs) &&
        outages.every((o) => o.sawBackoff && o.dials <= o.dialBound && o.maxAccepted <= OFFLINE_MAX && o.maxPending <= pendingBound);
      // The details only when something is off (or asked for): CI logs keep one line per transport.
      if (!healthy || process.env.CHAOS_VERBOSE === "1") console.log(details);

      expect(burstUnsettled, "burst commands not settled before close()").toBe(0);
      expectCleanRun(ledger, { escaped, settledInTime, crossed, crossedSamples, stale });
      // The oracles had something to check. The MONITOR tap (maybeExecuted
      // false = never ran) matched SET lines: it is attached but for a few ms
      // after each restart, so it sees nearly every confirmed SET (half is
      // far below what a working tap sees), and it re-attached after each kill -9.
      expect(monitor.sets, `SETs the MONITOR tap matched, of ${confirmedSets} confirmed`).toBeGreaterThanOrEqual(Math.ceil(confirmedSets / 2));
      expect(confirmedSets).toBeGreaterThan(CALLERS * 5);
      expect(monitor.attachments, "MONITOR tap attachments (once, then after each restart)").toBeGreaterThanOrEqual(1 + outages.length);
      // Offline bursts were refused (QueueFullError, maybeExecuted false): each value was
      // held against the tap and the GETs (notExecuted).
      expect(offlineBurstRejected, "burst commands refused while the client was offline").toBeGreaterThan(0);
      expect(notExecuted.size).toBeGreaterThanOrEqual(offlineBurstRejected);
      if (transport === "pipelined") {
        // R1: each of those was issued while not ready, and rejected at once (no 'ready' in between).
        expect(ledger.checkedR1, "rejections checked by R1").toBeGreaterThanOrEqual(offlineBurstRejected);
        // R2: SIGSTOP and blackhole (each in every schedule) hold the in-flight
        // commands past commandTimeoutMs on a connection that stays up.
        expect(ledger.checkedR2, "timeouts checked by R2").toBeGreaterThan(0);
      }
      // The schedule ran every kind of fault, and the client kept working.
      expect(new Set(faultReports.map((f) => f.name))).toEqual(new Set(FAULTS));
      expect(ledger.resolved).toBeGreaterThan(CALLERS * 10);
      for (const f of faultReports) {
        expect(f.recoveryMs, `${f.name}: served again after ${f.recoveryMs} ms (bound ${f.boundMs} ms)`).toBeLessThanOrEqual(f.boundMs);
      }
      for (const o of outages) {
        // The root cause first: a storm also defeats the offline queue (each
        // accepted dial makes the client "ready", so commands bypass it).
        expect(o.dials, `dials in a ${o.windowMs} ms outage (a reconnect storm if over the bound)`).toBeLessThanOrEqual(o.dialBound);
        expect(o.sawBackoff, "the client went into backoff during the outage").toBe(true);
        expect(o.maxAccepted, "commands of one burst accepted while offline").toBeLessThanOrEqual(OFFLINE_MAX);
        expect(o.maxPending, "commands pending while offline").toBeLessThanOrEqual(pendingBound);
        expect(o.burstRejected, "burst commands refused by the full offline queue").toBeGreaterThan(0);
        expect(o.heapGrowth, "heap growth during the outage").toBeLessThan(HEAP_GROWTH_LIMIT);
      }
    },
    (SECONDS + 90) * 1000,
  );
});
