// Key space commands: delete, exist, expire.
import { call, flatKeys, type EventMapOf, type OneOrMany, type RedisKey } from "./base.js";
import { toBool, toInt } from "./replies.js";
import { StringCommands } from "./strings.js";

/** EXPIRE / PEXPIRE condition (Redis 7): only set when the key has no TTL (NX), has one (XX), or it grows (GT) / shrinks (LT). */
export type ExpireCondition = "NX" | "XX" | "GT" | "LT";

export abstract class KeyCommands<Events extends EventMapOf<Events>> extends StringCommands<Events> {
  /** DEL: how many of the keys existed. Keys as arguments or as one array (as for every multi-key helper). */
  del(...keys: OneOrMany<RedisKey>[]): Promise<number> {
    return call(this, ["DEL", ...flatKeys(keys)], toInt);
  }

  /** UNLINK: like DEL, memory reclaimed in the background. */
  unlink(...keys: OneOrMany<RedisKey>[]): Promise<number> {
    return call(this, ["UNLINK", ...flatKeys(keys)], toInt);
  }

  /** EXISTS: how many of the keys exist (a key named twice counts twice). */
  exists(...keys: OneOrMany<RedisKey>[]): Promise<number> {
    return call(this, ["EXISTS", ...flatKeys(keys)], toInt);
  }

  /** EXPIRE: true when the timeout was set (false: no such key, or the condition failed). */
  expire(key: RedisKey, seconds: number, condition?: ExpireCondition): Promise<boolean> {
    return call(this, condition === undefined ? ["EXPIRE", key, seconds] : ["EXPIRE", key, seconds, condition], toBool);
  }

  /** PEXPIRE: as expire(), in milliseconds. */
  pexpire(key: RedisKey, milliseconds: number, condition?: ExpireCondition): Promise<boolean> {
    return call(this, condition === undefined ? ["PEXPIRE", key, milliseconds] : ["PEXPIRE", key, milliseconds, condition], toBool);
  }

  /** TTL in seconds; -1 when the key has no expiry, -2 when it does not exist. */
  ttl(key: RedisKey): Promise<number> {
    return call(this, ["TTL", key], toInt);
  }

  /** PTTL in milliseconds; -1 when the key has no expiry, -2 when it does not exist. */
  pttl(key: RedisKey): Promise<number> {
    return call(this, ["PTTL", key], toInt);
  }

  /** PERSIST: true when a timeout was removed. */
  persist(key: RedisKey): Promise<boolean> {
    return call(this, ["PERSIST", key], toBool);
  }
}
