// TypedCommands: every typed helper, plus scripts and the SCAN iterators —
// everything that needs nothing but command(). Client extends it; a cluster
// client can too. The helpers are split by data type, one abstract class per
// file, each extending the previous (TypeScript allows one base class):
// strings -> keys -> hashes -> lists -> sets -> sorted sets -> this.
import type { Arg } from "../protocol/encode.js";
import { scanHash, scanKeys, scanSet, scanSortedSet, type KeyScanOptions, type ScanOptions } from "../scan.js";
import { createScript, type Script } from "../script.js";
import type { EventMapOf, RedisKey } from "./base.js";
import type { ScoredMember } from "./replies.js";
import { SortedSetCommands } from "./sorted-sets.js";

export abstract class TypedCommands<Events extends EventMapOf<Events>> extends SortedSetCommands<Events> {
  /**
   * A Lua script as a function: `const incr = client.script(src); await incr(["k"], [5])`.
   * Sends EVALSHA, falling back to EVAL when the server does not have it cached.
   */
  script(source: string): Script {
    return createScript(this, source);
  }

  /** Iterate over keys with SCAN: `for await (const key of client.scan({ match: "user:*" }))`. */
  scan(options?: KeyScanOptions): AsyncGenerator<string, void, undefined> {
    return scanKeys(this, options);
  }

  /** Iterate over a hash's [field, value] pairs with HSCAN. */
  hscan(key: RedisKey, options?: ScanOptions): AsyncGenerator<[field: string, value: string], void, undefined> {
    return scanHash(this, key, options);
  }

  /** Iterate over a set's members with SSCAN. */
  sscan(key: RedisKey, options?: ScanOptions): AsyncGenerator<string, void, undefined> {
    return scanSet(this, key as Arg, options);
  }

  /** Iterate over a sorted set's { member, score } with ZSCAN. */
  zscan(key: RedisKey, options?: ScanOptions): AsyncGenerator<ScoredMember, void, undefined> {
    return scanSortedSet(this, key, options);
  }
}

export type { EventMapOf, RedisKey, RedisValue } from "./base.js";
export type { ScoredMember } from "./replies.js";
export type { SetOptions, GetExOptions } from "./strings.js";
export type { ExpireCondition } from "./keys.js";
export type { ZAddOptions, ZRangeOptions, ZRangeBound, ZMember } from "./sorted-sets.js";
