// The simulated server's side of RESP, written from the protocol description
// and sharing no code with src/protocol (nor with test/support), so a codec
// bug cannot hide in both the client and the model it is checked against.
//
// CommandReader: incremental parser for what clients send (arrays of bulk
// strings: `*N\r\n$len\r\n<bytes>\r\n...`), fed in any split. Arguments come
// out as latin1 strings (byte-exact). Reply builders: RESP2 replies as bytes.

export class RespSyntaxError extends Error {
  override name = "RespSyntaxError";
}

export class CommandReader {
  private buf: Buffer = Buffer.alloc(0);
  private failed = false;

  feed(chunk: Buffer): void {
    if (this.failed) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Bytes fed and not yet parsed into a command. */
  get buffered(): number {
    return this.buf.length;
  }

  /** The next complete command, undefined when more bytes are needed; throws RespSyntaxError on garbage. */
  next(): string[] | undefined {
    if (this.failed || this.buf.length === 0) return undefined;
    const buf = this.buf;
    let pos = 0;
    const line = (): string | undefined => {
      const end = buf.indexOf("\r\n", pos, "latin1");
      if (end === -1) return undefined;
      const text = buf.toString("latin1", pos, end);
      pos = end + 2;
      return text;
    };
    const header = line();
    if (header === undefined) return undefined;
    if (header[0] !== "*") return this.fail(`expected an array, got ${JSON.stringify(header.slice(0, 20))}`);
    const count = Number(header.slice(1));
    if (!Number.isInteger(count) || count < 1 || count > 1024) return this.fail(`bad array length ${header}`);
    const args: string[] = [];
    for (let i = 0; i < count; i++) {
      const h = line();
      if (h === undefined) return undefined;
      if (h[0] !== "$") return this.fail(`expected a bulk string, got ${JSON.stringify(h.slice(0, 20))}`);
      const len = Number(h.slice(1));
      if (!Number.isInteger(len) || len < 0 || len > 1 << 20) return this.fail(`bad bulk length ${h}`);
      if (buf.length < pos + len + 2) return undefined;
      if (buf[pos + len] !== 0x0d || buf[pos + len + 1] !== 0x0a) return this.fail("bulk string not terminated by CRLF");
      args.push(buf.toString("latin1", pos, pos + len));
      pos += len + 2;
    }
    this.buf = buf.subarray(pos);
    return args;
  }

  private fail(why: string): never {
    this.failed = true;
    throw new RespSyntaxError(why);
  }
}

/** RESP2 replies; the RESP3 forms the model needs are in resp3. */
export const reply = {
  simple: (s: string): Buffer => Buffer.from(`+${s}\r\n`, "latin1"),
  error: (s: string): Buffer => Buffer.from(`-${s}\r\n`, "latin1"),
  int: (n: number): Buffer => Buffer.from(`:${n}\r\n`, "latin1"),
  bulk: (s: string | null): Buffer => (s === null ? Buffer.from("$-1\r\n", "latin1") : Buffer.from(`$${Buffer.byteLength(s, "latin1")}\r\n${s}\r\n`, "latin1")),
  array: (items: readonly Buffer[] | null): Buffer =>
    items === null ? Buffer.from("*-1\r\n", "latin1") : Buffer.concat([Buffer.from(`*${items.length}\r\n`, "latin1"), ...items]),
};

/** What differs in RESP3 (after HELLO 3): null, push frames, maps. */
export const resp3 = {
  null: (): Buffer => Buffer.from("_\r\n", "latin1"),
  push: (items: readonly Buffer[]): Buffer => Buffer.concat([Buffer.from(`>${items.length}\r\n`, "latin1"), ...items]),
  map: (pairs: readonly [Buffer, Buffer][]): Buffer => Buffer.concat([Buffer.from(`%${pairs.length}\r\n`, "latin1"), ...pairs.flat()]),
};
