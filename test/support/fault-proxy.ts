// A TCP fault-injection proxy for tests, in front of a real redis-server: the
// faults Redis cannot make itself (blackhole, delay, 1-byte split, cut after N
// bytes, reset now, refuse over a connection cap), switchable at run time for
// one connection or for all.
//
// It is built as an acceptor pool (the Erlang/Go idea in shared/seeds): one
// listening socket, a fixed number of acceptors pulling accepted sockets from
// it one at a time, and a cap on live connections with an overflow strategy.
// In Node the kernel accepts for us, so the pool is modelled this way:
//   - the net.Server runs with pauseOnConnect: an accepted socket reads
//     nothing until an acceptor has set it up (Erlang's {active, false} until
//     the handler is ready), so no byte can arrive before its pipe exists;
//   - accepted sockets wait in one FIFO (our accept backlog); N acceptor loops
//     take them one by one. An acceptor owns a socket until the upstream dial
//     is done, so at most N connections are being set up at once;
//   - at the cap, "refuse" closes the new socket at once, "queue" parks it
//     (still paused) until a live connection ends and frees a slot.
//
// Faults act on bytes, never on RESP: the proxy knows nothing of Redis.
//   pass       forward as is
//   delay      hold each chunk for `ms` before forwarding it (both ways, order kept)
//   split      server->client bytes go out one byte per write, one per event-loop turn
//   blackhole  forward nothing and stop reading, both ways; the sockets stay open
//              (no FIN, no RST). Like a network that drops packets: TCP keeps
//              the bytes and delivers them once the path heals (set "pass").
//   cut        after `afterBytes` more bytes in `direction`, forward exactly
//              those and close both sides (FIN)
// and one action: reset() sends RST on both sides now (socket.resetAndDestroy()).
import net from "node:net";

const HOST = "127.0.0.1";
/** Queue this many bytes in one direction before we stop reading its source. */
const HIGH_WATER_BYTES = 1 << 20;

/** "up": client -> server. "down": server -> client. */
export type Direction = "up" | "down";

export type Fault =
  | { type: "pass" }
  | { type: "delay"; ms: number }
  | { type: "split" }
  | { type: "blackhole" }
  | { type: "cut"; afterBytes: number; direction: Direction };

export type OverflowStrategy = "refuse" | "queue";

export interface FaultProxyOptions {
  /** The server to forward to (127.0.0.1 unless host is given). */
  target: { host?: string; port: number };
  /** Acceptors pulling from the one listening socket. Default 4. */
  acceptors?: number;
  /** Most live (proxied) connections at once. Default Infinity. */
  maxConnections?: number;
  /** What to do with a connection over the cap. Default "refuse". */
  overflow?: OverflowStrategy;
  /** Port to listen on; default 0 (a free one). */
  port?: number;
  /** Deadline for the upstream dial, in ms. Default 2000. */
  upstreamConnectTimeoutMs?: number;
}

export interface FaultProxyStats {
  /** TCP connections accepted on the listening socket (every dial of a client). */
  accepted: number;
  /** Connections an acceptor handed to a handler (a slot was taken). */
  admitted: number;
  /** Connections closed at once because the cap was reached (overflow "refuse"). */
  refused: number;
  /** Connections parked over the cap, right now (overflow "queue"). */
  queued: number;
  /** Slots in use right now (connections being set up or forwarding). */
  live: number;
  /** Admitted connections whose upstream dial failed (closed with RST). */
  upstreamFailures: number;
}

export interface FaultProxy {
  readonly port: number;
  /** "redis://127.0.0.1:PORT" */
  readonly url: string;
  readonly stats: FaultProxyStats;
  /** Live connections, oldest first. */
  readonly connections: readonly ProxyConnection[];
  /** The fault for every live connection and every new one. */
  setFault(fault: Fault): void;
  /** The fault new connections start with (live ones keep theirs). */
  setDefaultFault(fault: Fault): void;
  /** RST every live connection now. */
  resetAll(): void;
  /** Close the listening socket and every connection (RST), queued ones too. */
  close(): Promise<void>;
}

/** Resolves with a listening proxy. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const proxy = new Proxy(options);
  await proxy.listen(options.port ?? 0);
  return proxy;
}

// ---------------------------------------------------------------------------

/** A FIFO that acceptors await on; shift() resolves undefined once closed. */
class AcceptQueue {
  private readonly items: net.Socket[] = [];
  private readonly takers: ((s: net.Socket | undefined) => void)[] = [];
  private closed = false;

  push(socket: net.Socket, front = false): void {
    const taker = this.takers.shift();
    if (taker !== undefined) taker(socket);
    else if (front) this.items.unshift(socket);
    else this.items.push(socket);
  }

  shift(): Promise<net.Socket | undefined> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.takers.push(resolve));
  }

  close(): net.Socket[] {
    this.closed = true;
    for (const t of this.takers.splice(0)) t(undefined);
    return this.items.splice(0);
  }
}

class Proxy implements FaultProxy {
  private readonly server: net.Server;
  private readonly backlog = new AcceptQueue();
  private readonly overflowQueue: net.Socket[] = [];
  private readonly live = new Set<ProxyConnection>();
  private readonly counts = { accepted: 0, admitted: 0, refused: 0, upstreamFailures: 0 };
  private slotsInUse = 0;
  private defaultFault: Fault = { type: "pass" };
  private closed = false;
  private listenPort = 0;
  private nextId = 1;
  private readonly maxConnections: number;
  private readonly overflow: OverflowStrategy;
  private readonly acceptorLoops: Promise<void>[] = [];

  constructor(private readonly options: FaultProxyOptions) {
    this.maxConnections = options.maxConnections ?? Infinity;
    this.overflow = options.overflow ?? "refuse";
    this.server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
      this.counts.accepted++;
      socket.on("error", () => undefined); // a socket may die while it waits; its 'close' tells us
      if (this.closed) {
        socket.destroy();
        return;
      }
      this.backlog.push(socket);
    });
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, HOST, () => {
        this.server.removeListener("error", reject);
        resolve();
      });
    });
    const address = this.server.address();
    if (address === null || typeof address === "string") throw new Error("fault proxy: no TCP address");
    this.listenPort = address.port;
    const n = Math.max(1, this.options.acceptors ?? 4);
    for (let i = 0; i < n; i++) this.acceptorLoops.push(this.acceptor());
  }

  get port(): number {
    return this.listenPort;
  }

  get url(): string {
    return `redis://${HOST}:${this.listenPort}`;
  }

  get stats(): FaultProxyStats {
    return { ...this.counts, queued: this.overflowQueue.length, live: this.slotsInUse };
  }

  get connections(): readonly ProxyConnection[] {
    return [...this.live];
  }

  setFault(fault: Fault): void {
    this.defaultFault = fault;
    for (const c of this.live) c.setFault(fault);
  }

  setDefaultFault(fault: Fault): void {
    this.defaultFault = fault;
  }

  resetAll(): void {
    for (const c of [...this.live]) c.reset();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.backlog.close()) s.destroy();
    for (const s of this.overflowQueue.splice(0)) s.destroy();
    for (const c of [...this.live]) c.reset();
    await Promise.all(this.acceptorLoops);
    await closing;
  }

  /** One acceptor: take an accepted socket, admit it (or refuse / park it), set it up, repeat. */
  private async acceptor(): Promise<void> {
    for (;;) {
      const socket = await this.backlog.shift();
      if (socket === undefined) return;
      if (socket.destroyed) continue;
      if (this.slotsInUse >= this.maxConnections) {
        if (this.overflow === "refuse") {
          this.counts.refused++;
          socket.destroy();
        } else {
          this.overflowQueue.push(socket);
        }
        continue;
      }
      this.slotsInUse++;
      this.counts.admitted++;
      const conn = new ProxyConnection(this.nextId++, socket, this.defaultFault, () => this.release(conn));
      this.live.add(conn);
      const ok = await conn.dial(this.options.target.host ?? HOST, this.options.target.port, this.options.upstreamConnectTimeoutMs ?? 2000);
      if (!ok) this.counts.upstreamFailures++;
      if (this.closed) conn.reset();
    }
  }

  /** A connection ended: free its slot and let the oldest parked socket in. */
  private release(conn: ProxyConnection): void {
    if (!this.live.delete(conn)) return;
    this.slotsInUse--;
    while (this.overflowQueue.length > 0 && !this.closed) {
      const next = this.overflowQueue.shift() as net.Socket;
      if (next.destroyed) continue;
      this.backlog.push(next, true);
      break;
    }
  }
}

/** One proxied connection: a client socket, its upstream socket and a pipe each way. */
export class ProxyConnection {
  upstream: net.Socket | undefined;
  private fault: Fault;
  private up: Pipe | undefined;
  private down: Pipe | undefined;
  private finished = false;
  private clientClosed = false;
  private upstreamClosed = true;

  constructor(
    readonly id: number,
    readonly client: net.Socket,
    fault: Fault,
    private readonly onFinish: () => void,
  ) {
    this.fault = fault;
    client.on("close", () => {
      this.clientClosed = true;
      this.upstream?.destroy();
      this.maybeFinish();
    });
  }

  /** Bytes forwarded client -> server so far. */
  get bytesUp(): number {
    return this.up?.forwarded ?? 0;
  }

  /** Bytes forwarded server -> client so far. */
  get bytesDown(): number {
    return this.down?.forwarded ?? 0;
  }

  /** The local port of the upstream socket: what the server sees as this client's address. */
  get upstreamLocalPort(): number | undefined {
    return this.upstream?.localPort;
  }

  get currentFault(): Fault {
    return this.fault;
  }

  /** Dial the server and start forwarding. False (and the client reset) when the dial failed. */
  dial(host: string, port: number, timeoutMs: number): Promise<boolean> {
    if (this.client.destroyed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const upstream = net.connect({ host, port, allowHalfOpen: true });
      this.upstream = upstream;
      this.upstreamClosed = false;
      const timer = setTimeout(() => upstream.destroy(new Error("upstream connect timeout")), timeoutMs);
      let connected = false;
      upstream.on("error", () => undefined);
      upstream.on("close", () => {
        clearTimeout(timer);
        this.upstreamClosed = true;
        if (!connected) {
          // Refused or timed out: the client sees its connection reset, as from a dead server.
          if (!this.client.destroyed) this.client.resetAndDestroy();
          resolve(false);
        } else if (!this.client.destroyed) {
          // Closed by error (a closed-by-FIN upstream ends the client through the pipe).
          if (upstream.errored) this.client.destroy();
        }
        this.maybeFinish();
      });
      upstream.once("connect", () => {
        clearTimeout(timer);
        connected = true;
        upstream.setNoDelay(true);
        this.client.setNoDelay(true);
        if (this.client.destroyed) {
          upstream.destroy();
          resolve(true);
          return;
        }
        this.up = new Pipe(this.client, upstream, "up", this);
        this.down = new Pipe(upstream, this.client, "down", this);
        this.client.on("error", () => upstream.destroy());
        // Reading starts here (the socket was accepted paused); a blackhole
        // set below pauses it again before any byte is read.
        this.client.resume();
        this.applyFault(this.fault);
        resolve(true);
      });
    });
  }

  setFault(fault: Fault): void {
    this.fault = fault;
    this.applyFault(fault);
  }

  /** RST both sides now. */
  reset(): void {
    if (!this.client.destroyed) this.client.resetAndDestroy();
    if (this.upstream !== undefined && !this.upstream.destroyed) this.upstream.resetAndDestroy();
  }

  /** Close both sides (FIN after what was forwarded). */
  cutNow(): void {
    this.up?.stop();
    this.down?.stop();
    for (const s of [this.client, this.upstream]) {
      if (s === undefined || s.destroyed) continue;
      s.end(() => s.destroy());
      // A peer that never reads must not keep the socket: give up after a moment.
      setTimeout(() => s.destroy(), 1000).unref();
    }
  }

  private applyFault(fault: Fault): void {
    this.up?.setFault(fault);
    this.down?.setFault(fault);
  }

  private maybeFinish(): void {
    if (this.finished || !this.clientClosed || !this.upstreamClosed) return;
    this.finished = true;
    this.onFinish();
  }
}

interface Chunk {
  data: Buffer;
  due: number;
}

/** One direction of a connection: reads src, queues, forwards to dst as the fault says. */
class Pipe {
  /** Bytes handed to dst so far. */
  forwarded = 0;
  private readonly queue: Chunk[] = [];
  private head = 0;
  private queuedBytes = 0;
  private fault: Fault = { type: "pass" };
  private timer: NodeJS.Timeout | undefined;
  /** Waiting for a split write or a 'drain'. */
  private busy = false;
  private srcEnded = false;
  private stopped = false;
  /** Bytes still allowed before a cut; undefined when no cut is armed. */
  private cutRemaining: number | undefined;
  private cutting = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly direction: Direction,
    private readonly conn: ProxyConnection,
  ) {
    src.on("data", (chunk: Buffer) => this.onData(chunk));
    src.on("end", () => {
      this.srcEnded = true;
      this.pump();
    });
    dst.on("close", () => this.stop());
  }

  setFault(fault: Fault): void {
    this.fault = fault;
    this.cutRemaining = fault.type === "cut" && fault.direction === this.direction ? Math.max(0, fault.afterBytes) : undefined;
    if (this.cutRemaining === 0) this.cutting = true;
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
  }

  private onData(chunk: Buffer): void {
    if (this.stopped || this.cutting) return;
    let data = chunk;
    if (this.cutRemaining !== undefined) {
      if (data.length >= this.cutRemaining) {
        data = data.subarray(0, this.cutRemaining);
        this.cutting = true;
      }
      this.cutRemaining -= data.length;
    }
    if (data.length > 0) {
      const due = this.fault.type === "delay" ? Date.now() + this.fault.ms : 0;
      this.queue.push({ data, due });
      this.queuedBytes += data.length;
      if (this.queuedBytes > HIGH_WATER_BYTES) this.src.pause();
    }
    this.pump();
  }

  private pump(): void {
    if (this.stopped || this.busy) return;
    while (this.head < this.queue.length) {
      if (this.fault.type === "blackhole") {
        this.src.pause();
        return;
      }
      const chunk = this.queue[this.head] as Chunk;
      const now = Date.now();
      if (chunk.due > now) {
        if (this.timer === undefined) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.pump();
          }, chunk.due - now);
        }
        return;
      }
      if (this.fault.type === "split" && this.direction === "down" && chunk.data.length > 1) {
        // One byte per write, and the next one only on a later event-loop
        // turn, so the peer's reads see (almost always) one byte each.
        const byte = chunk.data.subarray(0, 1);
        chunk.data = chunk.data.subarray(1);
        this.queuedBytes--;
        this.forwarded++;
        this.busy = true;
        this.dst.write(byte, () => {
          this.busy = false;
          setImmediate(() => this.pump());
        });
        return;
      }
      this.queue[this.head++] = undefined as unknown as Chunk;
      if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.queuedBytes -= chunk.data.length;
      this.forwarded += chunk.data.length;
      const ok = this.dst.write(chunk.data);
      if (!ok) {
        this.busy = true;
        this.dst.once("drain", () => {
          this.busy = false;
          this.pump();
        });
        return;
      }
    }
    // Everything queued went out.
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
    if (this.cutting) {
      this.conn.cutNow();
      return;
    }
    if (this.srcEnded) {
      if (!this.dst.destroyed && !this.dst.writableEnded) this.dst.end();
      return;
    }
    if (this.fault.type === "blackhole") this.src.pause();
    else if (this.src.isPaused() && !this.src.destroyed) this.src.resume();
  }
}
