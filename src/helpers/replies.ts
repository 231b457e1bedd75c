// Narrowing of raw replies for the typed helpers. A reply of the wrong shape
// means the server is not speaking the protocol we expect (a proxy, a module
// overriding a command): we throw a ProtocolError naming the command rather
// than hand the caller a value whose type lies.
//
// Integers: the helpers declared to return a number do so in every
// `integers` mode (a bigint or decimal-string reply is converted), and never
// round one: an integer beyond Number.MAX_SAFE_INTEGER rejects with
// UnsafeIntegerError, which holds the exact value (the command did run).
import { ProtocolError, UnsafeIntegerError } from "../errors.js";
import type { Reply } from "../protocol/decode.js";

function unexpected(command: string, reply: Reply): ProtocolError {
  const kind = reply === null ? "nil" : Array.isArray(reply) ? "an array" : Buffer.isBuffer(reply) ? "a Buffer" : typeof reply;
  return new ProtocolError(`Unexpected reply to ${command}: got ${kind}`);
}

export function toStr(command: string, reply: Reply): string {
  if (typeof reply === "string") return reply;
  throw unexpected(command, reply);
}

export function toStrOrNull(command: string, reply: Reply): string | null {
  if (reply === null || typeof reply === "string") return reply;
  throw unexpected(command, reply);
}


const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const DECIMAL = /^-?\d+$/;

function exactNumber(command: string, value: bigint): number {
  if (value <= MAX_SAFE && value >= -MAX_SAFE) return Number(value);
  throw new UnsafeIntegerError(command, value);
}

/** An integer reply as a number, whatever the `integers` option (a number, a bigint, or its decimal string). */
export function toInt(command: string, reply: Reply): number {
  // The decoder's numbers are always exact (bigger integers come as bigints).
  if (typeof reply === "number") return reply;
  if (typeof reply === "bigint") return exactNumber(command, reply);
  if (typeof reply === "string" && DECIMAL.test(reply)) return exactNumber(command, BigInt(reply));
  throw unexpected(command, reply);
}

export function toBool(command: string, reply: Reply): boolean {
  if (reply === 1 || reply === 0) return reply === 1;
  // integers: "bigint" / "string"
  if (reply === 1n || reply === "1") return true;
  if (reply === 0n || reply === "0") return false;
  throw unexpected(command, reply);
}

/** "OK" as a literal type. */
export function toOk(command: string, reply: Reply): "OK" {
  if (reply === "OK") return reply;
  throw unexpected(command, reply);
}

export function toOkOrNull(command: string, reply: Reply): "OK" | null {
  if (reply === null || reply === "OK") return reply;
  throw unexpected(command, reply);
}

/** Redis formats doubles as text, infinities as "inf" / "-inf". */
export function parseScore(command: string, text: Reply): number {
  if (typeof text !== "string") throw unexpected(command, text);
  switch (text) {
    case "inf":
    case "+inf":
      return Infinity;
    case "-inf":
      return -Infinity;
  }
  const n = Number(text);
  if (Number.isNaN(n)) throw new ProtocolError(`Unexpected reply to ${command}: "${text}" is not a number`);
  return n;
}

export function toScoreOrNull(command: string, reply: Reply): number | null {
  return reply === null ? null : parseScore(command, reply);
}

export function toArray(command: string, reply: Reply): Reply[] {
  if (Array.isArray(reply)) return reply;
  throw unexpected(command, reply);
}

export function toStrArray(command: string, reply: Reply): string[] {
  const arr = toArray(command, reply);
  for (const item of arr) if (typeof item !== "string") throw unexpected(command, item);
  return arr as string[];
}

export function toStrOrNullArray(command: string, reply: Reply): (string | null)[] {
  const arr = toArray(command, reply);
  for (const item of arr) if (item !== null && typeof item !== "string") throw unexpected(command, item);
  return arr as (string | null)[];
}

/** [k1, v1, k2, v2, ...] -> { k1: v1, ... } (own data properties, so "__proto__" is just a field name). */
export function toRecord(command: string, reply: Reply): Record<string, string> {
  const arr = toStrArray(command, reply);
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < arr.length; i += 2) {
    Object.defineProperty(out, arr[i] as string, { value: arr[i + 1], enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export interface ScoredMember {
  member: string;
  score: number;
}

/** [m1, s1, m2, s2, ...] -> [{ member, score }, ...] */
export function toScored(command: string, reply: Reply): ScoredMember[] {
  const arr = toStrArray(command, reply);
  const out: ScoredMember[] = new Array<ScoredMember>(arr.length >> 1);
  for (let i = 0, j = 0; i + 1 < arr.length; i += 2, j++) {
    out[j] = { member: arr[i] as string, score: parseScore(command, arr[i + 1] as string) };
  }
  return out;
}
