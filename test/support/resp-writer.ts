// A test-side RESP2 writer, sharing no code with src/protocol: replies (what
// a server would send; to feed the Decoder known bytes in property tests and
// fake servers) and commands (what a client sends; for the harness's own
// admin sockets and MONITOR taps). Its reading half is resp-reader.ts.

/** A reply to write. Strings and Buffers become bulk strings. */
export type WireReply =
  | string
  | Buffer
  | number
  | null
  | { simple: string }
  | { error: string }
  | { nullArray: true }
  | readonly WireReply[];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

function lineSafe(kind: string, text: string): string {
  if (/[\r\n]/.test(text)) throw new TypeError(`a RESP ${kind} cannot hold CR or LF: ${JSON.stringify(text)}`);
  return text;
}

function writeInto(value: WireReply, out: Buffer[]): void {
  if (value === null) {
    out.push(Buffer.from("$-1\r\n"));
  } else if (typeof value === "string") {
    const body = Buffer.from(value, "utf8");
    out.push(Buffer.from(`$${body.length}\r\n`), body, Buffer.from("\r\n"));
  } else if (Buffer.isBuffer(value)) {
    out.push(Buffer.from(`$${value.length}\r\n`), value, Buffer.from("\r\n"));
  } else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new TypeError(`a RESP integer must be a safe integer, got ${value}`);
    // String(-0) is "0": the wire never carries a negative zero.
    out.push(Buffer.from(`:${String(value)}\r\n`));
  } else if (Array.isArray(value)) {
    out.push(Buffer.from(`*${value.length}\r\n`));
    for (const element of value as readonly WireReply[]) writeInto(element, out);
  } else if (isRecord(value)) {
    if ("simple" in value && typeof value.simple === "string") {
      out.push(Buffer.from(`+${lineSafe("simple string", value.simple)}\r\n`, "utf8"));
    } else if ("error" in value && typeof value.error === "string") {
      out.push(Buffer.from(`-${lineSafe("error", value.error)}\r\n`, "utf8"));
    } else if ("nullArray" in value && value.nullArray === true) {
      out.push(Buffer.from("*-1\r\n"));
    } else {
      throw new TypeError(`not a reply: ${JSON.stringify(value)}`);
    }
  } else {
    throw new TypeError(`not a reply: ${String(value)}`);
  }
}

/** The RESP2 bytes of one reply. */
export function writeReply(value: WireReply): Buffer {
  const out: Buffer[] = [];
  writeInto(value, out);
  return Buffer.concat(out);
}

/** The RESP2 bytes of several replies, back to back. */
export function writeReplies(values: readonly WireReply[]): Buffer {
  const out: Buffer[] = [];
  for (const value of values) writeInto(value, out);
  return Buffer.concat(out);
}

/** A command argument, as the client takes it. */
export type CommandArg = string | Buffer | number | bigint;

/**
 * The RESP2 bytes of a *command* (what a client sends): an array of bulk
 * strings. Throws a TypeError, before anything is written, for an empty
 * command or an argument that is not a string, Buffer, finite number or bigint.
 */
export function writeCommand(args: readonly CommandArg[]): Buffer {
  if (!Array.isArray(args) || args.length === 0) throw new TypeError("a command must be a non-empty array of arguments");
  const out: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  args.forEach((arg: unknown, i) => {
    let body: Buffer;
    if (Buffer.isBuffer(arg)) body = arg;
    else if (typeof arg === "string") body = Buffer.from(arg, "utf8");
    else if (typeof arg === "bigint" || (typeof arg === "number" && Number.isFinite(arg))) body = Buffer.from(String(arg));
    else throw new TypeError(`argument ${i} of ${String(args[0])} cannot be sent: ${typeof arg === "number" ? String(arg) : typeof arg}`);
    out.push(Buffer.from(`$${body.length}\r\n`), body, Buffer.from("\r\n"));
  });
  return Buffer.concat(out);
}
