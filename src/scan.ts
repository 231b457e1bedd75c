// The SCAN family as async iterators. Each step sends one SCAN-like command
// with the cursor the previous reply gave, yields that batch's items one by
// one, and stops when the server hands back cursor "0". Leaving the loop early
// (break, return, throw) simply sends no further step: SCAN cursors hold no
// server state, so there is nothing to clean up. As Redis documents, an item
// may be yielded more than once, and keys added or removed during the
// iteration may or may not be seen.
import { ProtocolError } from "./errors.js";
import { parseScore, type ScoredMember } from "./helpers/replies.js";
import type { Reply } from "./protocol/decode.js";
import type { Arg, Command } from "./protocol/encode.js";
import { checkKeys, type KeySet } from "./option-keys.js";
import type { CommandOptions } from "./request.js";

export interface ScanOptions {
  /** Glob-style pattern (MATCH). */
  match?: string;
  /** Work per step, a hint to the server (COUNT); default 10 on the server side. */
  count?: number;
}

export interface KeyScanOptions extends ScanOptions {
  /** Only keys of this type (TYPE): "string", "hash", "list", "set", "zset", "stream". */
  type?: string;
}

export interface CommandSender {
  command(args: Command, options?: CommandOptions): Promise<Reply>;
}

const SCAN_KEYS: KeySet<ScanOptions> = { match: true, count: true };
const KEY_SCAN_KEYS: KeySet<KeyScanOptions> = { match: true, count: true, type: true };

/**
 * The MATCH / COUNT / TYPE arguments, checked at the iterator's first step,
 * before anything is sent (so the first next(), and a for-await over it,
 * rejects): an unknown option such as MATCH (node-redis' spelling) is a
 * TypeError rather than a walk over every key, and so is TYPE on HSCAN /
 * SSCAN / ZSCAN, which have none. The cluster's scan() checks the same way.
 */
function optionArgs(where: string, options: KeyScanOptions | undefined, allowed: KeySet<KeyScanOptions> | KeySet<ScanOptions>): Arg[] {
  const out: Arg[] = [];
  if (options === undefined) return out;
  checkKeys(where, options, allowed);
  if (options.match !== undefined) out.push("MATCH", options.match);
  if (options.count !== undefined) {
    if (!Number.isSafeInteger(options.count) || options.count <= 0) {
      throw new TypeError(`SCAN option count must be a positive integer, got ${String(options.count)}`);
    }
    out.push("COUNT", options.count);
  }
  if (options.type !== undefined) out.push("TYPE", options.type);
  return out;
}

/** Raw batches: each step's item array, as the server sent it. */
async function* steps(sender: CommandSender, name: string, key: Arg | undefined, extra: Arg[]): AsyncGenerator<string[], void, undefined> {
  let cursor = "0";
  do {
    const args: Arg[] = key === undefined ? [name, cursor, ...extra] : [name, key, cursor, ...extra];
    const reply = await sender.command(args);
    if (!Array.isArray(reply) || reply.length !== 2 || typeof reply[0] !== "string" || !Array.isArray(reply[1])) {
      throw new ProtocolError(`Unexpected reply to ${name}: expected [cursor, items]`);
    }
    const items = reply[1];
    for (const item of items) if (typeof item !== "string") throw new ProtocolError(`Unexpected item in the reply to ${name}`);
    cursor = reply[0];
    yield items as string[];
  } while (cursor !== "0");
}

/** SCAN: every key (matching MATCH / TYPE). */
export async function* scanKeys(sender: CommandSender, options?: KeyScanOptions): AsyncGenerator<string, void, undefined> {
  const extra = optionArgs("scan(options)", options, KEY_SCAN_KEYS);
  for await (const batch of steps(sender, "SCAN", undefined, extra)) yield* batch;
}

/** SSCAN: every member of a set. */
export async function* scanSet(sender: CommandSender, key: Arg, options?: ScanOptions): AsyncGenerator<string, void, undefined> {
  const extra = optionArgs("sscan(key, options)", options, SCAN_KEYS);
  for await (const batch of steps(sender, "SSCAN", key, extra)) yield* batch;
}

/** HSCAN: every [field, value] of a hash. */
export async function* scanHash(sender: CommandSender, key: Arg, options?: ScanOptions): AsyncGenerator<[field: string, value: string], void, undefined> {
  const extra = optionArgs("hscan(key, options)", options, SCAN_KEYS);
  for await (const batch of steps(sender, "HSCAN", key, extra)) {
    for (let i = 0; i + 1 < batch.length; i += 2) yield [batch[i] as string, batch[i + 1] as string];
  }
}

/** ZSCAN: every { member, score } of a sorted set. */
export async function* scanSortedSet(sender: CommandSender, key: Arg, options?: ScanOptions): AsyncGenerator<ScoredMember, void, undefined> {
  const extra = optionArgs("zscan(key, options)", options, SCAN_KEYS);
  for await (const batch of steps(sender, "ZSCAN", key, extra)) {
    for (let i = 0; i + 1 < batch.length; i += 2) yield { member: batch[i] as string, score: parseScore("ZSCAN", batch[i + 1] as string) };
  }
}
