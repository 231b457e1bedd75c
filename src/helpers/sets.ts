// Set commands.
import { call, flatKeys, type EventMapOf, type OneOrMany, type RedisKey, type RedisValue } from "./base.js";
import { ListCommands } from "./lists.js";
import { toBool, toInt, toStrArray } from "./replies.js";

export abstract class SetCommands<Events extends EventMapOf<Events>> extends ListCommands<Events> {
  /** SADD: how many members were new. */
  sadd(key: RedisKey, ...members: OneOrMany<RedisValue>[]): Promise<number> {
    return call(this, ["SADD", key, ...flatKeys(members)], toInt);
  }

  /** SREM: how many members were removed. */
  srem(key: RedisKey, ...members: OneOrMany<RedisValue>[]): Promise<number> {
    return call(this, ["SREM", key, ...flatKeys(members)], toInt);
  }

  /** SMEMBERS, in no particular order. */
  smembers(key: RedisKey): Promise<string[]> {
    return call(this, ["SMEMBERS", key], toStrArray);
  }

  sismember(key: RedisKey, member: RedisValue): Promise<boolean> {
    return call(this, ["SISMEMBER", key, member], toBool);
  }

  scard(key: RedisKey): Promise<number> {
    return call(this, ["SCARD", key], toInt);
  }
}
