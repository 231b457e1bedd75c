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
  const k = typeof key === "string" || Buffer.isBuffer(key) ? key : String(key);
  // Redis hashes the whole key when its first "{" is followed at once by "}".
  // cluster-key-slot 1.1.2 skips that empty tag and takes the text up to the
  // next "}" instead ("foo{}{bar}" would hash "{bar"), so that rare case is
  // hashed here.
  if (typeof k === "string") {
    const open = k.indexOf("{");
    if (open !== -1 && k.charCodeAt(open + 1) === 0x7d) return crc16(Buffer.from(k)) % SLOT_COUNT;
  } else {
    const open = k.indexOf(0x7b);
    if (open !== -1 && k[open + 1] === 0x7d) return crc16(k) % SLOT_COUNT;
  }
  return calculateSlot(k);
}

let table: Uint16Array | undefined;

/** CRC16-XMODEM (polynomial 0x1021), Redis' key hash. */
function crc16(bytes: Buffer): number {
  if (table === undefined) {
    table = new Uint16Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i << 8;
      for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
      table[i] = c;
    }
  }
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ (table[((crc >> 8) ^ b) & 0xff] as number);
  return crc;
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
