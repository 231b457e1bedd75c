// batch() on a cluster. Not atomic: split by node, each node's part in one
// round trip, a redirected command redirected alone (as command() would).
// Atomic (MULTI/EXEC): every key in one slot (else CrossSlotError, nothing
// sent), the whole transaction on that slot's master. A redirection means
// nothing ran: MOVED retries it on the new owner at once; ASK (its keys have
// moved to the importing node of a migration) sends it once to the ASK target
// as ASKING, MULTI, the commands, EXEC on one socket, the slot table
// unchanged; TRYAGAIN (its keys split between the two nodes) / CLUSTERDOWN /
// a lost node retry it at the slot's owner after a backoff.
import { checkBatchOptions } from "../option-keys.js";
import { runBatch, toResult, validateBatch, type BatchOptions, type BatchResult } from "../batch.js";
import { ClientClosedError, ConnectionError, QueueFullError, RedisError, ReplyError, TimeoutError } from "../errors.js";
import type { Reply } from "../protocol/decode.js";
import type { Command } from "../protocol/encode.js";
import type { CommandOptions } from "../request.js";
import { refusal } from "../commands.js";
import type { ClusterContext } from "./context.js";
import { ASKING, type Dispatcher } from "./dispatcher.js";
import { CrossSlotError } from "../errors.js";
import { slotNotServed } from "./errors.js";
import { newJourney, nextWaitMs, spendRedirection, totalTimeoutMs } from "./journey.js";
import type { NodeEntry } from "./node-registry.js";
import { commandSlot } from "./slots.js";
import { countRedirect, isRedirect, type RedirectCode } from "./stats.js";
import { parseRedirect, type Address } from "./topology.js";

const noop = (): void => undefined;

export function clusterBatch(ctx: ClusterContext, dispatcher: Dispatcher, commands: readonly Command[], options: BatchOptions | undefined): Promise<BatchResult[]> {
  try {
    checkBatchOptions(options);
    validateBatch(commands);
    // A plain batch is split by slot, keyless commands going to any master: nothing may depend on its connection.
    if (options?.atomic !== true) {
      for (const c of commands) {
        const why = refusal(c, "any-node");
        if (why !== undefined) throw new TypeError(why);
      }
    }
  } catch (err) {
    return Promise.reject(err);
  }
  if (ctx.isClosed()) return Promise.reject(new ClientClosedError());
  const started = Date.now();
  if (options?.atomic === true) return atomicBatch(ctx, commands, options, started);
  if (commands.length === 0) return Promise.resolve([]);
  if (ctx.router.topology === undefined) {
    return ctx.refresher.refresh().then(
      () => splitBatch(ctx, dispatcher, commands, options, started),
      (err: unknown) => commands.map(() => toResult({ status: "rejected", reason: err })),
    );
  }
  return splitBatch(ctx, dispatcher, commands, options, started);
}

async function splitBatch(ctx: ClusterContext, dispatcher: Dispatcher, commands: readonly Command[], options: BatchOptions | undefined, started: number): Promise<BatchResult[]> {
  const perCommand: CommandOptions = { returnBuffers: options?.returnBuffers, timeoutMs: options?.timeoutMs, signal: options?.signal };
  const outcomes = new Array<Promise<Reply>>(commands.length);
  const slots = new Array<number | undefined>(commands.length);
  const groups = new Map<NodeEntry, number[]>();
  for (let i = 0; i < commands.length; i++) {
    const c = commands[i] as Command;
    try {
      slots[i] = commandSlot(c);
    } catch (err) {
      outcomes[i] = settledLater(Promise.reject(err));
      continue;
    }
    const entry = ctx.router.route(slots[i], c);
    if (entry === undefined) {
      outcomes[i] = settledLater(dispatcher.send({ args: c, options: perCommand, slot: slots[i], started }, undefined, false, undefined));
      continue;
    }
    const g = groups.get(entry);
    if (g === undefined) groups.set(entry, [i]);
    else g.push(i);
  }
  const parts: Promise<void>[] = [];
  for (const [entry, idx] of groups) {
    const part = entry.client.batch(
      idx.map((i) => commands[i] as Command),
      options?.returnBuffers === undefined && options?.timeoutMs === undefined && options?.signal === undefined ? undefined : perCommand,
    );
    parts.push(
      part.then((results) => {
        idx.forEach((i, j) => {
          const r = results[j] as BatchResult;
          const cmd = { args: commands[i] as Command, options: perCommand, slot: slots[i], started };
          // An error goes through the same redirection handling as command()'s.
          outcomes[i] = r instanceof RedisError ? settledLater(dispatcher.onFailure(r, entry, cmd, newJourney(), false)) : Promise.resolve(r);
        });
      }),
    );
  }
  await Promise.all(parts);
  return (await Promise.allSettled(outcomes)).map(toResult);
}

/** Why an atomic batch goes round again: `wait` a backoff first, or follow `redirect` at once. */
interface AtomicRetry {
  error: RedisError;
  wait: boolean;
  redirect?: { kind: "moved" | "ask"; slot: number; to: Address };
}

async function atomicBatch(ctx: ClusterContext, commands: readonly Command[], options: BatchOptions, started: number): Promise<BatchResult[]> {
  const all: number[] = [];
  for (const c of commands) {
    const s = commandSlot(c); // a command spanning slots throws CrossSlotError
    if (s !== undefined && !all.includes(s)) all.push(s);
  }
  if (all.length > 1) throw new CrossSlotError("EXEC", all);
  const slot = all[0];
  const journey = newJourney();
  const commandTimeoutMs = ctx.options.resolved.commandTimeoutMs;
  // Where the last redirection sent it (ASK: for this try only), else the slot's owner.
  let target: Address | undefined;
  let asking = false;
  for (;;) {
    if (ctx.isClosed()) throw new ClientClosedError();
    if (ctx.router.topology === undefined) await ctx.refresher.refresh();
    const entry = target !== undefined ? ctx.nodes.at(target, "master") : ctx.router.route(slot, undefined);
    const ask = asking;
    target = undefined;
    asking = false;
    let retry: AtomicRetry;
    if (entry === undefined) {
      retry = { error: slotNotServed(slot, "EXEC"), wait: true };
    } else {
      const total = totalTimeoutMs(options, commandTimeoutMs);
      const left = total > 0 ? total - (Date.now() - started) : 0;
      if (total > 0 && left <= 0) throw new TimeoutError("EXEC", total, false);
      const outcome = await attempt(ctx, entry, commands, total > 0 ? { ...options, timeoutMs: left } : options, ask);
      if (Array.isArray(outcome)) return outcome;
      retry = outcome;
    }
    const limit = spendRedirection(journey, ctx.options.maxRedirections, "EXEC", retry.error);
    if (limit !== undefined) throw limit;
    const redirect = retry.redirect;
    if (redirect !== undefined) {
      if (redirect.kind === "moved") {
        ctx.router.moveSlot(redirect.slot, redirect.to);
        ctx.refresher.inBackground();
      }
      ctx.emit("redirect", { kind: redirect.kind, slot: redirect.slot, from: entry?.address ?? "", to: redirect.to });
      target = redirect.to;
      asking = redirect.kind === "ask";
      continue;
    }
    if (retry.wait) {
      const delayMs = nextWaitMs(journey);
      const total = totalTimeoutMs(options, commandTimeoutMs);
      if (total > 0 && Date.now() - started + delayMs >= total) throw new TimeoutError("EXEC", total, false);
      if (ctx.sleeps.full) throw new QueueFullError("offline", ctx.sleeps.limit);
      ctx.refresher.inBackground();
      await ctx.sleeps.sleep(delayMs, options.signal, "EXEC");
    }
  }
}

/**
 * ASKING, MULTI, the commands, EXEC on one connection lent to this
 * transaction: Redis keeps the ASKING flag through a MULTI block, so the whole
 * transaction runs on the importing node, and the flag ends with EXEC. ASKING
 * carries the batch's deadline and signal.
 */
function askingTransaction(entry: NodeEntry, commands: readonly Command[], options: BatchOptions): Promise<BatchResult[]> {
  return entry.client.withConnection((conn) => {
    conn.command(ASKING, { timeoutMs: options.timeoutMs, signal: options.signal }).catch(noop);
    return runBatch(conn, commands, { ...options, atomic: true });
  });
}

/**
 * One try of the transaction at `entry` (after ASKING on the same socket when
 * `asking`: an ASK sent it there): its results, or why to try again (nothing ran).
 */
async function attempt(
  ctx: ClusterContext,
  entry: NodeEntry,
  commands: readonly Command[],
  options: BatchOptions,
  asking: boolean,
): Promise<BatchResult[] | AtomicRetry> {
  let results: BatchResult[];
  try {
    results = await (asking ? askingTransaction(entry, commands, options) : entry.client.batch(commands, options));
  } catch (err) {
    if (ctx.isClosed() || !(err instanceof RedisError) || err.maybeExecuted) throw err;
    if (!(err instanceof ClientClosedError || err instanceof ConnectionError) || (err instanceof ConnectionError && err.reason === "offline")) throw err;
    ctx.counters.rerouted++;
    return { error: err, wait: !(err instanceof ClientClosedError) };
  }
  // Nothing ran when every result is an error and one is a redirection (the
  // server refused a queued command, or EXEC, and discarded the transaction).
  if (!results.every((r) => r instanceof ReplyError)) return results;
  const redirects = results.filter((r): r is ReplyError & { code: RedirectCode } => isRedirect(r as ReplyError));
  // ASK next to TRYAGAIN: the keys are split between the two nodes, and the
  // ASK target would answer TRYAGAIN too. Any other redirection decides.
  const redirect = redirects.find((r) => r.code !== "ASK") ?? redirects[0];
  if (redirect === undefined) return results;
  let retry: AtomicRetry;
  if (redirect.code === "MOVED" || redirect.code === "ASK") {
    const r = parseRedirect(redirect.message, entry.host);
    if (r === undefined) return results;
    retry = { error: redirect, wait: false, redirect: { kind: redirect.code === "MOVED" ? "moved" : "ask", ...r } };
  } else {
    retry = { error: redirect, wait: true };
  }
  countRedirect(ctx.counters, redirect.code);
  return retry;
}

/** A promise whose rejection is collected later (Promise.allSettled): never reported as unhandled meanwhile. */
function settledLater<T>(p: Promise<T>): Promise<T> {
  p.catch(noop);
  return p;
}
