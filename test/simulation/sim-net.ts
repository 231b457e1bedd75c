// An in-memory network and a scripted Redis server model, on the virtual clock.
//
// SimSocket is the client's end: the members of net.Socket that dial.ts,
// handshake.ts and RespSocket use (connect / data / end / error / close /
// drain events, write() returning false under backpressure, cork, end,
// destroy, writable, unref, setNoDelay, setKeepAlive). The test files route
// node:net's connect() here (vi.mock), so the real dial + handshake code
// (openConnection, with its connectTimeoutMs and AbortSignal handling) runs
// unchanged over it.
//
// Timing follows Node: 'connect', 'data', a peer's FIN and 'close' each come
// in a later macrotask (a simulation timer), never synchronously inside the
// call that caused them; destroy() emits 'error' (if given) on nextTick and
// 'close' a macrotask later, and writes after end()/destroy()/a peer's FIN
// are dropped (write() returns false).
//
// "Handed to the socket" (what maybeExecuted must say): every token (T<n>X)
// in bytes passed to SimSocket.write() is recorded in `handed`, whether or
// not they then reach the server (a write after the peer's FIN, or bytes held
// back by backpressure when the socket is destroyed, are handed yet never
// delivered). `executed` counts each token's executions by the model, so
// executed implies handed.
//
// Protocol: RESP2 until a connection says HELLO 3 (then nulls are "_", pub/sub
// messages and confirmations are push frames ">", HELLO's reply a map); a
// server with hello=false answers HELLO "unknown command" like Redis < 6.
//
// Faults (the server's behaviour, changed by the schedule at any time):
// - dialMode: how new dials are answered: accept; refuse (ECONNREFUSED:
//   dial() rejects with ConnectionError "connect-failed"); hang (no answer:
//   the dial ends only by connectTimeoutMs or the owner's AbortSignal);
//   accept-then-close (connects, then the server closes before reading).
// - frozen: the server reads and answers nothing, sockets stay open (a
//   stopped process); bytes queue until unfreeze. Dials still connect.
// - replyDelayMs: every reply (and FIN) reaches the client that much later,
//   in order.
// - cutNext: the next reply the server writes is cut in half, then the
//   connection closes (a crash mid-reply).
// - kill(rst): every server connection closes now (FIN after the replies
//   already on their way, or a reset).
// - stall(ms): client writes are held back (write() returns false) until
//   ms from now, then delivered, and 'drain' is emitted.
import { EventEmitter } from "node:events";
import { CommandReader, reply, resp3, RespSyntaxError } from "./resp-model.js";
import type { VirtualClock } from "./virtual-clock.js";

export type DialMode = "accept" | "refuse" | "hang" | "accept-then-close";

/** Tokens the harness puts in commands and pub/sub messages. */
export const TOKEN = /T\d+X/g;

export function tokensIn(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

export interface DialRecord {
  at: number;
  mode: DialMode;
  socket: SimSocket;
}

export interface DeliveredMessage {
  token: string;
  channel: string;
  at: number;
  /** Order among everything stamped with SimNet.stamp(). */
  seq: number;
  socket: SimSocket;
}

let active: SimNet | undefined;

/** node:net's connect(), routed here by the test files' vi.mock. */
export function simConnect(options: { host?: string; port?: number }): SimSocket {
  if (active === undefined) throw new Error("net.connect() called with no simulated network active");
  return active.connect(options);
}

export class SimNet {
  // ---- the server model's state ----------------------------------------------------
  readonly store = new Map<string, string>();
  /** AUTH must give this password (undefined: AUTH is refused as Redis does without a password). */
  password: string | undefined;
  /** The server knows HELLO (Redis >= 6: RESP3 on request); false: an older server ("unknown command"). */
  hello = true;
  // ---- faults ----------------------------------------------------------------------------
  dialMode: DialMode = "accept";
  private frozenNow = false;
  replyDelayMs = 0;
  cutNext = false;
  stallUntil = 0;
  /** Harness self-test only (a server bug): the next two replies of a connection swap places. */
  swapNext = false;
  // ---- what happened ------------------------------------------------------------------
  readonly handed = new Set<string>();
  readonly executed = new Map<string, number>();
  readonly dials: DialRecord[] = [];
  readonly sockets: SimSocket[] = [];
  readonly conns = new Set<ServerConn>();
  readonly subscribers = new Map<string, Set<ServerConn>>();
  readonly delivered: DeliveredMessage[] = [];
  /** SUBSCRIBEs the server confirmed. */
  readonly subscribeLog: { channel: string; at: number }[] = [];
  /** A handshake's answer (a connection's first PONG or HELLO reply) reached the client whole. */
  onPong: ((socket: SimSocket) => void) | undefined;
  /** Commands the model ran, for traces: "conn#3 ECHO T1X". */
  trace: ((line: string) => void) | undefined;
  private nextSocketId = 1;
  private seq = 0;

  constructor(readonly clock: VirtualClock) {}

  /** A number that orders events within one virtual instant. */
  stamp(): number {
    return ++this.seq;
  }

  activate(): void {
    active = this;
  }

  deactivate(): void {
    if (active === this) active = undefined;
  }

  get frozen(): boolean {
    return this.frozenNow;
  }

  set frozen(value: boolean) {
    this.frozenNow = value;
    if (!value) for (const c of [...this.conns]) c.pump();
  }

  connect(options: { host?: string; port?: number }): SimSocket {
    const s = new SimSocket(this, this.nextSocketId++);
    this.sockets.push(s);
    const mode = this.dialMode;
    this.dials.push({ at: this.clock.now, mode, socket: s });
    this.trace?.(`dial #${s.id} (${mode})`);
    switch (mode) {
      case "accept":
      case "accept-then-close":
        this.clock.schedule(() => {
          if (s.destroyed) return;
          const c = new ServerConn(this, s);
          this.conns.add(c);
          s.opened(c);
          if (mode === "accept-then-close") c.close(false);
        });
        break;
      case "refuse":
        this.clock.schedule(() => {
          if (s.destroyed) return;
          const where = `${options.host ?? "?"}:${options.port ?? "?"}`;
          s.destroy(Object.assign(new Error(`connect ECONNREFUSED ${where}`), { code: "ECONNREFUSED", syscall: "connect" }));
        });
        break;
      case "hang":
        break;
    }
    return s;
  }

  /** Every server connection closes now. */
  kill(rst: boolean): void {
    for (const c of [...this.conns]) c.close(rst);
  }

  /** Client writes are held back for `ms`, then delivered (and 'drain' emitted). */
  stall(ms: number): void {
    const until = this.clock.now + ms;
    if (until <= this.stallUntil) return;
    this.stallUntil = until;
    this.clock.schedule(() => {
      if (this.clock.now < this.stallUntil) return; // extended meanwhile: a later event ends it
      for (const s of this.sockets) s.unstall();
    }, ms);
  }

  /** PUBLISH from another client: the message goes to every connection subscribed to `channel`. */
  publish(channel: string, token: string): number {
    const conns = [...(this.subscribers.get(channel) ?? [])];
    for (const c of conns) c.pushMessage(channel, token);
    return conns.length;
  }

  /** Sockets not yet closed (connecting or open, or destroyed with 'close' still to come). */
  liveSockets(): SimSocket[] {
    return this.sockets.filter((s) => !s.closeEmitted);
  }

  noteExecuted(args: readonly string[]): void {
    for (const a of args) for (const t of tokensIn(a)) this.executed.set(t, (this.executed.get(t) ?? 0) + 1);
  }
}

export class SimSocket extends EventEmitter {
  phase: "connecting" | "open" | "closed" = "connecting";
  destroyed = false;
  closeEmitted = false;
  /** end() was called: our FIN is sent (after any held-back bytes). */
  private endedLocal = false;
  /** The server's FIN or reset arrived. */
  private remoteEnded = false;
  private peer: ServerConn | undefined;
  private held: Buffer[] = [];
  private finHeld = false;
  private wantDrain = false;
  readonly createdAt: number;
  /** As net.Socket's: bytes received and handed to write(). */
  bytesRead = 0;
  bytesWritten = 0;

  constructor(
    private readonly net: SimNet,
    readonly id: number,
  ) {
    super();
    this.createdAt = net.clock.now;
  }

  get writable(): boolean {
    return this.phase === "open" && !this.destroyed && !this.endedLocal && !this.remoteEnded;
  }

  /** The dial was accepted. */
  opened(peer: ServerConn): void {
    this.peer = peer;
    this.phase = "open";
    this.emit("connect");
  }

  write(data: string | Uint8Array, ..._rest: unknown[]): boolean {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data);
    for (const t of tokensIn(buf.toString("latin1"))) this.net.handed.add(t);
    if (!this.writable) return false;
    this.bytesWritten += buf.length; // after end(), destroy() or the peer's FIN: Node drops the bytes
    if (this.net.clock.now < this.net.stallUntil || this.held.length > 0) {
      this.held.push(buf);
      this.wantDrain = true;
      return false;
    }
    this.send(buf);
    return true;
  }

  cork(): void {}

  uncork(): void {}

  end(): this {
    if (this.destroyed || this.endedLocal) return this;
    this.endedLocal = true;
    if (this.held.length > 0) this.finHeld = true;
    else this.sendFin();
    return this;
  }

  destroy(error?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.held = [];
    const peer = this.peer;
    this.peer = undefined;
    if (peer !== undefined) this.net.clock.schedule(() => peer.clientGone());
    if (error !== undefined) process.nextTick(() => this.emit("error", error));
    this.net.clock.schedule(() => this.emitClose(error !== undefined));
    return this;
  }

  unref(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  /** Bytes from the server arrive. */
  receive(bytes: Buffer): boolean {
    if (this.destroyed || this.remoteEnded) return false;
    this.bytesRead += bytes.length;
    this.emit("data", bytes);
    return true;
  }

  /** The server closed its end (after everything it sent before). */
  remoteClosed(rst: boolean): void {
    if (this.destroyed || this.remoteEnded) return;
    this.remoteEnded = true;
    this.peer = undefined;
    if (rst) {
      this.destroyed = true;
      this.emit("error", Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET", syscall: "read" }));
      this.net.clock.schedule(() => this.emitClose(true));
      return;
    }
    // allowHalfOpen false: Node ends our side too, then the socket closes.
    this.emit("end");
    this.destroyed = true;
    this.net.clock.schedule(() => this.emitClose(false));
  }

  /** The backpressure is over: deliver what was held back, then 'drain'. */
  unstall(): void {
    if (this.destroyed) return;
    const held = this.held;
    this.held = [];
    for (const b of held) this.send(b);
    if (this.finHeld) {
      this.finHeld = false;
      this.sendFin();
    }
    if (this.wantDrain) {
      this.wantDrain = false;
      this.emit("drain");
    }
  }

  private send(buf: Buffer): void {
    const peer = this.peer;
    if (peer !== undefined) this.net.clock.schedule(() => peer.receive(buf));
  }

  private sendFin(): void {
    const peer = this.peer;
    if (peer !== undefined) this.net.clock.schedule(() => peer.clientEnded());
  }

  private emitClose(hadError: boolean): void {
    if (this.closeEmitted) return;
    this.phase = "closed";
    this.closeEmitted = true;
    this.emit("close", hadError);
  }
}

/** The server's side of one connection. */
export class ServerConn {
  private readonly reader = new CommandReader();
  closed = false;
  private clientFin = false;
  /** When the last reply sent reaches the client (replies keep their order under any delay). */
  private lastOut = 0;
  private multi: string[][] | undefined;
  private readonly channels = new Set<string>();
  /** RESP2 until HELLO 3. */
  proto: 2 | 3 = 2;
  /** A PING or HELLO was answered (the handshake). */
  private greeted = false;

  constructor(
    private readonly net: SimNet,
    readonly socket: SimSocket,
  ) {}

  receive(bytes: Buffer): void {
    if (this.closed) return;
    this.reader.feed(bytes);
    this.pump();
  }

  clientEnded(): void {
    if (this.closed) return;
    this.clientFin = true;
    this.pump();
  }

  /** The client destroyed its socket: the server notices and forgets the connection. */
  clientGone(): void {
    if (this.closed) return;
    this.closed = true;
    this.forget();
  }

  /** Run every complete command received (nothing while frozen). */
  pump(): void {
    if (this.closed || this.net.frozen) return;
    for (;;) {
      let cmd: string[] | undefined;
      try {
        cmd = this.reader.next();
      } catch (err) {
        if (!(err instanceof RespSyntaxError)) throw err;
        this.send(reply.error(`ERR Protocol error: ${err.message}`));
        this.close(false);
        return;
      }
      if (cmd === undefined) break;
      this.execute(cmd);
      if (this.closed) return;
    }
    // Redis closes a connection once it has read the client's FIN.
    if (this.clientFin) this.close(false);
  }

  close(rst: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.forget();
    const socket = this.socket;
    const at = Math.max(this.net.clock.now, this.lastOut);
    this.net.clock.schedule(() => socket.remoteClosed(rst), at - this.net.clock.now);
  }

  pushMessage(channel: string, token: string): void {
    const bytes = this.pushFrame([reply.bulk("message"), reply.bulk(channel), reply.bulk(token)]);
    this.send(bytes, () => this.net.delivered.push({ token, channel, at: this.net.clock.now, seq: this.net.stamp(), socket: this.socket }));
  }

  private nullable(s: string | null): Buffer {
    return s !== null ? reply.bulk(s) : this.proto === 3 ? resp3.null() : reply.bulk(null);
  }

  private pushFrame(items: readonly Buffer[]): Buffer {
    return this.proto === 3 ? resp3.push(items) : reply.array(items);
  }

  /** HELLO [protover [AUTH username password] [SETNAME name]]. */
  private hello(args: string[]): Buffer {
    if (!this.net.hello) return reply.error(`ERR unknown command '${args[0] ?? ""}', with args beginning with: ${args.slice(1).map((a) => `'${a}'`).join(" ")}`);
    const proto = args[1] === undefined ? this.proto : Number(args[1]);
    if (proto !== 2 && proto !== 3) return reply.error("NOPROTO unsupported protocol version");
    for (let i = 2; i < args.length; i++) {
      const opt = (args[i] ?? "").toUpperCase();
      if (opt === "AUTH") {
        const password = args[i + 2];
        if (this.net.password === undefined || password !== this.net.password) return reply.error("WRONGPASS invalid username-password pair or user is disabled.");
        i += 2;
      } else if (opt === "SETNAME") {
        i += 1;
      } else {
        return reply.error(`ERR Syntax error in HELLO option '${args[i] ?? ""}'`);
      }
    }
    this.proto = proto;
    const fields: [string, Buffer][] = [
      ["server", reply.bulk("redis")],
      ["version", reply.bulk("7.2.4")],
      ["proto", reply.int(proto)],
      ["id", reply.int(this.socket.id)],
      ["mode", reply.bulk("standalone")],
      ["role", reply.bulk("master")],
      ["modules", reply.array([])],
    ];
    if (proto === 3) return resp3.map(fields.map(([k, v]) => [reply.bulk(k), v]));
    return reply.array(fields.flatMap(([k, v]) => [reply.bulk(k), v]));
  }

  private forget(): void {
    this.net.conns.delete(this);
    for (const ch of this.channels) this.net.subscribers.get(ch)?.delete(this);
    this.channels.clear();
  }

  private swapped: Buffer | undefined;

  private send(bytes: Buffer, onDelivered?: () => void): void {
    if (this.closed) return;
    if (this.net.swapNext) {
      if (this.swapped === undefined) {
        this.swapped = bytes;
        return;
      }
      this.net.swapNext = false;
      const first = this.swapped;
      this.swapped = undefined;
      this.deliver(bytes);
      this.deliver(first);
      return;
    }
    if (this.net.cutNext) {
      this.net.cutNext = false;
      this.net.trace?.(`conn#${this.socket.id} reply cut after ${Math.floor(bytes.length / 2)} of ${bytes.length} bytes`);
      this.deliver(bytes.subarray(0, Math.floor(bytes.length / 2)));
      this.close(false);
      return;
    }
    this.deliver(bytes, onDelivered);
  }

  private deliver(bytes: Buffer, onDelivered?: () => void): void {
    if (bytes.length === 0) return;
    const now = this.net.clock.now;
    const at = Math.max(now + this.net.replyDelayMs, this.lastOut);
    this.lastOut = at;
    const socket = this.socket;
    this.net.clock.schedule(() => {
      if (socket.receive(bytes)) onDelivered?.();
    }, at - now);
  }

  private execute(args: string[]): void {
    const name = (args[0] ?? "").toUpperCase();
    this.net.trace?.(`conn#${this.socket.id} ${args.join(" ")}`);
    // RESP2 only: a RESP3 connection may run any command while subscribed.
    if (this.proto === 2 && this.channels.size > 0 && !["SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "PING", "QUIT", "RESET"].includes(name)) {
      this.send(reply.error(`ERR Can't execute '${name.toLowerCase()}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`));
      return;
    }
    if (this.multi !== undefined && !["EXEC", "DISCARD", "MULTI", "WATCH", "QUIT"].includes(name)) {
      this.multi.push(args);
      this.send(reply.simple("QUEUED"));
      return;
    }
    switch (name) {
      case "SUBSCRIBE":
        for (const ch of args.slice(1)) {
          this.channels.add(ch);
          let set = this.net.subscribers.get(ch);
          if (set === undefined) this.net.subscribers.set(ch, (set = new Set()));
          set.add(this);
          this.net.subscribeLog.push({ channel: ch, at: this.net.clock.now });
          this.send(this.pushFrame([reply.bulk("subscribe"), reply.bulk(ch), reply.int(this.channels.size)]));
        }
        return;
      case "UNSUBSCRIBE": {
        const names = args.length > 1 ? args.slice(1) : [...this.channels];
        if (names.length === 0) this.send(this.pushFrame([reply.bulk("unsubscribe"), this.nullable(null), reply.int(0)]));
        for (const ch of names) {
          this.channels.delete(ch);
          this.net.subscribers.get(ch)?.delete(this);
          this.send(this.pushFrame([reply.bulk("unsubscribe"), reply.bulk(ch), reply.int(this.channels.size)]));
        }
        return;
      }
      case "MULTI":
        if (this.multi !== undefined) {
          this.send(reply.error("ERR MULTI calls can not be nested"));
          return;
        }
        this.multi = [];
        this.send(reply.simple("OK"));
        return;
      case "EXEC": {
        const queued = this.multi;
        this.multi = undefined;
        if (queued === undefined) {
          this.send(reply.error("ERR EXEC without MULTI"));
          return;
        }
        this.send(reply.array(queued.map((c) => this.run(c))));
        return;
      }
      case "DISCARD":
        if (this.multi === undefined) {
          this.send(reply.error("ERR DISCARD without MULTI"));
          return;
        }
        this.multi = undefined;
        this.send(reply.simple("OK"));
        return;
      case "QUIT":
        this.send(reply.simple("OK"));
        this.close(false);
        return;
      case "PING": {
        // The connection's first answered PING or HELLO is its handshake (later PINGs: health checks).
        const socket = this.socket;
        const first = !this.greeted;
        this.greeted = true;
        this.send(this.run(args), first ? () => this.net.onPong?.(socket) : undefined);
        return;
      }
      case "HELLO": {
        // HELLO's answer proves the connection as PING's does (the RESP3 handshake).
        const before = this.proto;
        const r = this.hello(args);
        const socket = this.socket;
        const ok = r[0] !== 0x2d; // not "-ERR"
        if (ok && before !== this.proto) this.net.trace?.(`conn#${socket.id} speaks RESP${this.proto}`);
        const first = ok && !this.greeted;
        if (ok) this.greeted = true;
        this.send(r, first ? () => this.net.onPong?.(socket) : undefined);
        return;
      }
      default:
        this.send(this.run(args));
    }
  }

  /** One data command's reply (also inside EXEC). */
  private run(args: string[]): Buffer {
    const name = (args[0] ?? "").toUpperCase();
    const store = this.net.store;
    const arity = (n: number): Buffer | undefined => (args.length === n ? undefined : reply.error(`ERR wrong number of arguments for '${name.toLowerCase()}' command`));
    switch (name) {
      case "PING":
        if (this.channels.size > 0 && this.proto === 2) return reply.array([reply.bulk("pong"), reply.bulk(args[1] ?? "")]);
        return args.length > 1 ? reply.bulk(args[1] as string) : reply.simple("PONG");
      case "ECHO":
        this.net.noteExecuted(args);
        return arity(2) ?? reply.bulk(args[1] as string);
      case "GET":
        this.net.noteExecuted(args);
        return arity(2) ?? this.nullable(store.get(args[1] as string) ?? null);
      case "SET":
        this.net.noteExecuted(args);
        if (args.length < 3) return reply.error("ERR wrong number of arguments for 'set' command");
        store.set(args[1] as string, args[2] as string);
        return reply.simple("OK");
      case "INCR":
      case "INCRBY": {
        this.net.noteExecuted(args);
        const err = arity(name === "INCR" ? 2 : 3);
        if (err !== undefined) return err;
        const by = name === "INCR" ? 1 : Number(args[2]);
        const cur = Number(store.get(args[1] as string) ?? "0");
        if (!Number.isInteger(by) || !Number.isInteger(cur)) return reply.error("ERR value is not an integer or out of range");
        store.set(args[1] as string, String(cur + by));
        return reply.int(cur + by);
      }
      case "DEL": {
        this.net.noteExecuted(args);
        let n = 0;
        for (const k of args.slice(1)) if (store.delete(k)) n++;
        return reply.int(n);
      }
      case "PUBLISH":
        this.net.noteExecuted(args);
        return arity(3) ?? reply.int(this.net.publish(args[1] as string, args[2] as string));
      case "AUTH": {
        const password = this.net.password;
        if (password === undefined) {
          return reply.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        }
        return args[args.length - 1] === password ? reply.simple("OK") : reply.error("WRONGPASS invalid username-password pair or user is disabled.");
      }
      case "SELECT":
      case "CLIENT":
        return reply.simple("OK");
      default:
        return reply.error(`ERR unknown command '${args[0] ?? ""}'`);
    }
  }
}
