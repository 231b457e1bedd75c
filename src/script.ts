// Lua scripts: client.script(source) returns a callable that sends EVALSHA
// (the script's SHA1, computed here, so the body is not resent every call)
// and falls back to EVAL, which runs and caches the body, when the server
// answers NOSCRIPT: the first call, after SCRIPT FLUSH, after a restart
// emptied the cache, or on another node. EVAL is never tried for any other
// error, so a script that fails is not run twice.
import { createHash } from "node:crypto";
import { ReplyError } from "./errors.js";
import type { Reply } from "./protocol/decode.js";
import type { Arg, Command } from "./protocol/encode.js";
import type { CommandOptions } from "./request.js";

export interface Script {
  /** Run the script: EVALSHA, then EVAL on NOSCRIPT. Keys become KEYS[i], args ARGV[i]. */
  (keys?: readonly Arg[], args?: readonly Arg[], options?: CommandOptions): Promise<Reply>;
  /** Hex SHA1 of the source, as Redis computes it. */
  readonly sha1: string;
  readonly source: string;
}

export interface ScriptSender {
  command(args: Command, options?: CommandOptions): Promise<Reply>;
}

export function sha1Hex(source: string): string {
  return createHash("sha1").update(source, "utf8").digest("hex");
}

export function createScript(sender: ScriptSender, source: string): Script {
  if (typeof source !== "string" || source.length === 0) throw new TypeError("script(source): source must be a non-empty string");
  const sha1 = sha1Hex(source);
  const run = (keys: readonly Arg[] = [], args: readonly Arg[] = [], options?: CommandOptions): Promise<Reply> => {
    const tail: Arg[] = [keys.length, ...keys, ...args];
    return sender.command(["EVALSHA", sha1, ...tail], options).catch((err: unknown) => {
      if (err instanceof ReplyError && err.code === "NOSCRIPT") return sender.command(["EVAL", source, ...tail], options);
      throw err;
    });
  };
  Object.defineProperties(run, {
    sha1: { value: sha1, enumerable: true },
    source: { value: source, enumerable: true },
  });
  return run as Script;
}
