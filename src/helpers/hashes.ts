// Hash commands.
import type { Arg } from "../protocol/encode.js";
import { call, flatKeys, type EventMapOf, type OneOrMany, type RedisKey, type RedisValue } from "./base.js";
import { toInt, toRecord, toStrOrNull, toStrOrNullArray } from "./replies.js";
import { KeyCommands } from "./keys.js";

export abstract class HashCommands<Events extends EventMapOf<Events>> extends KeyCommands<Events> {
  /** HGET: the field's value, or null. */
  hget(key: RedisKey, field: RedisKey): Promise<string | null> {
    return call(this, ["HGET", key, field], toStrOrNull);
  }

  /** HSET one field, or many from an object / [field, value] pairs: how many fields were added (not updated). */
  hset(key: RedisKey, field: RedisKey, value: RedisValue): Promise<number>;
  hset(key: RedisKey, fields: Record<string, RedisValue> | Iterable<readonly [RedisKey, RedisValue]>): Promise<number>;
  hset(
    key: RedisKey,
    fieldOrFields: RedisKey | Record<string, RedisValue> | Iterable<readonly [RedisKey, RedisValue]>,
    value?: RedisValue,
  ): Promise<number> {
    const args: Arg[] = ["HSET", key];
    if (typeof fieldOrFields === "string" || Buffer.isBuffer(fieldOrFields)) {
      if (value === undefined) return Promise.reject(new TypeError("hset(key, field, value): value is missing"));
      args.push(fieldOrFields, value);
    } else if (Symbol.iterator in fieldOrFields) {
      for (const [f, v] of fieldOrFields as Iterable<readonly [RedisKey, RedisValue]>) args.push(f, v);
    } else {
      const obj = fieldOrFields as Record<string, RedisValue>;
      for (const f of Object.keys(obj)) args.push(f, obj[f] as RedisValue);
    }
    if (args.length === 2) return Promise.reject(new TypeError("hset: no fields given"));
    return call(this, args, toInt);
  }

  /** HMGET: one value (or null) per field, in order. */
  hmget(key: RedisKey, ...fields: OneOrMany<RedisKey>[]): Promise<(string | null)[]> {
    return call(this, ["HMGET", key, ...flatKeys(fields)], toStrOrNullArray);
  }

  /** HGETALL as an object ({} for a missing key). */
  hgetall(key: RedisKey): Promise<Record<string, string>> {
    return call(this, ["HGETALL", key], toRecord);
  }

  /** HDEL: how many fields were removed. */
  hdel(key: RedisKey, ...fields: OneOrMany<RedisKey>[]): Promise<number> {
    return call(this, ["HDEL", key, ...flatKeys(fields)], toInt);
  }

  /** HINCRBY: the field's new value. */
  hincrby(key: RedisKey, field: RedisKey, increment: number | bigint): Promise<number> {
    return call(this, ["HINCRBY", key, field, increment], toInt);
  }
}
