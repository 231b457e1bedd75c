// The Client: one command() API over either transport, with events and a
// lifecycle. Typed helpers are thin wrappers over command() (src/helpers).
import { EventEmitter } from "node:events";
import { ClientClosedError, type RedisError } from "./errors.js";
import { resolveOptions, type ClientOptions, type ResolvedOptions } from "./options.js";
import type { Reply } from "./protocol/decode.js";
import type { Command } from "./protocol/encode.js";
import { PipelinedTransport } from "./pipelined/pipelined-transport.js";
import { PooledTransport } from "./blocking/pooled-transport.js";
import { Request, type CommandOptions } from "./request.js";
import type { ClientStatus, DedicatedConnection, DisconnectReason, Transport, TransportEvents } from "./transport.js";

export interface ClientEvents {
  ready: [];
  disconnect: [info: { reason: DisconnectReason; error: Error | undefined }];
  reconnecting: [info: { attempt: number; delayMs: number }];
  error: [error: RedisError];
  close: [];
}

export class Client extends EventEmitter<ClientEvents> {
  readonly options: ResolvedOptions;
  private readonly transport: Transport;
  private closedByUser = false;

  constructor(options: string | ClientOptions = {}) {
    super();
    this.options = resolveOptions(options);
    const events: TransportEvents = {
      ready: () => this.emit("ready"),
      disconnect: (info) => this.emit("disconnect", info),
      reconnecting: (info) => this.emit("reconnecting", info),
      // An 'error' event with no listener would crash the process; a client
      // that must never take a service down only reports to those who listen.
      error: (error) => {
        if (this.listenerCount("error") > 0) this.emit("error", error);
      },
      close: () => this.emit("close"),
    };
    this.transport =
      this.options.transport === "pooled"
        ? new PooledTransport(this.options, events)
        : new PipelinedTransport(this.options, events, () => new PooledTransport(this.options, silentEvents(events)));
    if (!this.options.lazyConnect) {
      // Connection failures are reported through events and command results.
      this.transport.connect().catch(() => undefined);
    }
  }

  /** "idle" (lazy, not dialed) | "connecting" | "ready" | "reconnecting" | "closing" | "closed". */
  get status(): ClientStatus {
    return this.transport.status;
  }

  /** Resolves once the first handshake is done (optional: commands queue until then). */
  connect(): Promise<void> {
    return this.transport.connect();
  }

  /** Send any command: `await client.command(["SET", "k", "v"])`. */
  command(args: Command, options?: CommandOptions): Promise<Reply> {
    let req: Request;
    try {
      req = new Request(args, options, this.options.commandTimeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closedByUser) req.fail(new ClientClosedError());
    else if (!req.settled) this.transport.send(req);
    return req.promise;
  }

  /** One socket for several commands in a row; released afterwards, also on throw. */
  withConnection<T>(fn: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    if (this.closedByUser) return Promise.reject(new ClientClosedError());
    return this.transport.withConnection(fn);
  }

  /** Graceful: commands already accepted get their replies, then every socket closes. */
  close(): Promise<void> {
    this.closedByUser = true;
    return this.transport.close();
  }

  /** Now: every pending command rejects with ClientClosedError. */
  destroy(): void {
    this.closedByUser = true;
    this.transport.destroy();
  }
}

/** The pipelined client's dedicated connections report through the main client only for errors. */
function silentEvents(events: TransportEvents): TransportEvents {
  const none = (): void => undefined;
  return { ready: none, disconnect: none, reconnecting: none, close: none, error: events.error };
}

export function createClient(options?: string | ClientOptions): Client {
  return new Client(options);
}
