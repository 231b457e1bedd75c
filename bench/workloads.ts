// The workloads: one fixed, precomputed list of raw command arrays each, fed
// identically to every client (op i sends commands[i % length]), plus the
// reply each command must get, used to verify warm-up replies.
//
// Writes never change what a read expects: SET and SET EX write the value the
// key was preloaded with, so every GET's expected reply holds all run long.
// Seeded, so every run and every client sees the same sequence.
import { prng } from "../test/support/seeded.js";
import { coldKey, HOT_KEYS, WRITE_EVERY } from "./cached.js";

export const WORKLOAD_NAMES = ["get", "set", "mget10", "get100k", "mix", "cached"] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

export type RawCommand = string[];

export interface Workload {
  name: WorkloadName;
  /** Human label for tables and charts. */
  label: string;
  commands: RawCommand[];
  /** The exact reply commands[i] must get (string, null or array of them). */
  expected: Expected[];
  /** The measurement goes on from where the warm-up stopped in the list (instead of from its start). */
  continueAfterWarmup?: boolean;
  /** Writes another client makes meanwhile, one per WRITE_EVERY ops (the cached workload). */
  writes?: RawCommand[];
}

export type Expected = string | null | Expected[];

export const KEY_COUNT = 10_000;
const COMMANDS_PER_WORKLOAD = 4_096;
export const BIG_KEY = "bench:big";
export const BIG_BYTES = 100 * 1024;

export function key(i: number): string {
  return "bench:k:" + i;
}

/** 16 ASCII bytes, distinct per key. */
export function smallValue(i: number): string {
  return "v" + String(i).padStart(15, "0");
}

/** 100 KiB of printable ASCII (so a UTF-8 string reply compares byte for byte). */
export function bigValue(): string {
  const rnd = prng(42);
  const chars = new Array<string>(BIG_BYTES);
  for (let i = 0; i < BIG_BYTES; i++) chars[i] = String.fromCharCode(33 + Math.floor(rnd() * 94));
  return chars.join("");
}

/** Commands that put every key a workload reads in place. */
export function preloadCommands(big: string): RawCommand[] {
  const out: RawCommand[] = [];
  for (let i = 0; i < KEY_COUNT; i++) out.push(["SET", key(i), smallValue(i)]);
  out.push(["SET", BIG_KEY, big]);
  return out;
}

/** Commands that delete every key the bench writes (for a REDIS_URL server that is not ours). */
export function cleanupCommands(verifyKeys: readonly string[]): RawCommand[] {
  const out: RawCommand[] = [];
  for (let i = 0; i < KEY_COUNT; i += 1000) {
    const del = ["DEL"];
    for (let j = i; j < Math.min(KEY_COUNT, i + 1000); j++) del.push(key(j));
    out.push(del);
  }
  out.push(["DEL", BIG_KEY, "bench:verify:missing", ...verifyKeys]);
  return out;
}

export function buildWorkloads(names: readonly WorkloadName[], big: string): Workload[] {
  return names.map((name) => buildWorkload(name, big));
}

function buildWorkload(name: WorkloadName, big: string): Workload {
  if (name === "cached") return buildCached();
  const rnd = prng(WORKLOAD_NAMES.indexOf(name) + 1);
  const pick = (): number => Math.floor(rnd() * KEY_COUNT);
  const commands: RawCommand[] = [];
  const expected: Expected[] = [];
  for (let i = 0; i < COMMANDS_PER_WORKLOAD; i++) {
    switch (name) {
      case "get": {
        const k = pick();
        commands.push(["GET", key(k)]);
        expected.push(smallValue(k));
        break;
      }
      case "set": {
        const k = pick();
        commands.push(["SET", key(k), smallValue(k)]);
        expected.push("OK");
        break;
      }
      case "mget10": {
        const first = Math.floor(rnd() * (KEY_COUNT - 10));
        const cmd = ["MGET"];
        const values: Expected[] = [];
        for (let j = 0; j < 10; j++) {
          cmd.push(key(first + j));
          values.push(smallValue(first + j));
        }
        commands.push(cmd);
        expected.push(values);
        break;
      }
      case "get100k":
        commands.push(["GET", BIG_KEY]);
        expected.push(big);
        break;
      case "mix": {
        const k = pick();
        if (rnd() < 0.1) {
          commands.push(["SET", key(k), smallValue(k), "EX", "3600"]);
          expected.push("OK");
        } else {
          commands.push(["GET", key(k)]);
          expected.push(smallValue(k));
        }
        break;
      }
    }
  }
  return { name, label: WORKLOAD_LABELS[name], commands, expected };
}

export const WORKLOAD_LABELS: Record<WorkloadName, string> = {
  get: "GET 16 B",
  set: "SET 16 B",
  mget10: "MGET 10",
  get100k: "GET 100 KiB",
  mix: "mix 90/10",
  cached: "cached GET ~90% hits",
};

/** Ops in the cached workload's list: more than any step runs, so no cold key is read twice in a step. */
export const CACHED_COMMANDS = 1 << 17;

/**
 * The "cached" workload (see bench/cached.ts): GETs, 92% of HOT_KEYS hot
 * keys and 8% of a cold key read once; `writes` are the hot keys the writer
 * sets, one per 99 GETs.
 */
function buildCached(): Workload {
  const rnd = prng(WORKLOAD_NAMES.indexOf("cached") + 1);
  const commands: RawCommand[] = [];
  const expected: Expected[] = [];
  const writes: RawCommand[] = [];
  let cold = 0;
  for (let i = 0; i < CACHED_COMMANDS; i++) {
    const k = Math.floor(rnd() * HOT_KEYS);
    if (rnd() < 0.92) {
      commands.push(["GET", key(k)]);
      expected.push(smallValue(k));
    } else {
      commands.push(["GET", coldKey(cold++)]);
      expected.push(null);
    }
    if (i % WRITE_EVERY === 0) {
      const w = Math.floor(rnd() * HOT_KEYS);
      writes.push(["SET", key(w), smallValue(w)]);
    }
  }
  return { name: "cached", label: WORKLOAD_LABELS.cached, commands, expected, continueAfterWarmup: true, writes };
}

/** Does a client's reply equal the expected one exactly? Buffers are compared as UTF-8 text. */
export function replyMatches(reply: unknown, expected: Expected): boolean {
  if (expected === null) return reply === null;
  if (typeof expected === "string") {
    if (typeof reply === "string") return reply === expected;
    if (Buffer.isBuffer(reply)) return reply.length === Buffer.byteLength(expected) && reply.toString("utf8") === expected;
    return false;
  }
  if (!Array.isArray(reply) || reply.length !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (!replyMatches(reply[i], expected[i]!)) return false;
  return true;
}

/** A short description of a reply for failure messages. */
export function describeReply(reply: unknown): string {
  if (reply === null || reply === undefined) return String(reply);
  if (typeof reply === "string") return reply.length > 40 ? `string(${reply.length}) ${JSON.stringify(reply.slice(0, 24))}…` : JSON.stringify(reply);
  if (Buffer.isBuffer(reply)) return `Buffer(${reply.length})`;
  if (Array.isArray(reply)) return `array(${reply.length})`;
  if (reply instanceof Error) return `${reply.name}: ${reply.message}`;
  return typeof reply;
}
