// The multi-key helpers a cluster client splits by slot (MGET, MSET, DEL,
// EXISTS, UNLINK): one call per slot, in parallel, the replies put back
// together. Keys that share one slot go in a single call, as given. Each
// slot's part is atomic; the whole is not.
import type { RedisKey, RedisValue } from "../helpers/base.js";
import { groupBySlot } from "./slots.js";

export type KeyValue = readonly [RedisKey, RedisValue];

/** MGET: the values in the order of `keys`. */
export function mgetBySlot(keys: RedisKey[], run: (part: RedisKey[]) => Promise<(string | null)[]>): Promise<(string | null)[]> {
  const groups = groupBySlot(keys);
  if (groups.size <= 1) return run(keys);
  const parts = [...groups.values()];
  return Promise.all(parts.map((idx) => run(idx.map((i) => keys[i] as RedisKey)))).then((replies) => {
    const out = new Array<string | null>(keys.length).fill(null);
    replies.forEach((values, p) => (parts[p] as number[]).forEach((i, j) => (out[i] = values[j] ?? null)));
    return out;
  });
}

/** MSET: "OK" once every slot's part is set. */
export function msetBySlot(entries: Record<string, RedisValue> | Iterable<KeyValue>, run: (part: KeyValue[]) => Promise<"OK">): Promise<"OK"> {
  const pairs: KeyValue[] = Symbol.iterator in entries ? [...(entries as Iterable<KeyValue>)] : Object.entries(entries as Record<string, RedisValue>);
  const groups = groupBySlot(pairs.map((p) => p[0]));
  if (groups.size <= 1) return run(pairs);
  return Promise.all([...groups.values()].map((idx) => run(idx.map((i) => pairs[i] as KeyValue)))).then(() => "OK" as const);
}

/** DEL, EXISTS, UNLINK: the sum of the counts. */
export function sumBySlot(keys: RedisKey[], run: (part: RedisKey[]) => Promise<number>): Promise<number> {
  const groups = groupBySlot(keys);
  if (groups.size <= 1) return run(keys);
  return Promise.all([...groups.values()].map((idx) => run(idx.map((i) => keys[i] as RedisKey)))).then((counts) => counts.reduce((a, b) => a + b, 0));
}
