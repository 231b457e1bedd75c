// RESP request encoding. A command is an array of string | Buffer | number |
// bigint. All-text commands (the common case) encode to one JS string, which
// the sender can concatenate with its neighbours and hand to socket.write()
// once: a single UTF-8 encode per flush, no per-argument Buffer. A command
// holding a Buffer encodes to one Buffer so binary data is never re-encoded.

import { commandName } from "../commands.js";

export type Arg = string | Buffer | number | bigint;
export type Command = readonly Arg[];

/** Wire form of one command: a string (UTF-8 on write) or raw bytes. */
export type Encoded = string | Buffer;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return String(value);
  return typeof value === "object" ? "an object" : typeof value;
}


function badArgument(args: Command, index: number, value: unknown): TypeError {
  return new TypeError(
    `Invalid argument ${index} of ${commandName(args)}: got ${describe(value)}; ` +
      "arguments must be strings, Buffers, finite numbers or bigints",
  );
}

/** Throws a TypeError naming the command and argument index for anything that cannot be sent. */
export function validateCommand(args: unknown): asserts args is Command {
  if (!Array.isArray(args) || args.length === 0) {
    throw new TypeError("A command must be a non-empty array, such as [\"GET\", \"key\"]");
  }
  for (let i = 0; i < args.length; i++) {
    const a: unknown = args[i];
    if (typeof a === "string" || typeof a === "bigint" || Buffer.isBuffer(a)) continue;
    if (typeof a === "number" && Number.isFinite(a)) continue;
    throw badArgument(args as Command, i, a);
  }
}

/**
 * Encode a command, validating as it goes so the common all-text case makes a
 * single pass. Returns a string when every argument is text or a number,
 * otherwise a Buffer. Throws a TypeError (naming the command and the argument
 * index) before anything could be written.
 */
export function encodeCommand(args: Command): Encoded {
  if (!Array.isArray(args) || args.length === 0) validateCommand(args);
  let out = "*" + args.length + "\r\n";
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (typeof a === "string") {
      out += "$" + Buffer.byteLength(a) + "\r\n" + a + "\r\n";
    } else if ((typeof a === "number" && Number.isFinite(a)) || typeof a === "bigint") {
      const s = String(a);
      out += "$" + s.length + "\r\n" + s + "\r\n";
    } else {
      validateCommand(args);
      return encodeWithBuffers(args);
    }
  }
  return out;
}

function encodeWithBuffers(args: Command): Buffer {
  const parts: Buffer[] = [];
  let text = "*" + args.length + "\r\n";
  for (const a of args) {
    if (Buffer.isBuffer(a)) {
      parts.push(Buffer.from(text + "$" + a.length + "\r\n"), a);
      text = "\r\n";
    } else {
      const s = typeof a === "string" ? a : String(a);
      text += "$" + Buffer.byteLength(s) + "\r\n" + s + "\r\n";
    }
  }
  parts.push(Buffer.from(text));
  return Buffer.concat(parts);
}

