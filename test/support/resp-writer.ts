// A test-side RESP2 *reply* writer: what a server would send. Used to feed
// the Decoder known bytes (property tests, fake servers).

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
