// Sorted set commands.
import type { Arg } from "../protocol/encode.js";
import { checkKeys, type KeySet } from "../option-keys.js";
import { call, flatKeys, type EventMapOf, type OneOrMany, type RedisKey, type RedisValue } from "./base.js";
import { parseScore, toInt, toScored, toScoreOrNull, toStrArray, type ScoredMember } from "./replies.js";
import { SetCommands } from "./sets.js";

/** ZADD flags. NX excludes XX, GT and LT; GT excludes LT. */
export interface ZAddOptions {
  /** Only add new members. */
  NX?: boolean;
  /** Only update existing members. */
  XX?: boolean;
  /** Only update when the new score is greater. */
  GT?: boolean;
  /** Only update when the new score is less. */
  LT?: boolean;
  /** Count changed members, not only added ones. */
  CH?: boolean;
}

export interface ZRangeOptions {
  /** Range by score or lexicographically instead of by rank. */
  by?: "SCORE" | "LEX";
  /** Highest first. */
  rev?: boolean;
  /** With `by`: skip `offset` matches, return at most `count`. */
  limit?: { offset: number; count: number };
  /** Return { member, score } objects. */
  withScores?: boolean;
}

/** A bound of ZRANGE: a rank or score, or Redis syntax such as "(1.5", "-inf", "[a", "+". */
export type ZRangeBound = number | string;

/** A member with its score, for zadd(). */
export interface ZMember {
  score: number;
  member: RedisValue;
}

/** Scores as Redis reads them: infinities as "+inf" / "-inf" (the encoder refuses non-finite numbers). */
export function scoreArg(score: number): Arg {
  if (score === Infinity) return "+inf";
  if (score === -Infinity) return "-inf";
  return score;
}

const ZADD_KEYS: KeySet<ZAddOptions> = { NX: true, XX: true, GT: true, LT: true, CH: true };
const ZRANGE_KEYS: KeySet<ZRangeOptions> = { by: true, rev: true, limit: true, withScores: true };
const MEMBER_KEYS: KeySet<ZMember> = { score: true, member: true };
const LIMIT_KEYS: KeySet<NonNullable<ZRangeOptions["limit"]>> = { offset: true, count: true };

function zaddFlags(options: ZAddOptions | undefined): Arg[] {
  if (options === undefined) return [];
  checkKeys("zadd(key, ..., options)", options, ZADD_KEYS);
  const on = (Object.keys(options) as (keyof ZAddOptions)[]).filter((k) => options[k] === true);
  const has = (k: keyof ZAddOptions): boolean => on.includes(k);
  if (has("NX") && (has("XX") || has("GT") || has("LT"))) {
    throw new TypeError(`ZADD option NX cannot be combined with ${on.filter((k) => k === "XX" || k === "GT" || k === "LT").join(", ")}`);
  }
  if (has("GT") && has("LT")) throw new TypeError("ZADD options GT and LT cannot be combined: choose one");
  return (["NX", "XX", "GT", "LT", "CH"] as const).filter(has);
}

export abstract class SortedSetCommands<Events extends EventMapOf<Events>> extends SetCommands<Events> {
  /** ZADD one member: how many members were added (or changed, with CH). */
  zadd(key: RedisKey, score: number, member: RedisValue, options?: ZAddOptions): Promise<number>;
  /** ZADD many, from { score, member } objects or a { member: score } object. */
  zadd(key: RedisKey, members: readonly ZMember[] | Record<string, number>, options?: ZAddOptions): Promise<number>;
  zadd(
    key: RedisKey,
    scoreOrMembers: number | readonly ZMember[] | Record<string, number>,
    memberOrOptions?: RedisValue | ZAddOptions,
    maybeOptions?: ZAddOptions,
  ): Promise<number> {
    const args: Arg[] = ["ZADD", key];
    try {
      if (typeof scoreOrMembers === "number") {
        args.push(...zaddFlags(maybeOptions), scoreArg(scoreOrMembers), memberOrOptions as RedisValue);
      } else {
        args.push(...zaddFlags(memberOrOptions as ZAddOptions | undefined));
        if (Array.isArray(scoreOrMembers)) {
          (scoreOrMembers as readonly ZMember[]).forEach((m, i) => {
            // { score, value } is node-redis' spelling: say so rather than send "undefined".
            checkKeys("zadd(key, members, options)", m, MEMBER_KEYS, `members[${i}].`);
            args.push(scoreArg(m.score), m.member);
          });
        } else {
          const rec = scoreOrMembers as Record<string, number>;
          for (const m of Object.keys(rec)) args.push(scoreArg(rec[m] as number), m);
        }
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return call(this, args, toInt);
  }

  /** ZREM: how many members were removed. */
  zrem(key: RedisKey, ...members: OneOrMany<RedisValue>[]): Promise<number> {
    return call(this, ["ZREM", key, ...flatKeys(members)], toInt);
  }

  /** ZRANGE ... WITHSCORES: members with their scores. */
  zrange(key: RedisKey, start: ZRangeBound, stop: ZRangeBound, options: ZRangeOptions & { withScores: true }): Promise<ScoredMember[]>;
  /** ZRANGE: members only. */
  zrange(key: RedisKey, start: ZRangeBound, stop: ZRangeBound, options?: ZRangeOptions & { withScores?: false }): Promise<string[]>;
  zrange(key: RedisKey, start: ZRangeBound, stop: ZRangeBound, options?: ZRangeOptions): Promise<string[] | ScoredMember[]>;
  zrange(key: RedisKey, start: ZRangeBound, stop: ZRangeBound, options?: ZRangeOptions): Promise<string[] | ScoredMember[]> {
    const args: Arg[] = ["ZRANGE", key, boundArg(start), boundArg(stop)];
    try {
      checkRangeOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    if (options?.by !== undefined) args.push(options.by === "SCORE" ? "BYSCORE" : "BYLEX");
    if (options?.rev === true) args.push("REV");
    if (options?.limit !== undefined) args.push("LIMIT", options.limit.offset, options.limit.count);
    if (options?.withScores === true) {
      args.push("WITHSCORES");
      return call(this, args, toScored);
    }
    return call(this, args, toStrArray);
  }

  /** ZSCORE: the score, or null when the member or key is missing. */
  zscore(key: RedisKey, member: RedisValue): Promise<number | null> {
    return call(this, ["ZSCORE", key, member], toScoreOrNull);
  }

  /** ZINCRBY: the member's new score. */
  zincrby(key: RedisKey, increment: number, member: RedisValue): Promise<number> {
    return call(this, ["ZINCRBY", key, scoreArg(increment), member], parseScore);
  }
}

function checkRangeOptions(options: ZRangeOptions | undefined): void {
  if (options === undefined) return;
  const where = "zrange(key, start, stop, options)";
  checkKeys(where, options, ZRANGE_KEYS);
  if (options.by !== undefined && options.by !== "SCORE" && options.by !== "LEX") {
    throw new TypeError(`${where}: option by must be "SCORE" or "LEX", got ${JSON.stringify(options.by)}`);
  }
  if (options.limit !== undefined) checkKeys(where, options.limit, LIMIT_KEYS, "limit.");
}

function boundArg(b: ZRangeBound): Arg {
  return typeof b === "number" ? scoreArg(b) : b;
}

export type { ScoredMember };
