// Batches: many commands in one round trip, one result per command.
//
// Non-atomic: each command is independent; its result is its reply or the
// error it got (a ReplyError from the server, or a client error such as a
// ConnectionError), so one failure never hides the others' outcomes.
//
// Atomic: MULTI, the commands, EXEC, back to back. The commands' own replies
// are only "QUEUED" (or a queue-time error); their results come in EXEC's
// reply. An EXEC that answers nil (a WATCHed key changed) rejects the whole
// batch with WatchError: nothing ran. EXECABORT (a command was refused while
// queueing, e.g. a syntax error or NOPERM) gives that command its own error
// and every other command the EXECABORT error: nothing ran either.
import { ProtocolError, RedisError, ReplyError, WatchError } from "./errors.js";
import { commandName } from "./commands.js";
import type { Reply } from "./protocol/decode.js";
import { validateCommand, type Command } from "./protocol/encode.js";
import type { CommandOptions } from "./request.js";
import type { DedicatedConnection } from "./transport.js";

export interface BatchOptions {
  /** Wrap the commands in MULTI/EXEC: all run, with nothing in between, or none do. Default false. */
  atomic?: boolean;
  /** Return bulk strings as Buffers. */
  returnBuffers?: boolean;
  /** Deadline for the batch in ms (each command's, when not atomic), replacing commandTimeoutMs; 0 = none. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One command's outcome: its reply, or the error it got (never thrown, so the others stay visible). */
export type BatchResult = Reply | RedisError;

export const MULTI: Command = ["MULTI"];
export const EXEC: Command = ["EXEC"];

/** Throw a TypeError before anything is sent: an atomic batch must not go out with a hole in it. */
export function validateBatch(commands: readonly Command[]): void {
  if (!Array.isArray(commands)) throw new TypeError("batch(commands): commands must be an array of commands");
  for (const c of commands) validateCommand(c);
}

/** A settled non-atomic command: its value, or its error as a value. */
export function toResult(outcome: PromiseSettledResult<Reply>): BatchResult {
  if (outcome.status === "fulfilled") return outcome.value;
  const reason: unknown = outcome.reason;
  return reason instanceof RedisError ? reason : new RedisError("Command failed", "ERR_RESPITE_UNKNOWN", true, { cause: reason });
}

/**
 * Results of MULTI, commands..., EXEC from their settled promises, in that
 * order. Throws the error that makes the whole transaction's fate the answer:
 * WatchError, or the client error EXEC got (ConnectionError with
 * maybeExecuted, TimeoutError, ClientClosedError...).
 */
export function atomicResults(commands: readonly Command[], settled: readonly PromiseSettledResult<Reply>[]): BatchResult[] {
  const multi = settled[0] as PromiseSettledResult<Reply>;
  const exec = settled[settled.length - 1] as PromiseSettledResult<Reply>;
  // MULTI refused (an ACL without MULTI): the commands ran one by one, not
  // as a transaction. Say so rather than pretend.
  if (multi.status === "rejected" && multi.reason instanceof ReplyError) throw multi.reason;
  if (exec.status === "rejected") {
    const error: unknown = exec.reason;
    if (!(error instanceof ReplyError)) throw error;
    // EXECABORT (or another refusal of EXEC): nothing ran.
    return commands.map((_, i) => {
      const queued = settled[i + 1] as PromiseSettledResult<Reply>;
      return queued.status === "rejected" && queued.reason instanceof ReplyError ? queued.reason : error;
    });
  }
  const replies = exec.value;
  if (replies === null) throw new WatchError();
  if (!Array.isArray(replies) || replies.length !== commands.length) {
    throw new ProtocolError(`Unexpected reply to EXEC: expected ${commands.length} results`);
  }
  for (let i = 0; i < replies.length; i++) {
    const r = replies[i];
    if (r instanceof ReplyError) r.command = commandName(commands[i] as Command);
  }
  return replies;
}

/**
 * Run a batch on a lent connection: `client.withConnection((conn) => runBatch(conn, cmds, { atomic: true }))`.
 * This is the way to WATCH: WATCH, read, then an atomic runBatch on the same
 * connection; it rejects with WatchError when a watched key changed.
 */
export async function runBatch(conn: DedicatedConnection, commands: readonly Command[], options?: BatchOptions): Promise<BatchResult[]> {
  validateBatch(commands);
  const perCommand: CommandOptions = { returnBuffers: options?.returnBuffers, timeoutMs: options?.timeoutMs, signal: options?.signal };
  if (options?.atomic !== true) {
    const settled = await Promise.allSettled(commands.map((c) => conn.command(c, perCommand)));
    return settled.map(toResult);
  }
  const queued: CommandOptions = { timeoutMs: options.timeoutMs, signal: options.signal };
  const all = [conn.command(MULTI, queued), ...commands.map((c) => conn.command(c, queued)), conn.command(EXEC, perCommand)];
  return atomicResults(commands, await Promise.allSettled(all));
}
