// Runs one schedule against a real Client over the simulated network, on the
// virtual clock, and checks the invariants after every step. A violation
// throws SimViolation carrying the run's trace (set SIM_TRACE=1 to print the
// whole trace of a replayed seed).
//
// What is asserted (ClientWorld: command()/batch() on the pipelined or
// pooled transport; SubscriberWorld: the pub/sub subscriber):
//
// Per caller (every command() and batch() promise):
// - it settles exactly once, and by its deadline (timeoutMs or
//   commandTimeoutMs after it was issued) and at once when its signal aborts;
//   for a plain command a TimeoutError comes exactly at the deadline and an
//   AbortError exactly at the abort (a batch: by then);
// - a success carries its own command's reply (ECHO token, GET of a key
//   holding token, SET -> OK, INCRBY unique-key n -> n; atomic: the array of
//   them), so a reply given to the wrong caller is caught;
// - a rejection is one of the client's transport-level RedisError classes
//   (no TypeError, ReplyError or ProtocolError from these well-formed
//   commands and this well-behaved server); a plain batch rejects as a whole
//   only when issued after close()/destroy();
// - maybeExecuted is true exactly when the command's bytes were handed to a
//   socket (a SimSocket.write() call carrying its token) before it settled,
//   and a command reported as not executed is never handed to a socket
//   afterwards. "Handed" is the client's side: bytes written after the peer
//   closed, or held back by backpressure and lost with the socket, were handed
//   yet never ran (maybe executed: true is then the right answer);
// - the server ran a write at most once, a read at most twice (one retry
//   after its socket died, only with retryReadOnly, never inside a group),
//   and a success was run.
// Per client Request (every one the client created, handshake PINGs included,
// through the Request subclass of mocks.ts): it settles exactly once by the
// end of the run.
// Bounds:
// - accepted and unsettled requests never exceed maxPending (pooled: counted
//   per call until the known bug is fixed); commands accepted while offline
//   and still unsettled never exceed the offline queue length (pipelined);
// - at most one socket per connection owner (pipelined, subscriber), at
//   most pool.max on the pooled transport;
// - dials follow the backoff policy: every 'reconnecting' delay is within
//   [0, min(maxDelayMs, initialDelayMs * 2^(attempt-1))]; its attempt is the
//   previous dial's + 1, or 1 with delay 0 only after a connection that
//   served for stableMs; every redial happens exactly that delay after its
//   'reconnecting' (no dial without one, so no tight loop), and a backoff
//   always ends in a dial; a dial or handshake never lasts longer than
//   connectTimeoutMs (so while the server is down the client dials again
//   within connectTimeoutMs + maxDelayMs); the pooled transport's gate lets
//   one probe through per failed dial, not before its delay, with the
//   attempt growing by one; no dial starts after close() (pooled: after
//   close() resolved) or destroy().
// Pub/sub (SubscriberWorld):
// - a message reaches only listeners of its channel, each at most once, and
//   only while registered; every message that reached the subscriber's socket
//   whole reached every listener registered then;
// - subscribe() resolves only after the server confirmed the channel (unless
//   the listener was removed meanwhile), rejects only with TimeoutError
//   (exactly at commandTimeoutMs), ClientClosedError or ConnectionError;
//   unsubscribe() never rejects; 'resubscribed' names only wanted channels;
// - after the heal, a subscriber still wanting channels resubscribes them and
//   a message published then reaches its listeners.
// Lifecycle:
// - close() never rejects, and resolves only once every command accepted
//   before it has settled; after close() resolved, or after destroy(), no
//   client timer and no socket remain (and the server holds no connection);
// - after the schedule, with the server healed, every promise settles,
//   close() resolves, and nothing remains;
// - no timer callback throws, no rejection goes unhandled.

import {
  AbortError,
  ClientClosedError,
  ConnectionError,
  PoolTimeoutError,
  QueueFullError,
  RedisError,
  TimeoutError,
} from "../../src/errors.js";
import { Client } from "../../src/client.js";
import { STABLE_CONNECTION_MS } from "../../src/connection/connection-owner.js";
import type { Request } from "../../src/request.js";
import type { ClientStatus } from "../../src/transport.js";
import { asUser, startRegistry, stopRegistry, type RequestRecord } from "./request-registry.js";
import { backoffCap, type Action, type Op, type SimConfig } from "./schedule.js";
import { SimNet } from "./sim-net.js";
import { drain, VirtualClock } from "./virtual-clock.js";

export class SimViolation extends Error {
  override name = "SimViolation";
}

const TRANSPORT_ERRORS = [ConnectionError, TimeoutError, AbortError, ClientClosedError, QueueFullError, PoolTimeoutError];

function isTransportError(e: unknown): e is RedisError {
  return TRANSPORT_ERRORS.some((c) => e instanceof c);
}

function show(v: unknown): string {
  if (v instanceof Error) return `${v.name}(${(v as RedisError).code ?? ""}${v instanceof ConnectionError ? ` ${v.reason}` : ""}, maybeExecuted=${String((v as RedisError).maybeExecuted)}): ${v.message}`;
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

interface Settlement {
  at: number;
  ok: boolean;
  value: unknown;
  error: unknown;
  /** Any of its tokens handed to a socket when it settled. */
  handed: boolean;
}

/** One promise a caller holds. */
interface Call {
  id: number;
  label: string;
  tokens: string[];
  /** Exact reply on success. */
  expected: unknown;
  readOnly: boolean;
  /** Member of an atomic or a pooled (grouped) batch: never retried alone. */
  grouped: boolean;
  acceptedAt: number;
  status: ClientStatus;
  beforeClose: boolean;
  /** A plain command (its promise is the Request's own: exact settle time). */
  plain: boolean;
  deadlineAt: number | undefined;
  timeoutMs: number | undefined;
  abortAt: number | undefined;
  settled: Settlement | undefined;
  settleCount: number;
}

interface LogEntry {
  kind: "dial" | "reconnecting" | "ready" | "disconnect" | "error" | "close" | "handshake";
  at: number;
  attempt?: number;
  delayMs?: number;
  detail?: string;
}

export interface RunResult {
  calls: number;
  dials: number;
  closeStates: string[];
}

/** Base of both worlds: the clock, the network, the trace, the common end-of-run checks. */
abstract class World {
  readonly clock = new VirtualClock();
  readonly net = new SimNet(this.clock);
  readonly traceLines: string[] = [];
  private readonly escaped: unknown[] = [];
  private readonly onEscape = (e: unknown): void => {
    this.escaped.push(e);
  };
  records: Map<Request, RequestRecord> = new Map();
  /** Dials and owner events in order. */
  readonly log: LogEntry[] = [];
  closeCalledAt: number | undefined;
  closeResolvedAt: number | undefined;
  destroyedAt: number | undefined;
  /** Client state when close()/destroy() was called (coverage). */
  readonly closeStates: string[] = [];
  private nextToken = 1;
  protected isSubscriberLane = false;

  constructor(
    readonly config: SimConfig,
    readonly verbose: boolean,
  ) {}

  token(): string {
    return `T${this.nextToken++}X`;
  }

  trace(line: string): void {
    const entry = `[${this.clock.now - 1_700_000_000_000}] ${line}`;
    this.traceLines.push(entry);
    if (this.verbose || process.env.SIM_TRACE === "1") console.log(entry);
  }

  fail(message: string): never {
    const tail = this.traceLines.slice(-80).join("\n");
    throw new SimViolation(`${message}\n--- trace (last ${Math.min(80, this.traceLines.length)} of ${this.traceLines.length} lines; SIM_TRACE=1 prints all) ---\n${tail}`);
  }

  get now(): number {
    return this.clock.now;
  }

  get ended(): boolean {
    return this.destroyedAt !== undefined || this.closeResolvedAt !== undefined;
  }

  async setup(): Promise<void> {
    this.clock.install(this.config.randomSeed);
    this.net.activate();
    this.net.hello = this.config.serverHello;
    const reg = startRegistry(() => this.clock.now);
    this.records = reg.records;
    process.on("unhandledRejection", this.onEscape);
    const origConnect = this.net.connect.bind(this.net);
    this.net.connect = (options) => {
      const s = origConnect(options);
      this.log.push({ kind: "dial", at: this.now, detail: `#${s.id} ${this.net.dialMode}` });
      return s;
    };
    this.net.onPong = (socket) => this.log.push({ kind: "handshake", at: this.now, detail: `#${socket.id}` });
    if (this.verbose || process.env.SIM_TRACE === "1") this.net.trace = (l) => this.trace(`server: ${l}`);
    else this.net.trace = (l) => {
      if (l.startsWith("dial") || l.includes("cut")) this.trace(l);
    };
  }

  async teardown(destroy: () => void): Promise<void> {
    try {
      destroy();
    } catch {
      // already failing
    }
    await drain();
    await drain();
    process.off("unhandledRejection", this.onEscape);
    stopRegistry();
    this.net.deactivate();
    this.clock.uninstall();
  }

  /** Checks every world makes after every step. */
  checkCommon(where: string): void {
    if (this.clock.thrown.length > 0) this.fail(`${where}: a timer callback threw (an uncaughtException in Node): ${show(this.clock.thrown[0])}`);
    if (this.escaped.length > 0) this.fail(`${where}: an unhandled rejection escaped the client: ${show(this.escaped[0])}`);
    for (const r of this.records.values()) {
      if (r.settles > 1) this.fail(`${where}: request ${r.req.name} settled ${r.settles} times`);
    }
    for (const t of this.net.executed.keys()) {
      if (!this.net.handed.has(t)) this.fail(`${where}: harness bug: ${t} executed but never handed to a socket`);
    }
    if (this.ended) {
      const timers = this.clock.pending("client");
      if (timers > 0) this.fail(`${where}: ${timers} client timer(s) remain after ${this.destroyedAt !== undefined ? "destroy()" : "close() resolved"}:\n${this.clock.describePending().join("\n")}`);
      const live = this.net.liveSockets();
      if (live.length > 0) this.fail(`${where}: socket(s) ${live.map((s) => `#${s.id} (${s.phase}${s.destroyed ? ", destroyed" : ""})`).join(", ")} remain after the client ended`);
      if (this.net.conns.size > 0) this.fail(`${where}: the server still holds ${this.net.conns.size} connection(s) after the client ended`);
    }
    // No dial starts after close() or destroy() (the pooled transport may still dial to serve
    // the callers in line under close(), until it resolves).
    const stop = Math.min(this.config.transport === "pooled" && !this.isSubscriberLane ? (this.closeResolvedAt ?? Infinity) : (this.closeCalledAt ?? Infinity), this.destroyedAt ?? Infinity);
    const late = this.net.dials.find((d) => d.at > stop);
    if (late !== undefined) this.fail(`${where}: dial #${late.socket.id} at ${late.at - stop} ms after close()/destroy()`);
  }

  /** Every Request the client created settled exactly once. */
  checkAllRequestsSettled(where: string): void {
    for (const r of this.records.values()) {
      if (r.settles !== 1) this.fail(`${where}: request ${r.req.name} (created at +${r.createdAt - 1_700_000_000_000}, ${r.user ? "a caller's" : "the client's own"}) settled ${r.settles} times`);
    }
  }

  /**
   * Dial rules of a ConnectionOwner (pipelined transport, subscriber).
   * freshDialOk: may a dial with no backoff before it start at t (the first
   * dial, a connect() from idle)? wanting: the owner is dialing now.
   * readyEvents: the lane reports 'ready' (else a dial's time stands in for
   * when its connection became ready: earlier, so the stable-redial rule
   * checked with it is weaker, never wrong).
   */
  checkOwnerDials(where: string, freshDialOk: (dial: LogEntry) => boolean, status: () => "wanting" | "other", readyEvents: boolean): void {
    const reconnect = this.config.reconnect;
    /** The 'reconnecting' whose timer has not dialed yet. */
    let pending: LogEntry | undefined;
    /** A dial no backoff explains yet: it must be an immediate redial, told right after it. */
    let extra: LogEntry | undefined;
    /** The attempt of the dial the next 'reconnecting' reports on (0: a fresh start). */
    let lastAttempt = 0;
    let readyAt: number | undefined;
    let lastDial: LogEntry | undefined;
    const attemptRule = (e: LogEntry): void => {
      const attempt = e.attempt ?? -1;
      const delay = e.delayMs ?? -1;
      const stableRedial = attempt === 1 && delay === 0 && readyAt !== undefined && e.at - readyAt >= STABLE_CONNECTION_MS;
      if (attempt !== lastAttempt + 1 && !stableRedial) {
        this.fail(`${where}: reconnecting attempt ${attempt} after a dial of attempt ${lastAttempt} (no tight loop: the attempt grows until a connection proves stable)`);
      }
    };
    for (const e of this.log) {
      switch (e.kind) {
        case "dial":
          if (extra !== undefined) this.fail(`${where}: a dial at ${extra.at} with no backoff before it`);
          if (pending !== undefined) {
            // A delay of 0 dials right after 'reconnecting' was told; any other through its timer.
            const due = pending.at + (pending.delayMs ?? 0);
            if (e.at !== due) this.fail(`${where}: dial at +${e.at - pending.at} ms after reconnecting {attempt: ${pending.attempt}, delayMs: ${pending.delayMs}}`);
            lastAttempt = pending.attempt ?? 0;
            pending = undefined;
          } else if (lastDial === undefined || freshDialOk(e)) {
            lastAttempt = 0;
          } else {
            // Told right after (same turn): its 'reconnecting' reports on the previous connection.
            extra = e;
            lastDial = e;
            break;
          }
          readyAt = readyEvents ? undefined : e.at;
          lastDial = e;
          break;
        case "ready":
          readyAt = e.at;
          break;
        case "reconnecting": {
          const attempt = e.attempt ?? -1;
          const delay = e.delayMs ?? -1;
          if (reconnect === false) this.fail(`${where}: reconnecting with reconnect disabled`);
          if (!Number.isInteger(attempt) || attempt < 1 || attempt > reconnect.maxAttempts) this.fail(`${where}: reconnecting attempt ${attempt} (maxAttempts ${reconnect.maxAttempts})`);
          const cap = backoffCap(reconnect, attempt);
          if (!Number.isInteger(delay) || delay < 0 || delay > cap) this.fail(`${where}: reconnecting {attempt: ${attempt}, delayMs: ${delay}} outside [0, ${cap}]`);
          if (pending !== undefined) this.fail(`${where}: two reconnecting events without a dial between them`);
          if (extra !== undefined) {
            // An immediate redial: the owner dials first, then tells, in the same turn, delay 0.
            if (delay !== 0 || extra.at !== e.at) this.fail(`${where}: a dial at ${extra.at} with no backoff before it`);
            attemptRule(e);
            lastAttempt = attempt;
            readyAt = readyEvents ? undefined : extra.at;
            extra = undefined;
          } else {
            attemptRule(e);
            pending = e;
          }
          break;
        }
        default:
          break;
      }
    }
    if (extra !== undefined) this.fail(`${where}: a dial at ${extra.at} with no backoff before it`);
    const stopped = this.closeCalledAt !== undefined || this.destroyedAt !== undefined;
    if (pending !== undefined && !stopped && this.now > pending.at + Math.max(1, pending.delayMs ?? 0)) {
      this.fail(`${where}: reconnecting {attempt: ${pending.attempt}, delayMs: ${pending.delayMs}} and no dial ${this.now - pending.at} ms later`);
    }
    // One connectTimeoutMs for the dial and every handshake step, a RESP2 fallback included.
    const limit = this.config.connectTimeoutMs + 1;
    if (pending === undefined && !stopped && status() === "wanting" && lastDial !== undefined && this.now - lastDial.at > limit) {
      this.fail(`${where}: still connecting ${this.now - lastDial.at} ms after the last dial (connectTimeoutMs ${this.config.connectTimeoutMs})`);
    }
  }

  /** Sockets a live owner holds (not destroyed). */
  liveUndestroyed(): number {
    return this.net.sockets.filter((s) => !s.destroyed).length;
  }

  /** Everything the schedule broke, mended: the server answers normally. */
  heal(): void {
    this.net.dialMode = "accept";
    this.net.frozen = false;
    this.net.replyDelayMs = 0;
    this.net.cutNext = false;
    this.net.stallUntil = 0;
    for (const s of this.net.sockets) s.unstall();
  }

  /** Advance in steps until `done()` or `horizonMs` of virtual time, checking after each step. */
  async advanceUntil(done: () => boolean, horizonMs: number, stepMs: number, check: (where: string) => void, what: string): Promise<void> {
    const end = this.now + horizonMs;
    while (!done()) {
      if (this.now >= end) this.fail(`${what}: not done after ${horizonMs} ms of virtual time with the server healed`);
      await this.clock.advance(stepMs);
      check(what);
    }
  }
}

/** Commands and batches against a Client (pipelined or pooled). */
export class ClientWorld extends World {
  client!: Client;
  readonly calls: Call[] = [];
  private readonly violations: string[] = [];
  private closePromise: Promise<void> | undefined;
  private nextCall = 1;

  /** The last 'reconnecting' came right after an 'error' (a failed dial of the pooled gate). */
  private readonly gateFailures: LogEntry[] = [];

  async run(actions: readonly Action[]): Promise<RunResult> {
    await this.setup();
    try {
      const c = this.config;
      this.trace(`config ${JSON.stringify(c)}`);
      this.client = new Client({
        host: "sim",
        port: 6379,
        transport: c.transport,
        lazyConnect: c.lazyConnect,
        commandTimeoutMs: c.commandTimeoutMs,
        connectTimeoutMs: c.connectTimeoutMs,
        reconnect: c.reconnect,
        maxPending: c.maxPending,
        offlineQueue: c.offlineQueue === false ? false : { maxLength: c.offlineQueue },
        retryReadOnly: c.retryReadOnly,
        pool: c.pool,
        protocol: c.protocol,
        healthCheckIntervalMs: c.healthCheckIntervalMs,
      });
      this.listen();
      await this.clock.advance(0);
      this.check("start");
      for (let i = 0; i < actions.length; i++) {
        const a = actions[i] as Action;
        this.trace(`action ${i}: ${JSON.stringify(a)} (status ${this.client.status})`);
        this.apply(a);
        await this.clock.advance(a.t === "advance" ? a.ms : 0);
        this.check(`after action ${i} ${JSON.stringify(a)}`);
      }
      await this.finish();
      return { calls: this.calls.length, dials: this.net.dials.length, closeStates: this.closeStates };
    } finally {
      await this.teardown(() => this.client?.destroy());
    }
  }

  private listen(): void {
    const cl = this.client;
    cl.on("ready", () => {
      this.log.push({ kind: "ready", at: this.now });
      this.trace("event ready");
    });
    cl.on("disconnect", (info) => {
      this.log.push({ kind: "disconnect", at: this.now, detail: info.reason });
      this.trace(`event disconnect ${info.reason} ${info.error?.message ?? ""}`);
    });
    cl.on("reconnecting", (info) => {
      const e: LogEntry = { kind: "reconnecting", at: this.now, attempt: info.attempt, delayMs: info.delayMs };
      const prev = this.log[this.log.length - 1];
      if (prev?.kind === "error" && prev.at === this.now) this.gateFailures.push(e);
      this.log.push(e);
      this.trace(`event reconnecting ${JSON.stringify(info)}`);
    });
    cl.on("error", (error) => {
      this.log.push({ kind: "error", at: this.now, detail: error instanceof ConnectionError ? error.reason : error.message });
      this.trace(`event error ${show(error)}`);
      if (!(error instanceof RedisError)) this.violations.push(`'error' event with a non-RedisError: ${show(error)}`);
    });
    cl.on("protocol-fallback" as "close", () => this.trace("event protocol-fallback"));
    cl.on("close", () => {
      this.log.push({ kind: "close", at: this.now });
      this.trace("event close");
      // Closed by its own error (reconnect exhausted; also under a pending close()), not by destroy().
      const prev = this.log[this.log.length - 2];
    });
  }

  // ---- actions -------------------------------------------------------------------

  private apply(a: Action): void {
    const net = this.net;
    switch (a.t) {
      case "cmd":
        this.command(a.op, a.timeoutMs, a.abortMs);
        return;
      case "batch":
        this.batch(a.atomic, a.ops, a.timeoutMs, a.abortMs);
        return;
      case "dial":
        net.dialMode = a.mode;
        return;
      case "freeze":
        net.frozen = true;
        return;
      case "unfreeze":
        net.frozen = false;
        return;
      case "delay":
        net.replyDelayMs = a.ms;
        return;
      case "cut":
        net.cutNext = true;
        return;
      case "kill":
        net.kill(a.rst);
        return;
      case "stall":
        net.stall(a.ms);
        return;
      case "advance":
        return;
      case "close":
        this.close(a.timeoutMs);
        return;
      case "destroy":
        this.closeStates.push(`destroy@${this.client.status}`);
        this.client.destroy();
        this.destroyedAt ??= this.now;
        return;
      default:
        return;
    }
  }

  private close(timeoutMs: number | undefined): void {
    this.closeStates.push(`${timeoutMs === undefined ? "close" : "close(timeout)"}@${this.client.status}`);
    const first = this.closeCalledAt === undefined;
    this.closeCalledAt ??= this.now;
    for (const c of this.calls) if (c.acceptedAt <= this.now && c.settled === undefined) c.beforeClose = true;
    const p = this.client.close(timeoutMs === undefined ? undefined : { timeoutMs });
    if (first) this.closePromise = p;
    p.then(
      () => {
        this.trace("close() resolved");
        this.closeResolvedAt ??= this.now;
      },
      (err: unknown) => this.violations.push(`close() rejected: ${show(err)}`),
    );
  }

  /** One operation: its command, the reply it must get, whether it is a read. */
  private op(op: Op): { args: (string | number)[]; expected: unknown; readOnly: boolean; token: string } {
    const token = this.token();
    switch (op) {
      case "echo":
        return { args: ["ECHO", token], expected: token, readOnly: false, token };
      case "get":
        this.net.store.set(`g:${token}`, token);
        return { args: ["GET", `g:${token}`], expected: token, readOnly: true, token };
      case "set":
        return { args: ["SET", `s:${token.length % 3}`, token], expected: "OK", readOnly: false, token };
      case "incrby": {
        const n = Number(token.slice(1, -1));
        return { args: ["INCRBY", `c:${token}`, n], expected: n, readOnly: false, token };
      }
    }
  }

  private newCall(label: string, tokens: string[], expected: unknown, readOnly: boolean, grouped: boolean, plain: boolean, timeoutMs: number | undefined, abortAt: number | undefined): Call {
    const deadline = timeoutMs ?? (this.config.commandTimeoutMs > 0 ? this.config.commandTimeoutMs : undefined);
    const call: Call = {
      id: this.nextCall++,
      label,
      tokens,
      expected,
      readOnly,
      grouped,
      acceptedAt: this.now,
      status: this.client.status,
      beforeClose: false,
      plain,
      deadlineAt: deadline === undefined ? undefined : this.now + deadline,
      timeoutMs: deadline,
      abortAt,
      settled: undefined,
      settleCount: 0,
    };
    this.calls.push(call);
    return call;
  }

  private signal(abortMs: number | undefined): { signal: AbortSignal | undefined; abortAt: number | undefined } {
    if (abortMs === undefined) return { signal: undefined, abortAt: undefined };
    const ac = new AbortController();
    if (abortMs === 0) {
      ac.abort(new Error("caller gave up before sending"));
      return { signal: ac.signal, abortAt: this.now };
    }
    this.clock.schedule(() => {
      this.trace(`abort fires (${abortMs} ms)`);
      ac.abort(new Error("caller gave up"));
    }, abortMs);
    return { signal: ac.signal, abortAt: this.now + abortMs };
  }

  private command(op: Op, timeoutMs: number | undefined, abortMs: number | undefined): void {
    const o = this.op(op);
    const { signal, abortAt } = this.signal(abortMs);
    const call = this.newCall(o.args.join(" "), [o.token], o.expected, o.readOnly, false, true, timeoutMs, abortAt);
    const options = timeoutMs === undefined && signal === undefined ? undefined : { ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(signal ? { signal } : {}) };
    const p = asUser(() => this.client.command(o.args, options));
    p.then(
      (value) => this.settle(call, true, value, undefined),
      (error: unknown) => this.settle(call, false, undefined, error),
    );
  }

  private batch(atomic: boolean, ops: readonly Op[], timeoutMs: number | undefined, abortMs: number | undefined): void {
    const parts = ops.map((o) => this.op(o));
    const { signal, abortAt } = this.signal(abortMs);
    const options = { atomic, ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(signal ? { signal } : {}) };
    // The pooled transport runs every batch as one group on one lent socket.
    const grouped = atomic || this.config.transport === "pooled";
    // (A plain pipelined batch's members are checked one by one, reads retried included.)
    const whole = this.newCall(`${atomic ? "atomic " : ""}batch [${parts.map((p) => p.args.join(" ")).join("; ")}]`, parts.map((p) => p.token), parts.map((p) => p.expected), !grouped, grouped, false, timeoutMs, abortAt);
    const members = atomic
      ? []
      : parts.map((p) => {
          const m = this.newCall(p.args.join(" "), [p.token], p.expected, p.readOnly, grouped, false, timeoutMs, abortAt);
          return m;
        });
    const p = asUser(() => this.client.batch(parts.map((x) => x.args), options));
    p.then(
      (results) => {
        if (!Array.isArray(results) || results.length !== parts.length) {
          this.violations.push(`${whole.label}: ${results.length} results for ${parts.length} commands`);
          return;
        }
        if (atomic) {
          // One outcome for the transaction: each result must be its own command's reply.
          this.settle(whole, true, results, undefined);
          return;
        }
        this.settle(whole, true, parts.map((x) => x.expected), undefined, true);
        results.forEach((r, i) => {
          const m = members[i] as Call;
          if (r instanceof Error) this.settle(m, false, undefined, r);
          else this.settle(m, true, r, undefined);
        });
      },
      (error: unknown) => {
        if (atomic) {
          this.settle(whole, false, undefined, error);
          return;
        }
        // A plain batch reports each command's error as its result; it rejects as a whole only
        // when refused before anything was sent (the client was closed).
        if (!(error instanceof ClientClosedError) || error.maybeExecuted || (this.closeCalledAt === undefined && this.destroyedAt === undefined)) {
          this.violations.push(`${whole.label}: a plain batch rejected: ${show(error)}`);
        }
        this.settle(whole, false, undefined, error, true);
        for (const m of members) this.settle(m, false, undefined, error);
      },
    );
  }

  /** A caller's promise settled: check the outcome now (violations are raised at the next check). */
  private settle(call: Call, ok: boolean, value: unknown, error: unknown, synthetic = false): void {
    call.settleCount++;
    const handed = call.tokens.some((t) => this.net.handed.has(t));
    call.settled = { at: this.now, ok, value, error, handed };
    if (!synthetic) this.trace(`settled #${call.id} ${call.label}: ${ok ? `ok ${show(value)}` : show(error)}`);
    const bad = (why: string): void => {
      this.violations.push(`#${call.id} ${call.label} (issued at +${call.acceptedAt - 1_700_000_000_000} while ${call.status}): ${why}`);
    };
    if (call.settleCount > 1) bad(`settled ${call.settleCount} times`);
    if (synthetic) return;
    const executions = Math.max(0, ...call.tokens.map((t) => this.net.executed.get(t) ?? 0));
    if (ok) {
      if (JSON.stringify(value) !== JSON.stringify(call.expected)) bad(`got ${show(value)}, expected its own reply ${show(call.expected)} (a crossed reply?)`);
      if (executions === 0) bad("resolved, yet the server never ran it");
      return;
    }
    if (!isTransportError(error)) {
      bad(`rejected with ${show(error)}: not a transport-level RedisError`);
      return;
    }
    if (error.maybeExecuted !== handed) bad(`maybeExecuted=${String(error.maybeExecuted)} but its bytes were ${handed ? "" : "never "}handed to a socket: ${show(error)}`);
    if (error instanceof TimeoutError) {
      if (call.timeoutMs === undefined) bad(`TimeoutError without a deadline: ${show(error)}`);
      else if (call.plain && this.now !== call.acceptedAt + call.timeoutMs) bad(`TimeoutError at +${this.now - call.acceptedAt} ms, deadline ${call.timeoutMs} ms`);
    }
    if (error instanceof AbortError) {
      if (call.abortAt === undefined) bad(`AbortError without a signal: ${show(error)}`);
      else if (call.plain && this.now !== call.abortAt) bad(`AbortError at ${this.now}, the signal aborted at ${call.abortAt}`);
    }
    if (error instanceof ConnectionError && error.reason === "reconnect-exhausted" && this.config.reconnect !== false && this.config.reconnect.maxAttempts === Infinity) {
      // Infinity never exhausts (reconnect: false does, at the first failed dial).
      bad(`reconnect-exhausted with reconnect ${JSON.stringify(this.config.reconnect)}`);
    }
  }

  // ---- checks --------------------------------------------------------------------

  check(where: string): void {
    if (this.violations.length > 0) this.fail(`${where}: ${this.violations[0]}`);
    this.checkCommon(where);
    const c = this.config;
    for (const call of this.calls) {
      if (call.settled === undefined) {
        if (call.deadlineAt !== undefined && this.now >= call.deadlineAt) this.fail(`${where}: #${call.id} ${call.label} not settled ${this.now - call.acceptedAt} ms after it was issued with a ${call.timeoutMs} ms deadline`);
        if (call.abortAt !== undefined && this.now >= call.abortAt) this.fail(`${where}: #${call.id} ${call.label} not settled after its signal aborted`);
      } else if (!call.settled.ok && call.settled.error instanceof RedisError && !call.settled.error.maybeExecuted) {
        // Reported as never executed: it must never be sent later either.
        const sent = call.tokens.find((t) => this.net.handed.has(t));
        if (sent !== undefined) this.fail(`${where}: #${call.id} ${call.label} was reported as not executed (${show(call.settled.error)}) yet ${sent} was handed to a socket afterwards`);
      }
      for (const t of call.tokens) {
        const n = this.net.executed.get(t) ?? 0;
        const allowed = call.readOnly && !call.grouped && c.retryReadOnly ? 2 : 1;
        if (n > allowed) this.fail(`${where}: #${call.id} ${call.label}: the server ran ${t} ${n} times (at most ${allowed})`);
      }
    }
    // Close: resolves only once every command accepted before it has settled.
    if (this.closeResolvedAt !== undefined) {
      for (const call of this.calls) {
        if (!call.beforeClose) continue;
        if (call.settled === undefined || call.settled.at > this.closeResolvedAt) this.fail(`${where}: close() resolved at ${this.closeResolvedAt} before #${call.id} ${call.label}, accepted before close(), settled`);
      }
    }
    // Bounds: accepted and unsettled requests (each member of a group counts).
    let unsettled = 0;
    for (const r of this.records.values()) if (r.user && r.settles === 0) unsettled++;
    if (unsettled > c.maxPending) this.fail(`${where}: ${unsettled} accepted requests unsettled, maxPending ${c.maxPending}`);
    if (c.transport === "pipelined" && c.offlineQueue !== false) {
      const offline = this.calls.filter((x) => x.plain && x.settled === undefined && x.status !== "ready" && x.status !== "closing" && x.status !== "closed").length;
      if (offline > c.offlineQueue) this.fail(`${where}: ${offline} commands accepted while offline are unsettled, offline queue ${c.offlineQueue}`);
    }
    // Sockets and dials.
    if (c.transport === "pipelined") {
      if (this.liveUndestroyed() > 1) this.fail(`${where}: ${this.liveUndestroyed()} sockets open at once on the pipelined transport`);
      this.checkOwnerDials(
        where,
        (dial) => this.log.find((e) => e.kind === "dial") === dial,
        () => {
          const s = this.client.status;
          return s === "connecting" || s === "reconnecting" ? "wanting" : "other";
        },
        true,
      );
    } else {
      if (this.liveUndestroyed() > c.pool.max) this.fail(`${where}: ${this.liveUndestroyed()} sockets open at once, pool.max ${c.pool.max}`);
      this.checkGate(where);
    }
  }

  /**
   * The pooled transport's dial gate: while failing (from the start, and
   * after each failed probe until a dial succeeds), one dial at a time: each
   * failure's 'reconnecting' lets exactly one probe through, no sooner than its
   * delay; the attempt grows by one per failure.
   */
  private checkGate(where: string): void {
    const reconnect = this.config.reconnect;
    let failing = true;
    let probes = 0;
    let failedAt: number | undefined;
    let delay = 0;
    let attempt = 0;
    for (const e of this.log) {
      if (e.kind === "ready" || e.kind === "handshake") {
        // A dial answered: the gate opens (under close() there is no 'ready' to tell it).
        failing = false;
        attempt = 0;
      } else if (e.kind === "error" && e.detail === "connect-failed") {
        // A failed dial the gate counted (under close() it is told without 'reconnecting').
        failing = true;
        probes = 0;
        failedAt = e.at;
        delay = 0;
      } else if (e.kind === "reconnecting" && this.gateFailures.includes(e)) {
        if (reconnect === false) this.fail(`${where}: reconnecting with reconnect disabled`);
        const a = e.attempt ?? -1;
        const cap = backoffCap(reconnect, a);
        if ((e.delayMs ?? -1) < 0 || (e.delayMs ?? 0) > cap) this.fail(`${where}: reconnecting {attempt: ${a}, delayMs: ${e.delayMs}} outside [0, ${cap}]`);
        if (a !== attempt + 1) this.fail(`${where}: failed dial reported as attempt ${a} after ${attempt} consecutive failures`);
        attempt = a;
        delay = e.delayMs ?? 0;
      } else if (e.kind === "dial" && failing) {
        probes++;
        if (probes > 1) this.fail(`${where}: ${probes} dials started while the gate was failing (one probe per delay)`);
        if (failedAt !== undefined && e.at < failedAt + delay) this.fail(`${where}: probe at +${e.at - failedAt} ms, before the ${delay} ms delay ended`);
      }
    }
  }

  // ---- the end of the schedule ------------------------------------------------------

  private allSettled(): boolean {
    return this.calls.every((c) => c.settled !== undefined);
  }

  private async finish(): Promise<void> {
    this.trace("--- heal: the server answers normally from now on ---");
    this.heal();
    const c = this.config;
    const horizon = 10 * (c.connectTimeoutMs + (c.reconnect === false ? 0 : c.reconnect.maxDelayMs) + 3000) + 30_000;
    await this.advanceUntil(() => this.allSettled(), horizon, 250, (w) => this.check(w), "every promise settles");
    if (this.destroyedAt === undefined) {
      if (this.closePromise === undefined) {
        // End the run the way the seed says: close(), close({ timeoutMs }), or destroy().
        const how = Math.abs(c.randomSeed) % 3;
        if (how === 2) {
          this.trace("final destroy()");
          this.closeStates.push(`destroy@${this.client.status}`);
          this.client.destroy();
          this.destroyedAt = this.now;
        } else {
          this.trace(`final close(${how === 1 ? "{ timeoutMs: 500 }" : ""})`);
          this.close(how === 1 ? 500 : undefined);
        }
      }
      await this.advanceUntil(() => this.ended, horizon, 250, (w) => this.check(w), "close() resolves");
    }
    await this.clock.advance(0);
    this.check("end");
    this.checkAllRequestsSettled("end");
    if (this.clock.pending("client") > 0) this.fail(`end: client timers remain:\n${this.clock.describePending().join("\n")}`);
  }
}

/**
 * Pub/sub: subscribe, unsubscribe, messages, over faults. Every subscribe()
 * call adds a listener of its own (a shared one is the known bug of
 * known-bugs.test.ts); unsubscribe(channel) removes all of the channel's.
 */
export class SubscriberWorld extends World {
  client!: Client;
  private readonly violations: string[] = [];
  /** Listener registrations: from the subscribe() call until unsubscribe(), its timeout, close() or destroy() (SimNet stamps). */
  private readonly registrations: { id: number; channel: string; from: number; to: number | undefined }[] = [];
  /** Message token -> the listeners that received it. */
  private readonly received = new Map<string, Set<number>>();
  private readonly published = new Map<string, string>();
  private readonly promises: { label: string; acceptedAt: number; deadlineAt: number | undefined; settled: boolean; settleCount: number }[] = [];
  /** Dials made inside a subscribe() call (a connect() from idle). */
  private readonly freshDials = new Set<LogEntry>();
  private closePromise: Promise<void> | undefined;
  protected override isSubscriberLane = true;

  async run(actions: readonly Action[]): Promise<RunResult> {
    await this.setup();
    try {
      const c = this.config;
      this.trace(`config ${JSON.stringify(c)}`);
      this.client = new Client({
        host: "sim",
        port: 6379,
        lazyConnect: true,
        commandTimeoutMs: c.commandTimeoutMs,
        connectTimeoutMs: c.connectTimeoutMs,
        reconnect: c.reconnect,
        protocol: c.protocol,
        healthCheckIntervalMs: c.healthCheckIntervalMs,
      });
      this.listen();
      await this.clock.advance(0);
      this.check("start");
      for (let i = 0; i < actions.length; i++) {
        const a = actions[i] as Action;
        this.trace(`action ${i}: ${JSON.stringify(a)}`);
        this.apply(a);
        await this.clock.advance(a.t === "advance" ? a.ms : 0);
        this.check(`after action ${i} ${JSON.stringify(a)}`);
      }
      await this.finish();
      return { calls: this.promises.length, dials: this.net.dials.length, closeStates: this.closeStates };
    } finally {
      await this.teardown(() => this.client?.destroy());
    }
  }

  private listen(): void {
    const cl = this.client;
    cl.on("subscriber-disconnect", (info) => {
      this.log.push({ kind: "disconnect", at: this.now });
      this.trace(`event subscriber-disconnect ${info.error?.message ?? ""}`);
    });
    cl.on("subscriber-reconnecting", (info) => {
      this.log.push({ kind: "reconnecting", at: this.now, attempt: info.attempt, delayMs: info.delayMs });
      this.trace(`event subscriber-reconnecting ${JSON.stringify(info)}`);
    });
    cl.on("resubscribed", (info) => {
      this.trace(`event resubscribed ${JSON.stringify(info)}`);
      for (const ch of info.channels) if (!this.wanted(ch)) this.violations.push(`resubscribed names ${ch}, which has no listener`);
    });
    cl.on("error", (error) => {
      this.trace(`event error ${show(error)}`);
      if (!(error instanceof RedisError)) this.violations.push(`'error' event with a non-RedisError: ${show(error)}`);
    });
  }

  /** Does `channel` have a listener now (in the model)? */
  private wanted(channel: string): boolean {
    return this.registrations.some((r) => r.channel === channel && r.to === undefined);
  }

  private wantedChannels(): string[] {
    return [...new Set(this.registrations.filter((r) => r.to === undefined).map((r) => r.channel))];
  }

  private unregister(pred: (r: { id: number; channel: string }) => boolean): void {
    for (const r of this.registrations) if (r.to === undefined && pred(r)) r.to = this.net.stamp();
  }

  private onMessage(id: number, listenerChannel: string, message: string, channel: string): void {
    this.trace(`message ${message} on ${channel} to listener ${id}`);
    const publishedOn = this.published.get(message);
    if (publishedOn === undefined) this.violations.push(`received ${JSON.stringify(message)}, which nobody published`);
    else if (publishedOn !== channel || channel !== listenerChannel) this.violations.push(`message ${message} published on ${publishedOn} reached a ${listenerChannel} listener as ${channel}`);
    let got = this.received.get(message);
    if (got === undefined) this.received.set(message, (got = new Set()));
    if (got.has(id)) this.violations.push(`message ${message} delivered twice to listener ${id}`);
    got.add(id);
    const reg = this.registrations.find((r) => r.id === id);
    if (reg === undefined || reg.to !== undefined) this.violations.push(`message ${message} delivered to listener ${id} of ${listenerChannel} after it was removed`);
  }

  private apply(a: Action): void {
    const net = this.net;
    switch (a.t) {
      case "subscribe": {
        const channel = `ch${a.ch}`;
        const id = this.registrations.length + 1;
        const listener = (message: string, ch: string): void => this.onMessage(id, channel, message, ch);
        const timeout = this.config.commandTimeoutMs;
        const entry = { label: `subscribe ${channel} (listener ${id})`, acceptedAt: this.now, deadlineAt: timeout > 0 ? this.now + timeout : undefined, settled: false, settleCount: 0 };
        this.promises.push(entry);
        const closed = this.closeCalledAt !== undefined || this.destroyedAt !== undefined;
        const before = this.log.length;
        const p = this.client.subscribe(channel, listener);
        for (const e of this.log.slice(before)) if (e.kind === "dial") this.freshDials.add(e);
        const from = this.net.stamp();
        this.registrations.push({ id, channel, from, to: closed ? from : undefined });
        p.then(
          () => {
            entry.settled = true;
            entry.settleCount++;
            this.trace(`${entry.label} resolved`);
            const reg = this.registrations[id - 1];
            if (reg?.to === undefined && !net.subscribeLog.some((s) => s.channel === channel)) {
              this.violations.push(`${entry.label} resolved, yet the server never confirmed the channel`);
            }
          },
          (error: unknown) => {
            entry.settled = true;
            entry.settleCount++;
            this.trace(`${entry.label} rejected: ${show(error)}`);
            if (!(error instanceof TimeoutError || error instanceof ClientClosedError || error instanceof ConnectionError)) {
              this.violations.push(`${entry.label} rejected with ${show(error)}`);
            }
            if (error instanceof TimeoutError) {
              if (entry.deadlineAt !== this.now) this.violations.push(`${entry.label} timed out at +${this.now - entry.acceptedAt} ms, deadline ${timeout} ms`);
            }
            // A rejected subscribe() leaves no listener behind (on timeout the subscriber removes it).
            this.unregister((r) => r.id === id);
          },
        );
        return;
      }
      case "unsubscribe": {
        const channel = `ch${a.ch}`;
        const entry = { label: `unsubscribe ${channel}`, acceptedAt: this.now, deadlineAt: undefined, settled: false, settleCount: 0 };
        this.promises.push(entry);
        this.unregister((r) => r.channel === channel);
        this.client.unsubscribe(channel).then(
          () => {
            entry.settled = true;
            entry.settleCount++;
          },
          (error: unknown) => {
            entry.settled = true;
            entry.settleCount++;
            this.violations.push(`unsubscribe ${channel} rejected: ${show(error)}`);
          },
        );
        return;
      }
      case "publish": {
        const token = this.token();
        const channel = `ch${a.ch}`;
        this.published.set(token, channel);
        const n = net.publish(channel, token);
        this.trace(`publish ${token} on ${channel} to ${n} connection(s)`);
        return;
      }
      case "dial":
        net.dialMode = a.mode;
        return;
      case "freeze":
        net.frozen = true;
        return;
      case "unfreeze":
        net.frozen = false;
        return;
      case "delay":
        net.replyDelayMs = a.ms;
        return;
      case "cut":
        net.cutNext = true;
        return;
      case "kill":
        net.kill(a.rst);
        return;
      case "stall":
        net.stall(a.ms);
        return;
      case "close":
        this.close(a.timeoutMs);
        return;
      case "destroy":
        this.closeStates.push(`destroy@${this.subscriberState()}`);
        this.client.destroy();
        this.unregister(() => true);
        this.destroyedAt ??= this.now;
        return;
      default:
        return;
    }
  }

  private close(timeoutMs: number | undefined): void {
    this.closeStates.push(`close@${this.subscriberState()}`);
    this.closeCalledAt ??= this.now;
    const p = this.client.close(timeoutMs === undefined ? undefined : { timeoutMs });
    this.closePromise ??= p;
    this.unregister(() => true);
    p.then(
      () => {
        this.closeResolvedAt ??= this.now;
      },
      (err: unknown) => this.violations.push(`close() rejected: ${show(err)}`),
    );
  }

  private subscriberState(): string {
    const sub = (this.client as unknown as { subscriber?: { owner: { state: { kind: string } } } }).subscriber;
    return sub?.owner.state.kind ?? "none";
  }

  check(where: string): void {
    if (this.violations.length > 0) this.fail(`${where}: ${this.violations[0]}`);
    this.checkCommon(where);
    for (const p of this.promises) {
      if (p.settleCount > 1) this.fail(`${where}: ${p.label} settled ${p.settleCount} times`);
      if (!p.settled && p.deadlineAt !== undefined && this.now >= p.deadlineAt) this.fail(`${where}: ${p.label} not settled by its deadline`);
    }
    // Every message that reached the subscriber's socket whole reached every listener of its channel then.
    for (const d of this.net.delivered) {
      for (const r of this.registrations) {
        if (r.channel !== d.channel || r.from > d.seq || (r.to !== undefined && r.to <= d.seq)) continue;
        if (!this.received.get(d.token)?.has(r.id)) this.fail(`${where}: message ${d.token} on ${d.channel} reached the socket at ${d.at} but not listener ${r.id}`);
      }
    }
    if (this.liveUndestroyed() > 1) this.fail(`${where}: ${this.liveUndestroyed()} subscriber sockets open at once`);
    this.checkOwnerDials(
      where,
      (dial) => this.freshDials.has(dial),
      () => (this.subscriberState() === "connecting" ? "wanting" : "other"),
      false,
    );
  }

  private async finish(): Promise<void> {
    this.trace("--- heal ---");
    this.heal();
    const c = this.config;
    const horizon = 10 * (c.connectTimeoutMs + (c.reconnect === false ? 0 : c.reconnect.maxDelayMs) + 3000) + 30_000;
    await this.advanceUntil(() => this.promises.every((p) => p.settled), horizon, 250, (w) => this.check(w), "every subscribe/unsubscribe settles");
    // Liveness: with the server healed, a subscriber still open and wanting channels gets there again.
    const channels = this.wantedChannels();
    if (!this.ended && this.closeCalledAt === undefined && this.subscriberState() !== "closed" && channels.length > 0) {
      const confirmed = (): boolean => channels.every((ch) => [...(this.net.subscribers.get(ch) ?? [])].some((conn) => !conn.socket.destroyed));
      await this.advanceUntil(() => confirmed() || this.subscriberState() === "closed", horizon, 250, (w) => this.check(w), "the subscriber resubscribes after the server healed");
      if (this.subscriberState() !== "closed") {
        // Publish on every channel until a message gets through to it. (Pub/sub is fire and
        // forget: one published just before a loss the client has not noticed yet - replies
        // delayed before the heal, a health check about to fire - is legitimately lost.)
        const got = new Set<string>();
        const tokens: string[] = [];
        await this.advanceUntil(
          () => {
            for (const t of tokens) if (this.received.get(t) !== undefined) got.add(this.published.get(t) as string);
            if (channels.every((ch) => got.has(ch))) return true;
            // (It may still give up: reconnect attempts exhausted by losses before the heal showed.)
            if (this.subscriberState() === "closed") return true;
            for (const ch of channels) {
              if (got.has(ch)) continue;
              const token = this.token();
              this.published.set(token, ch);
              this.net.publish(ch, token);
              tokens.push(token);
            }
            return false;
          },
          horizon,
          50,
          (w) => this.check(w),
          "messages published after the heal reach their listeners",
        );
      }
    }
    if (this.destroyedAt === undefined) {
      if (this.closePromise === undefined) {
        this.trace("final close()");
        this.close(undefined);
      }
      await this.advanceUntil(() => this.ended, horizon, 250, (w) => this.check(w), "close() resolves");
    }
    await this.clock.advance(0);
    this.check("end");
    this.checkAllRequestsSettled("end");
  }
}

