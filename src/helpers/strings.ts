// String commands: GET/SET and friends, counters, MGET/MSET.
import { ProtocolError } from "../errors.js";
import type { Arg } from "../protocol/encode.js";
import { checkKeys, type KeySet } from "../option-keys.js";
import { call, CommandsBase, flatKeys, type EventMapOf, type OneOrMany, type RedisKey, type RedisValue } from "./base.js";
import { toInt, toOk, parseScore, toStr, toStrOrNull, toStrOrNullArray } from "./replies.js";

/**
 * SET options, named as in the Redis docs. At most one of EX, PX, EXAT, PXAT,
 * KEEPTTL; at most one of NX, XX. Conflicts throw a TypeError before sending.
 */
export interface SetOptions {
  /** Expire after this many seconds (a positive integer). */
  EX?: number;
  /** Expire after this many milliseconds (a positive integer). */
  PX?: number;
  /** Expire at this Unix time, in seconds. */
  EXAT?: number;
  /** Expire at this Unix time, in milliseconds. */
  PXAT?: number;
  /** Keep the key's current time to live. */
  KEEPTTL?: boolean;
  /** Only set if the key does not exist (the reply is null otherwise). */
  NX?: boolean;
  /** Only set if the key exists (the reply is null otherwise). */
  XX?: boolean;
  /** Return the old value (or null) instead of "OK". */
  GET?: boolean;
}

/** GETEX options: at most one. */
export interface GetExOptions {
  EX?: number;
  PX?: number;
  EXAT?: number;
  PXAT?: number;
  /** Remove the time to live. */
  PERSIST?: boolean;
}

const EXPIRY_FIELDS = ["EX", "PX", "EXAT", "PXAT"] as const;
const SET_KEYS: KeySet<SetOptions> = { EX: true, PX: true, EXAT: true, PXAT: true, KEEPTTL: true, NX: true, XX: true, GET: true };
const GETEX_KEYS: KeySet<GetExOptions> = { EX: true, PX: true, EXAT: true, PXAT: true, PERSIST: true };

function expiryArgs(command: string, options: SetOptions & GetExOptions, flags: readonly ("KEEPTTL" | "PERSIST")[]): Arg[] {
  const out: Arg[] = [];
  const chosen: string[] = [];
  for (const name of EXPIRY_FIELDS) {
    const v = options[name];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      throw new TypeError(`${command} option ${name} must be a positive integer, got ${String(v)}`);
    }
    chosen.push(name);
    out.push(name, v);
  }
  for (const flag of flags) {
    if (options[flag] === true) {
      chosen.push(flag);
      out.push(flag);
    }
  }
  if (chosen.length > 1) throw new TypeError(`${command} options ${chosen.join(" and ")} cannot be combined: choose one`);
  return out;
}

/** The arguments of SET after key and value (exported for tests and batch users). */
export function setArgs(options: SetOptions | undefined): Arg[] {
  if (options === undefined) return [];
  checkKeys("set(key, value, options)", options, SET_KEYS);
  const out = expiryArgs("SET", options, ["KEEPTTL"]);
  if (options.NX === true && options.XX === true) throw new TypeError("SET options NX and XX cannot be combined: choose one");
  if (options.NX === true) out.push("NX");
  if (options.XX === true) out.push("XX");
  if (options.GET === true) out.push("GET");
  return out;
}

export abstract class StringCommands<Events extends EventMapOf<Events>> extends CommandsBase<Events> {
  /** GET: the value, or null for a missing key. */
  get(key: RedisKey): Promise<string | null> {
    return call(this, ["GET", key], toStrOrNull);
  }

  /** GET with the value as raw bytes. */
  getBuffer(key: RedisKey): Promise<Buffer | null> {
    return this.command(["GET", key], { returnBuffers: true }).then((r) => {
      if (r === null || Buffer.isBuffer(r)) return r;
      throw new ProtocolError("Unexpected reply to GET: not a bulk string");
    });
  }

  /** SET with GET: the old value, or null. */
  set(key: RedisKey, value: RedisValue, options: SetOptions & { GET: true }): Promise<string | null>;
  /** SET without NX/XX/GET always answers "OK". */
  set(key: RedisKey, value: RedisValue, options?: SetOptions & { NX?: false; XX?: false; GET?: false }): Promise<"OK">;
  /** SET NX / XX: "OK", or null when the condition was not met. */
  set(key: RedisKey, value: RedisValue, options: SetOptions & { GET?: false }): Promise<"OK" | null>;
  set(key: RedisKey, value: RedisValue, options?: SetOptions): Promise<string | null>;
  set(key: RedisKey, value: RedisValue, options?: SetOptions): Promise<string | null> {
    let extra: Arg[];
    try {
      extra = setArgs(options);
    } catch (err) {
      return Promise.reject(err);
    }
    return call(this, ["SET", key, value, ...extra], toStrOrNull);
  }

  /** GETDEL: the value (the key is deleted), or null. */
  getdel(key: RedisKey): Promise<string | null> {
    return call(this, ["GETDEL", key], toStrOrNull);
  }

  /** GETEX: the value, setting or removing its time to live; null for a missing key. */
  getex(key: RedisKey, options?: GetExOptions): Promise<string | null> {
    let extra: Arg[];
    try {
      if (options !== undefined) checkKeys("getex(key, options)", options, GETEX_KEYS);
      extra = options === undefined ? [] : expiryArgs("GETEX", options, ["PERSIST"]);
    } catch (err) {
      return Promise.reject(err);
    }
    return call(this, ["GETEX", key, ...extra], toStrOrNull);
  }

  incr(key: RedisKey): Promise<number> {
    return call(this, ["INCR", key], toInt);
  }

  incrby(key: RedisKey, increment: number | bigint): Promise<number> {
    return call(this, ["INCRBY", key, increment], toInt);
  }

  /** INCRBYFLOAT: the new value, parsed from Redis' text. */
  incrbyfloat(key: RedisKey, increment: number): Promise<number> {
    return call(this, ["INCRBYFLOAT", key, increment], parseScore);
  }

  decr(key: RedisKey): Promise<number> {
    return call(this, ["DECR", key], toInt);
  }

  decrby(key: RedisKey, decrement: number | bigint): Promise<number> {
    return call(this, ["DECRBY", key, decrement], toInt);
  }

  /** MGET: one value (or null) per key, in order. Keys as arguments or as one array: mget("a", "b") or mget(["a", "b"]). */
  mget(...keys: OneOrMany<RedisKey>[]): Promise<(string | null)[]> {
    return call(this, ["MGET", ...flatKeys(keys)], toStrOrNullArray);
  }

  /** MSET from an object or from [key, value] pairs. */
  mset(entries: Record<string, RedisValue> | Iterable<readonly [RedisKey, RedisValue]>): Promise<"OK"> {
    const args: Arg[] = ["MSET"];
    if (isPairs(entries)) for (const [k, v] of entries) args.push(k, v);
    else for (const k of Object.keys(entries)) args.push(k, entries[k] as RedisValue);
    return call(this, args, toOk);
  }

  /** ECHO */
  echo(message: string): Promise<string> {
    return call(this, ["ECHO", message], toStr);
  }

  /** PING: "PONG", or the message echoed back. */
  ping(): Promise<"PONG">;
  ping(message: string): Promise<string>;
  ping(message?: string): Promise<string> {
    return call(this, message === undefined ? ["PING"] : ["PING", message], toStr);
  }
}

function isPairs(x: object): x is Iterable<readonly [RedisKey, RedisValue]> {
  return Symbol.iterator in x;
}
