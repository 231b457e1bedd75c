// List commands.
import { call, flatKeys, type EventMapOf, type OneOrMany, type RedisKey, type RedisValue } from "./base.js";
import { HashCommands } from "./hashes.js";
import { toInt, toStrArray, toStrOrNull } from "./replies.js";
import type { Reply } from "../protocol/decode.js";

function toStrArrayOrNull(command: string, reply: Reply): string[] | null {
  return reply === null ? null : toStrArray(command, reply);
}

export abstract class ListCommands<Events extends EventMapOf<Events>> extends HashCommands<Events> {
  /** LPUSH: the list's new length. */
  lpush(key: RedisKey, ...values: OneOrMany<RedisValue>[]): Promise<number> {
    return call(this, ["LPUSH", key, ...flatKeys(values)], toInt);
  }

  /** RPUSH: the list's new length. */
  rpush(key: RedisKey, ...values: OneOrMany<RedisValue>[]): Promise<number> {
    return call(this, ["RPUSH", key, ...flatKeys(values)], toInt);
  }

  /** LPOP: the first element, or null when the list is empty or missing. */
  lpop(key: RedisKey): Promise<string | null>;
  /** LPOP with a count: up to `count` elements, or null when the list is missing. */
  lpop(key: RedisKey, count: number): Promise<string[] | null>;
  lpop(key: RedisKey, count?: number): Promise<string | string[] | null> {
    return count === undefined ? call(this, ["LPOP", key], toStrOrNull) : call(this, ["LPOP", key, count], toStrArrayOrNull);
  }

  /** RPOP: the last element, or null. */
  rpop(key: RedisKey): Promise<string | null>;
  /** RPOP with a count: up to `count` elements, or null when the list is missing. */
  rpop(key: RedisKey, count: number): Promise<string[] | null>;
  rpop(key: RedisKey, count?: number): Promise<string | string[] | null> {
    return count === undefined ? call(this, ["RPOP", key], toStrOrNull) : call(this, ["RPOP", key, count], toStrArrayOrNull);
  }

  /** LRANGE (inclusive; negative indexes count from the end). */
  lrange(key: RedisKey, start: number, stop: number): Promise<string[]> {
    return call(this, ["LRANGE", key, start, stop], toStrArray);
  }

  llen(key: RedisKey): Promise<number> {
    return call(this, ["LLEN", key], toInt);
  }
}
