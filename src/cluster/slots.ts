// Key slots: CRC16 of the key or of its {hash tag}, modulo 16384, computed by
// cluster-key-slot (maintained; ioredis and node-redis use it). Key positions
// come from the command metadata (src/commands.ts).
import calculateSlot from "cluster-key-slot";
import { keyIndexes } from "../commands.js";
import type { Arg, Command } from "../protocol/encode.js";
import { CrossSlotError } from "../errors.js";
import { commandName } from "../commands.js";

export const SLOT_COUNT = 16384;

/** The hash slot of one key. */
export function keySlot(key: Arg): number {
  return calculateSlot(typeof key === "string" || Buffer.isBuffer(key) ? key : String(key));
}

/**
 * The one slot every key of `args` hashes to; undefined for a command with no
 * key (it may go to any master). Throws CrossSlotError, before anything is
 * sent, when the keys span slots.
 */
export function commandSlot(args: Command): number | undefined {
  const idx = keyIndexes(args);
  let slot: number | undefined;
  let others: number[] | undefined;
  for (const i of idx) {
    if (i >= args.length) continue;
    const s = keySlot(args[i] as Arg);
    if (slot === undefined) slot = s;
    else if (s !== slot && !(others ??= [slot]).includes(s)) others.push(s);
  }
  if (others !== undefined) throw new CrossSlotError(commandName(args), others);
  return slot;
}

/** Group positions by slot, first-seen order: `groupBySlot(keys)` -> [[slot, [i, j, ...]], ...]. */
export function groupBySlot(keys: readonly Arg[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < keys.length; i++) {
    const s = keySlot(keys[i] as Arg);
    const g = groups.get(s);
    if (g === undefined) groups.set(s, [i]);
    else g.push(i);
  }
  return groups;
}
