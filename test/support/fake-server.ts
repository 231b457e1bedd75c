// Tiny fake RESP servers, only for what a real redis-server never does:
// garbage reply bytes, a reply nobody asked for, accept and never answer,
// close in the middle of a reply, announce `$1000000000` and stream bytes.
// Everything a real server can do is tested against a real server.
//
// A fake server parses the commands it receives (RESP arrays of bulk
// strings) and hands each to a behaviour, chosen per connection: the first
// connection can misbehave and the next ones answer properly, which is how
// tests see a client reconnect and serve again.
//
// Commands are read with the harness's own RESP reader (resp-reader.ts), not
// with src/protocol: what the fake saw must not depend on the client's codec.
import net from "node:net";
import { RespError, RespReader, type RespValue } from "./resp-reader.js";

const HOST = "127.0.0.1";

export interface FakeConnection {
  /** 0 for the first connection the server accepted, 1 for the next, ... */
  readonly index: number;
  readonly socket: net.Socket;
  /** Commands received so far on this connection. */
  readonly commands: string[][];
  /** Bytes written to this connection so far. */
  readonly bytesWritten: number;
  /** Resolves once the socket has closed. */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  write(data: string | Buffer): boolean;
  /** FIN after what was written. */
  end(data?: string | Buffer): void;
  /** RST now. */
  reset(): void;
}

export interface Behaviour {
  onConnect?(conn: FakeConnection): void;
  onCommand?(conn: FakeConnection, args: string[]): void;
  /**
   * PING is answered by the fake itself (+PONG) unless this is true, so a
   * client that probes a new connection with PING gets past it and meets the
   * misbehaviour on the command under test.
   */
  handlesPing?: boolean;
  /**
   * The fake is a RESP2 server older than HELLO (Redis < 6): it refuses HELLO
   * as an unknown command, so a client asking for RESP3 falls back to RESP2,
   * unless this is true (the behaviour answers HELLO itself).
   */
  handlesHello?: boolean;
}

export interface FakeServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  /** Every connection accepted so far, oldest first. */
  readonly connections: readonly FakeConnection[];
  /** Every command received, on any connection. */
  readonly commands: string[][];
  /** Resolves once at least n connections were accepted (rejects after timeoutMs). */
  waitForConnections(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Start a fake server. `behaviour` picks what connection number `index`
 * does (a function), or is the same for every connection.
 */
export async function startFakeServer(behaviour: Behaviour | ((index: number) => Behaviour)): Promise<FakeServer> {
  const pick = typeof behaviour === "function" ? behaviour : () => behaviour;
  const connections: Conn[] = [];
  const allCommands: string[][] = [];
  const waiters: { n: number; resolve(): void }[] = [];
  const server = net.createServer((socket) => {
    const conn = new Conn(connections.length, socket);
    connections.push(conn);
    const b = pick(conn.index);
    socket.on("error", () => undefined);
    const onCommand = (reply: RespValue): void => {
      const args = Array.isArray(reply) ? reply.map((a) => String(a)) : [String(reply)];
      conn.commands.push(args);
      allCommands.push(args);
      if (conn.isClosed) return;
      if (b.handlesPing !== true && (args[0] ?? "").toUpperCase() === "PING") {
        conn.write(args.length > 1 ? bulk(args[1] as string) : "+PONG\r\n");
        return;
      }
      if (b.handlesHello !== true && (args[0] ?? "").toUpperCase() === "HELLO") {
        conn.write("-ERR unknown command 'HELLO', with args beginning with: \r\n");
        return;
      }
      b.onCommand?.(conn, args);
    };
    const reader = new RespReader();
    socket.on("data", (chunk: Buffer) => {
      let values: RespValue[];
      try {
        values = reader.feed(chunk);
      } catch {
        conn.reset(); // not RESP: a client bug the test will see as a reset
        return;
      }
      for (const value of values) {
        if (value instanceof RespError) {
          conn.reset(); // a client never sends an error reply
          return;
        }
        onCommand(value);
      }
    });
    b.onConnect?.(conn);
    for (const w of waiters.filter((x) => connections.length >= x.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, HOST, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("fake server: no TCP address");
  const port = address.port;
  return {
    port,
    url: `redis://${HOST}:${port}`,
    connections,
    commands: allCommands,
    waitForConnections(n, timeoutMs = 5000) {
      if (connections.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fake server: ${connections.length} connections, expected ${n} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    async close() {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of connections) c.reset();
      await closing;
    },
  };
}

class Conn implements FakeConnection {
  readonly commands: string[][] = [];
  bytesWritten = 0;
  isClosed = false;
  readonly closed: Promise<void>;

  constructor(
    readonly index: number,
    readonly socket: net.Socket,
  ) {
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.isClosed = true;
        resolve();
      }),
    );
  }

  write(data: string | Buffer): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    this.bytesWritten += typeof data === "string" ? Buffer.byteLength(data) : data.length;
    return this.socket.write(data);
  }

  end(data?: string | Buffer): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    if (data === undefined) {
      this.socket.end();
      return;
    }
    this.bytesWritten += typeof data === "string" ? Buffer.byteLength(data) : data.length;
    this.socket.end(data);
  }

  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }
}

// ---------------------------------------------------------------------------
// Behaviours

/**
 * A well-behaved little server: PING, ECHO, SET, GET, DEL, INCR, EXISTS,
 * DBSIZE, anything else -> +OK. Its data lives in `store` (shared by every
 * connection that uses the same behaviour object).
 */
export function goodServer(store = new Map<string, string>()): Behaviour {
  return {
    onCommand(conn, args) {
      conn.write(answer(store, args));
    },
  };
}

function bulk(s: string | null): string {
  return s === null ? "$-1\r\n" : `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
}

function answer(store: Map<string, string>, args: string[]): string {
  const name = (args[0] ?? "").toUpperCase();
  switch (name) {
    case "PING":
      return args.length > 1 ? bulk(args[1] as string) : "+PONG\r\n";
    case "ECHO":
      return bulk(args[1] ?? "");
    case "SET":
      store.set(args[1] ?? "", args[2] ?? "");
      return "+OK\r\n";
    case "GET":
      return bulk(store.get(args[1] ?? "") ?? null);
    case "DEL": {
      let n = 0;
      for (const k of args.slice(1)) if (store.delete(k)) n++;
      return `:${n}\r\n`;
    }
    case "EXISTS":
      return `:${args.slice(1).filter((k) => store.has(k)).length}\r\n`;
    case "DBSIZE":
      return `:${store.size}\r\n`;
    case "INCR": {
      const v = Number(store.get(args[1] ?? "") ?? "0") + 1;
      store.set(args[1] ?? "", String(v));
      return `:${v}\r\n`;
    }
    default:
      return "+OK\r\n";
  }
}

/** Answer every command with `bytes` (or what the function returns), then optionally close. */
export function garbageServer(bytes: Buffer | ((conn: FakeConnection, args: string[]) => Buffer), then: "keep-open" | "close" = "keep-open"): Behaviour {
  return {
    onCommand(conn, args) {
      const data = typeof bytes === "function" ? bytes(conn, args) : bytes;
      if (then === "close") conn.end(data);
      else conn.write(data);
    },
  };
}

/** Answer the first command properly, then send one more reply nobody asked for. */
export function unsolicitedReplyServer(extra = "+SURPRISE\r\n"): Behaviour {
  const store = new Map<string, string>();
  let answered = false;
  return {
    onCommand(conn, args) {
      conn.write(answer(store, args) + (answered ? "" : extra));
      answered = true;
    },
  };
}

/** Send a reply as soon as the connection is accepted, before any command. */
export function greetingServer(greeting = "+HELLO\r\n"): Behaviour {
  return {
    onConnect(conn) {
      conn.write(greeting);
    },
  };
}

/** Accept, read, and never answer (but PING, unless told: see Behaviour.handlesPing). */
export function silentServer(): Behaviour {
  return {};
}

/** On each command: send the first bytes of a reply, then close (FIN). */
export function closeMidReplyServer(partial = "$10\r\nhello"): Behaviour {
  return {
    onCommand(conn) {
      conn.end(partial);
    },
  };
}

/**
 * On each command: announce a bulk string of `length` bytes and stream it in
 * 64 KiB chunks, as fast as the peer reads, until the peer goes away (or all
 * of it was sent). conn.bytesWritten says how far it got.
 */
export function hugeBulkServer(length = 1_000_000_000): Behaviour {
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  return {
    onCommand(conn) {
      conn.write(`$${length}\r\n`);
      let left = length;
      const pump = (): void => {
        while (left > 0 && !conn.isClosed) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!conn.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            conn.socket.once("drain", pump);
            return;
          }
        }
        if (left === 0) conn.write("\r\n");
      };
      pump();
    },
  };
}
