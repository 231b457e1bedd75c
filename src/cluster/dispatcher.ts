// Sending one command to its node, and what to do when the answer says it
// did not run there. MOVED patches the slot at once and resends to the new
// owner; ASK sends ASKING and the command back to back to the target;
// TRYAGAIN and CLUSTERDOWN wait a backoff and resend. All within the
// command's deadline and at most maxRedirections times. A command answered
// MOVED/ASK/TRYAGAIN/CLUSTERDOWN did not run, so resending it is safe even
// for a write.
//
// After a node is lost: commands still queued (never written) at a node that
// left the topology (a failed master, replaced by its replica) are failed by
// that node client's close() with maybeExecuted false, and sent again to the
// slot's new owner. Commands written to a node that died: writes reject with
// maybeExecuted true; a read is retried once in its whole journey (with
// retryReadOnly), here, at the slot's owner once a refresh has found it. The
// node clients do not retry reads themselves (node-registry.ts): their retry
// plus ours would run a read up to twice per resend.
import { commandName, semantics } from "../commands.js";
import type { BatchResult } from "../batch.js";
import { ClientClosedError, ConnectionError, QueueFullError, RedisError, ReplyError, TimeoutError } from "../errors.js";
import type { Reply } from "../protocol/decode.js";
import type { Command } from "../protocol/encode.js";
import type { CommandOptions } from "../request.js";
import type { DedicatedConnection } from "../transport.js";
import type { ClusterContext } from "./context.js";
import { slotNotServed } from "./errors.js";
import { newJourney, nextWaitMs, remainingOptions, spendRedirection, totalTimeoutMs, type Journey } from "./journey.js";
import type { NodeEntry } from "./node-registry.js";
import { parseRedirect, type Address } from "./topology.js";

/** Lets the next command (or MULTI block) run on a node importing its slot. */
export const ASKING: Command = ["ASKING"];
/** Connection failures that say the node is gone (not: offline queue disabled, bad credentials). */
const LOST = new Set(["connect-failed", "socket-closed", "reconnect-exhausted"]);
const noop = (): void => undefined;

/** A command on its way; its deadline counts from `started`, across every resend. */
export interface Outgoing {
  readonly args: Command;
  readonly options: CommandOptions | undefined;
  readonly slot: number | undefined;
  readonly started: number;
}

export class Dispatcher {
  constructor(private readonly ctx: ClusterContext) {}

  /**
   * Send to `target` (a redirection's node) or else to the slot's node.
   * `journey` is set once the command is under way (redirected, or it waited
   * for the first topology): from then on it runs on what is left of its
   * deadline.
   */
  send(cmd: Outgoing, target: Address | undefined, asking: boolean, journey: Journey | undefined): Promise<Reply> {
    if (this.ctx.isClosed()) return Promise.reject(new ClientClosedError());
    const entry = target !== undefined ? this.ctx.nodes.at(target, "master") : this.ctx.router.route(cmd.slot, cmd.args);
    if (entry === undefined) {
      return this.retryLater(cmd, journey ?? newJourney(), slotNotServed(cmd.slot, commandName(cmd.args)), true);
    }
    let opts = cmd.options;
    if (journey !== undefined) {
      try {
        opts = remainingOptions(cmd.args, cmd.options, cmd.started, this.ctx.options.resolved.commandTimeoutMs);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const sent = asking ? sendAsking(entry, cmd.args, opts) : entry.client.command(cmd.args, opts);
    return sent.catch((err: unknown) => this.onFailure(err, entry, cmd, journey ?? newJourney(), journey !== undefined));
  }

  /** `entry` failed the command with `err`: send it again when it did not run (or is a read), else reject. */
  onFailure(err: unknown, entry: NodeEntry, cmd: Outgoing, journey: Journey, resent: boolean): Promise<Reply> {
    const { counters, options } = this.ctx;
    if (this.ctx.isClosed() || !(err instanceof RedisError)) return Promise.reject(err);
    if (err instanceof ReplyError) {
      switch (err.code) {
        case "MOVED":
        case "ASK": {
          const r = parseRedirect(err.message, entry.host);
          if (r === undefined) return Promise.reject(err);
          const limit = spendRedirection(journey, options.maxRedirections, commandName(cmd.args), err);
          if (limit !== undefined) return Promise.reject(limit);
          const moved = err.code === "MOVED";
          if (moved) {
            counters.moved++;
            this.ctx.router.moveSlot(r.slot, r.to);
            this.ctx.refresher.inBackground();
          } else {
            counters.ask++;
          }
          this.ctx.emit("redirect", { kind: moved ? "moved" : "ask", slot: r.slot, from: entry.address, to: r.to });
          return this.send(cmd, r.to, !moved, journey);
        }
        case "TRYAGAIN":
          counters.tryAgain++;
          return this.retryLater(cmd, journey, err, false);
        case "CLUSTERDOWN":
          counters.clusterDown++;
          return this.retryLater(cmd, journey, err, true);
        default:
          return Promise.reject(err);
      }
    }
    if (!err.maybeExecuted) {
      if (err instanceof ClientClosedError) {
        // Its node left the topology (a refresh closed the client) before
        // the command was written: send it to the slot's new owner now.
        counters.rerouted++;
        const limit = spendRedirection(journey, options.maxRedirections, commandName(cmd.args), err);
        if (limit !== undefined) return Promise.reject(limit);
        return this.send(cmd, undefined, false, journey);
      }
      if (err instanceof ConnectionError && LOST.has(err.reason)) {
        // The node could not be reached (pooled: the next dial failed). A
        // refresh may name another owner; wait a little and route again.
        counters.rerouted++;
        return this.retryLater(cmd, journey, err, true);
      }
    } else if (
      (err instanceof ClientClosedError || (err instanceof ConnectionError && LOST.has(err.reason))) &&
      semantics(cmd.args).readOnly &&
      options.resolved.retryReadOnly &&
      !journey.readRetried
    ) {
      // A read written to a node that died: running it again is harmless,
      // once, so it goes to the slot's owner once a refresh has found it.
      // Writes keep maybeExecuted; so does a read that was retried already.
      journey.readRetried = true;
      counters.rerouted++;
      return this.retryLater(cmd, journey, err, true);
    }
    if (resent && err instanceof TimeoutError) {
      // A resend ran on what was left of the deadline: report the whole of it.
      return Promise.reject(new TimeoutError(err.command, totalTimeoutMs(cmd.options, options.resolved.commandTimeoutMs), err.maybeExecuted));
    }
    return Promise.reject(err);
  }

  /** Wait a backoff (within the deadline), then route the command again. */
  private retryLater(cmd: Outgoing, journey: Journey, cause: RedisError, refresh: boolean): Promise<Reply> {
    const name = commandName(cmd.args);
    const limit = spendRedirection(journey, this.ctx.options.maxRedirections, name, cause);
    if (limit !== undefined) return Promise.reject(limit);
    const delayMs = nextWaitMs(journey);
    const total = totalTimeoutMs(cmd.options, this.ctx.options.resolved.commandTimeoutMs);
    // A read retried after it may have run (its connection died) keeps saying
    // so, whatever ends its retry; a redirection reply says it did not run.
    const mayHaveRun = journey.readRetried || (!(cause instanceof ReplyError) && cause.maybeExecuted);
    if (total > 0 && Date.now() - cmd.started + delayMs >= total) return Promise.reject(new TimeoutError(name, total, mayHaveRun));
    if (this.ctx.sleeps.full) return Promise.reject(mayHaveRun ? cause : new QueueFullError("offline", this.ctx.sleeps.limit));
    if (refresh) this.ctx.refresher.inBackground();
    return this.ctx.sleeps.sleep(delayMs, cmd.options?.signal, name).then(() => this.send(cmd, undefined, false, journey));
  }
}

/** ASKING and the command, written back to back on one connection of the target. */
function sendAsking(entry: NodeEntry, args: Command, options: CommandOptions | undefined): Promise<Reply> {
  if (semantics(args).effect === "blocks") {
    // A blocking command leaves the shared pipe for a connection of its
    // own; ASKING must precede it there.
    return entry.client.withConnection((conn: DedicatedConnection) => {
      // ASKING carries the deadline and signal of the command it serves.
      const asking = conn.command(ASKING, { timeoutMs: options?.timeoutMs, signal: options?.signal });
      const reply = conn.command(args, options);
      asking.catch(noop);
      return reply;
    });
  }
  // Client.batch (not atomic) queues both in one synchronous step: on the
  // pipelined transport they leave in the same write with nothing between
  // them; on the pooled one they share one lent socket.
  return entry.client
    .batch([ASKING, args], { returnBuffers: options?.returnBuffers, timeoutMs: options?.timeoutMs, signal: options?.signal })
    .then((results) => {
      const r = results[1] as BatchResult;
      if (r instanceof RedisError) throw r;
      return r;
    });
}
