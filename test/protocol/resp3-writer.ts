// A test-side RESP3 writer and the decoded values to expect, sharing no code
// with src/protocol: the tests build wire bytes and expected replies from
// the same description, never from the decoder under test.
//
// Expected values follow the representation documented at the top of
// src/protocol/resp-decoder.ts ("compat" and "native"); nested errors are
// given as plain { name, message, code } records (compare with plain()).

/** One RESP3 value to put on the wire. */
export type R3 =
  | { t: "simple"; s: string }
  | { t: "error"; s: string }
  | { t: "int"; n: bigint }
  | { t: "bulk"; b: string | Buffer }
  | { t: "nullBulk" } // RESP2 $-1
  | { t: "nullArray" } // RESP2 *-1
  | { t: "null" } // RESP3 _
  | { t: "bool"; v: boolean }
  | { t: "double"; text: string } // as on the wire: "3.14", "inf", "-inf", "nan", "1e+100"
  | { t: "bignum"; text: string }
  | { t: "blobError"; s: string }
  | { t: "verbatim"; format: string; text: string }
  | { t: "array"; items: R3[] }
  | { t: "map"; entries: [R3, R3][] }
  | { t: "set"; items: R3[] }
  | { t: "push"; items: R3[] }
  | { t: "attr"; entries: [R3, R3][]; value: R3 }; // an attribute, then the value it annotates

function lineSafe(text: string): string {
  if (/[\r\n]/.test(text)) throw new TypeError(`a RESP line cannot hold CR or LF: ${JSON.stringify(text)}`);
  return text;
}

function blob(prefix: string, body: Buffer, out: Buffer[]): void {
  out.push(Buffer.from(`${prefix}${body.length}\r\n`), body, Buffer.from("\r\n"));
}

function writeInto(v: R3, out: Buffer[]): void {
  switch (v.t) {
    case "simple":
      out.push(Buffer.from(`+${lineSafe(v.s)}\r\n`, "utf8"));
      return;
    case "error":
      out.push(Buffer.from(`-${lineSafe(v.s)}\r\n`, "utf8"));
      return;
    case "int":
      out.push(Buffer.from(`:${v.n.toString()}\r\n`));
      return;
    case "bulk":
      blob("$", typeof v.b === "string" ? Buffer.from(v.b, "utf8") : v.b, out);
      return;
    case "nullBulk":
      out.push(Buffer.from("$-1\r\n"));
      return;
    case "nullArray":
      out.push(Buffer.from("*-1\r\n"));
      return;
    case "null":
      out.push(Buffer.from("_\r\n"));
      return;
    case "bool":
      out.push(Buffer.from(v.v ? "#t\r\n" : "#f\r\n"));
      return;
    case "double":
      out.push(Buffer.from(`,${lineSafe(v.text)}\r\n`));
      return;
    case "bignum":
      out.push(Buffer.from(`(${lineSafe(v.text)}\r\n`));
      return;
    case "blobError":
      blob("!", Buffer.from(v.s, "utf8"), out);
      return;
    case "verbatim":
      if (Buffer.byteLength(v.format) !== 3) throw new TypeError("a verbatim format is three bytes");
      blob("=", Buffer.from(`${v.format}:${v.text}`, "utf8"), out);
      return;
    case "array":
    case "set":
    case "push":
      out.push(Buffer.from(`${v.t === "array" ? "*" : v.t === "set" ? "~" : ">"}${v.items.length}\r\n`));
      for (const item of v.items) writeInto(item, out);
      return;
    case "map":
      out.push(Buffer.from(`%${v.entries.length}\r\n`));
      for (const [k, x] of v.entries) {
        writeInto(k, out);
        writeInto(x, out);
      }
      return;
    case "attr":
      out.push(Buffer.from(`|${v.entries.length}\r\n`));
      for (const [k, x] of v.entries) {
        writeInto(k, out);
        writeInto(x, out);
      }
      writeInto(v.value, out);
      return;
  }
}

/** The RESP3 bytes of values, back to back. */
export function writeR3(...values: R3[]): Buffer {
  const out: Buffer[] = [];
  for (const v of values) writeInto(v, out);
  return Buffer.concat(out);
}

export interface Expect {
  mode: "compat" | "native";
  buffers: boolean;
  integers?: "number" | "bigint" | "string";
}

export interface PlainError {
  name: "ReplyError";
  message: string;
  code: string;
}

function errorOf(message: string): PlainError {
  const space = message.indexOf(" ");
  return { name: "ReplyError", message, code: space === -1 ? message : message.slice(0, space) };
}

function integer(n: bigint, how: Expect): unknown {
  const mode = how.integers ?? "number";
  if (mode === "string") return n.toString();
  if (mode === "bigint") return n;
  return n >= -(2n ** 53n - 1n) && n <= 2n ** 53n - 1n ? Number(n) : n;
}

/** Text the way the decoder gives it: a Buffer when asked for (and not a native key / member), else a string. */
function text(s: string | Buffer, buffers: boolean): string | Buffer {
  if (buffers) return typeof s === "string" ? Buffer.from(s, "utf8") : s;
  return typeof s === "string" ? s : s.toString("utf8");
}

function double(textOnWire: string): number {
  if (textOnWire === "inf" || textOnWire === "+inf") return Infinity;
  if (textOnWire === "-inf") return -Infinity;
  if (textOnWire === "nan" || textOnWire === "-nan") return NaN;
  return Number(textOnWire);
}

/**
 * The decoded value to expect for v inside a reply (not a top-level error or
 * push: see expectedEvent). `key`: v is a native map's key or set's member.
 */
export function expected(v: R3, how: Expect, key = false): unknown {
  const native = how.mode === "native";
  const buffers = how.buffers && !(native && key);
  switch (v.t) {
    case "simple":
      return text(v.s, buffers);
    case "error":
    case "blobError":
      return errorOf(v.s);
    case "int":
      return integer(v.n, how);
    case "bulk":
      return text(v.b, buffers);
    case "nullBulk":
    case "nullArray":
    case "null":
      return null;
    case "bool":
      return native ? v.v : integer(v.v ? 1n : 0n, how);
    case "double":
      return native ? double(v.text) : text(v.text, buffers);
    case "bignum":
      return native ? BigInt(v.text) : text(v.text, buffers);
    case "verbatim":
      return text(v.text, buffers);
    case "array":
    case "push":
      return v.items.map((x) => expected(x, how));
    case "set":
      return native ? new Set(v.items.map((x) => expected(x, how, true))) : v.items.map((x) => expected(x, how));
    case "map":
      if (native) return new Map(v.entries.map(([k, x]) => [expected(k, how, true), expected(x, how)]));
      return v.entries.flatMap(([k, x]) => [expected(k, how), expected(x, how)]);
    case "attr":
      return expected(v.value, how, key);
  }
}

/** What a handler sees for a top-level value: { reply }, { error } (onErrorReply) or { push } (onPush). */
export function expectedEvent(v: R3, how: Expect): unknown {
  if (v.t === "attr") return expectedEvent(v.value, how);
  if (v.t === "error" || v.t === "blobError") return { error: errorOf(v.s) };
  if (v.t === "push") return { push: v.items.map((x) => expected(x, how)) };
  return { reply: expected(v, how) };
}
