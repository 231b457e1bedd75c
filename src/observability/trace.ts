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

export function traceRequest(id: ClientIdentity, req: Request): Promise<Reply> {
  const name = req.name;
  // retried and maybeExecuted are read when the command settles: getters cost no extra promise.
  const ctx: CommandTraceContext = {
    ...id,
    command: name,
    args: redactArgs(name, req.args),
    get retried() {
      return req.retried;
    },
    get maybeExecuted() {
      return maybeExecuted(this.error);
    },
  };
  return commandChannel.tracePromise(() => req.promise, ctx);
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
