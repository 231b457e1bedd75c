// Replies that do not change with the protocol. In "compat" mode the decoder
// already turns RESP3's types into RESP2's (maps flattened, sets as arrays,
// doubles as strings, booleans as 1/0), which is what RESP2 sends for most
// commands. A few commands differ in structure, not type: RESP3 nests
// member/score pairs where RESP2 sends them flat, and XREAD's stream map is a
// list of [stream, entries] pairs in RESP2, not a flat list. This table puts
// those back in RESP2's shape, per command, so typed helpers, batches and the
// README's examples return the same values on both protocols.
import type { Arg, Command } from "./encode.js";
import type { Reply } from "./decode.js";

/** How a command's RESP3 compat reply differs from RESP2's. */
export type Resp2Shape =
  /** [[a, b], [c, d]] -> [a, b, c, d] (member/score or field/value pairs), when `flag` is among the arguments (or always). */
  | { kind: "flatten-pairs"; flag: string | undefined }
  /** A flattened map [k1, v1, k2, v2] -> [[k1, v1], [k2, v2]] (XREAD's streams). */
  | { kind: "pairs" };

const WITHSCORES: Resp2Shape = { kind: "flatten-pairs", flag: "WITHSCORES" };

const SHAPES: Record<string, Resp2Shape> = {
  zrange: WITHSCORES,
  zrangebyscore: WITHSCORES,
  zrevrange: WITHSCORES,
  zrevrangebyscore: WITHSCORES,
  zunion: WITHSCORES,
  zinter: WITHSCORES,
  zdiff: WITHSCORES,
  zrandmember: WITHSCORES,
  hrandfield: { kind: "flatten-pairs", flag: "WITHVALUES" },
  // With a count RESP3 nests the pairs; without one both send [member, score].
  zpopmin: { kind: "flatten-pairs", flag: undefined },
  zpopmax: { kind: "flatten-pairs", flag: undefined },
  xread: { kind: "pairs" },
  xreadgroup: { kind: "pairs" },
};

/** The shape fix a command needs on RESP3, if any (looked up once per command name). */
export function resp2Shape(lowerName: string): Resp2Shape | undefined {
  return SHAPES[lowerName];
}

function text(a: Arg | undefined): string {
  return a === undefined ? "" : Buffer.isBuffer(a) ? a.toString("latin1") : String(a);
}

/** `reply` (RESP3, compat mode) in the shape RESP2 gives `args`. */
export function toResp2Shape(shape: Resp2Shape, args: Command, reply: Reply): Reply {
  if (!Array.isArray(reply)) return reply;
  if (shape.kind === "pairs") {
    const out: Reply[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([reply[i] as Reply, reply[i + 1] as Reply]);
    return out;
  }
  if (shape.flag !== undefined && !args.some((a, i) => i > 0 && text(a).toUpperCase() === shape.flag)) return reply;
  if (!reply.every((r) => Array.isArray(r))) return reply;
  return (reply as Reply[][]).flat();
}

/** EXEC's results (RESP3, compat mode), each in the shape RESP2 gives its queued command. */
export function execToResp2Shape(queued: readonly { args: Command; sem: { resp3: Resp2Shape | undefined } }[], reply: Reply): Reply {
  if (!Array.isArray(reply)) return reply;
  return reply.map((r, i) => {
    const q = queued[i];
    return q?.sem.resp3 === undefined ? r : toResp2Shape(q.sem.resp3, q.args, r);
  });
}
