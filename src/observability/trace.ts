// Running a command, batch or dial inside its TracingChannel (only called
// when the channel has subscribers: the caller checks hasSubscribers). The
// traced promise is what the caller gets; start/end fire synchronously in the
// caller's async context (so a tracer finds its parent span), asyncStart,
// asyncEnd and error when it settles.
import type { Request } from "../request.js";
import type { Reply } from "../protocol/decode.js";
import type { BatchResult } from "../batch.js";
import { batchChannel, commandChannel, redactArgs, type ClientIdentity, type CommandTraceContext } from "./channels.js";

function maybeExecuted(error: unknown): boolean | undefined {
  const m = (error as { maybeExecuted?: unknown } | null)?.maybeExecuted;
  return typeof m === "boolean" ? m : undefined;
}

/**
 * A command's payload: a class, so every context has the same shape (an
 * object literal with getters, or a spread of the identity, costs V8 several
 * µs per command). retried and maybeExecuted are read when it settles.
 */
class CommandContext implements CommandTraceContext {
  readonly clientId: string;
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  readonly database: number;
  readonly transport: ClientIdentity["transport"];
  readonly protocol: 2 | 3;
  readonly command: string;
  readonly args: readonly string[];
  result?: unknown;
  error?: unknown;
  readonly #req: Request;

  constructor(id: ClientIdentity, req: Request) {
    this.clientId = id.clientId;
    this.serverAddress = id.serverAddress;
    this.serverPort = id.serverPort;
    this.database = id.database;
    this.transport = id.transport;
    this.protocol = id.protocol;
    this.command = req.name;
    this.args = redactArgs(this.command, req.args);
    this.#req = req;
  }

  get retried(): boolean {
    return this.#req.retried;
  }

  get maybeExecuted(): boolean | undefined {
    return maybeExecuted(this.error);
  }
}

export function traceRequest(id: ClientIdentity, req: Request): Promise<Reply> {
  return commandChannel.tracePromise(() => req.promise, new CommandContext(id, req));
}

export function traceBatch(id: ClientIdentity, atomic: boolean, size: number, results: Promise<BatchResult[]>): Promise<BatchResult[]> {
  const ctx = { ...id, batchMode: atomic ? ("MULTI" as const) : ("PIPELINE" as const), batchSize: size, maybeExecuted: undefined as boolean | undefined };
  return batchChannel.tracePromise(
    () =>
      results.catch((error: unknown) => {
        ctx.maybeExecuted = maybeExecuted(error);
        throw error;
      }),
    ctx,
  );
}
