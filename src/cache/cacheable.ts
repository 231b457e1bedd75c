// Which replies the client-side cache may keep: read-only commands over one
// key whose reply depends only on that key's value (not on the clock, not on
// chance, not on another key). The list is data: a user may narrow it with
// clientCache.commands, never widen it.
//
// Every name here is checked against the command semantics table
// (src/commands.ts) by test/cache/client-cache.test.ts: read-only, plain,
// and its only key at argument 1 (EXISTS counts only with one key: `maxArgs`).
// Left out on purpose: TTL/PTTL (the clock), SRANDMEMBER/HRANDFIELD/
// ZRANDMEMBER (chance), SORT_RO (BY/GET read other keys), MGET and other
// multi-key reads (one entry must depend on one key), OBJECT/MEMORY/DUMP
// (server internals).

export interface CacheableSpec {
  /** Most arguments (name included) the command may have to be cached; undefined: any. */
  readonly maxArgs?: number;
}

export const CACHEABLE_COMMANDS: Readonly<Record<string, CacheableSpec>> = {
  // strings
  get: {},
  getrange: {},
  substr: {},
  strlen: {},
  getbit: {},
  bitcount: {},
  bitpos: {},
  bitfield_ro: {},
  // keys
  exists: { maxArgs: 2 },
  type: {},
  // hashes
  hget: {},
  hgetall: {},
  hmget: {},
  hexists: {},
  hlen: {},
  hstrlen: {},
  hkeys: {},
  hvals: {},
  // sets
  smembers: {},
  sismember: {},
  smismember: {},
  scard: {},
  // sorted sets
  zscore: {},
  zmscore: {},
  zrank: {},
  zrevrank: {},
  zcard: {},
  zcount: {},
  zlexcount: {},
  zrange: {},
  zrangebyscore: {},
  zrangebylex: {},
  zrevrange: {},
  zrevrangebyscore: {},
  zrevrangebylex: {},
  // lists
  lrange: {},
  lindex: {},
  llen: {},
  lpos: {},
  // streams
  xlen: {},
  xrange: {},
  xrevrange: {},
  // geo
  geopos: {},
  geodist: {},
  geohash: {},
};

/**
 * The commands a client caches: every one of the list, or the caller's
 * narrower list (names in any case). Throws a TypeError naming a command the
 * list does not hold.
 */
export function resolveCacheable(names: readonly string[] | undefined): Map<string, CacheableSpec> {
  const out = new Map<string, CacheableSpec>();
  const wanted = names ?? Object.keys(CACHEABLE_COMMANDS);
  if (!Array.isArray(wanted)) throw new TypeError("Option clientCache.commands must be an array of command names");
  for (const n of wanted) {
    if (typeof n !== "string") throw new TypeError("Option clientCache.commands must be an array of command names");
    const lower = n.toLowerCase();
    const spec = Object.hasOwn(CACHEABLE_COMMANDS, lower) ? CACHEABLE_COMMANDS[lower] : undefined;
    if (spec === undefined) {
      throw new TypeError(
        `Option clientCache.commands: ${n.toUpperCase()} cannot be cached (the list can only be narrowed; see CACHEABLE_COMMANDS: ${Object.keys(CACHEABLE_COMMANDS).join(", ")})`,
      );
    }
    // Looked up by the name as the caller writes it: lower, upper and as given.
    out.set(lower, spec);
    out.set(lower.toUpperCase(), spec);
  }
  return out;
}
