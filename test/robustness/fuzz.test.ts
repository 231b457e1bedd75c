// fast-check fuzz of the client's receive path, end to end over a socket:
//   - garbage bytes (not RESP): a ProtocolError surfaces (the in-flight
//     command rejects with a ConnectionError caused by it, the client emits
//     'error'), nothing escapes, the client reconnects and serves again;
//   - arbitrary bytes then a close: the command settles once with a typed
//     outcome, nothing escapes, the client serves again;
//   - valid replies cut at random boundaries, or one byte per read through the
//     fault proxy's split, decode exactly as the replies that were sent.
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConnectionError, ProtocolError, RedisError, ReplyError, createClient, type Client, type Reply } from "../../src/index.js";
import { goodServer, startFakeServer, type Behaviour, type FakeConnection, type FakeServer } from "../support/fake-server.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { writeReplies, type WireReply } from "../support/resp-writer.js";
import { delay, eventually, fuzzRuns, rejection, settle, transports, trapEscapes } from "./support.js";

const escaped = trapEscapes();
const RUNS = fuzzRuns(60);

/** One fake server for the file; each fast-check run says what its next connections do. */
let fake: FakeServer;
let plan: (index: number) => Behaviour = () => goodServer();
const clients: Client[] = [];

beforeAll(async () => {
  fake = await startFakeServer((index) => plan(index));
});
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
  expect(escaped).toEqual([]);
});
afterAll(async () => {
  await fake.close();
});

/** From the next connection on: the first one does `bad`, later ones are good. */
function nextConnectionDoes(bad: Behaviour): void {
  const base = fake.connections.length;
  const good = goodServer();
  plan = (index) => (index === base ? bad : good);
}

// Bytes that cannot start a reply: RESP2's types and RESP3's (the decoder accepts both on every connection).
const TYPE_BYTES = new Set([...Buffer.from("+-:$*_,#!=(%~|>")]);
const notAType = fc.integer({ min: 0, max: 255 }).filter((b) => !TYPE_BYTES.has(b));
const garbage = fc.tuple(notAType, fc.uint8Array({ maxLength: 200 })).map(([first, rest]) => Buffer.concat([Buffer.from([first]), rest]));

// ---------------------------------------------------------------------------
// Replies: what a server sends, and what the client must decode it to.

const lineText = fc.string({ unit: "grapheme", maxLength: 20 }).filter((s) => !/[\r\n]/.test(s));
const leaf: fc.Arbitrary<WireReply> = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "grapheme-ascii", maxLength: 10 }).map((s) => `a\r\nb${s}\r\n`),
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  fc.maxSafeInteger(),
  fc.constant(null),
  lineText.map((simple) => ({ simple })),
  lineText.map((s) => ({ error: `ERR ${s}` })),
  fc.constant({ nullArray: true as const }),
);
const { reply: wireReply } = fc.letrec<{ reply: WireReply }>((tie) => ({
  reply: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, fc.array(tie("reply"), { maxLength: 4 })),
}));

type Expected = { resolves: unknown } | { rejects: string };

/** What the client decodes a reply to (bulk strings as UTF-8 text, nested errors as { error }). */
function decoded(w: WireReply): unknown {
  if (w === null) return null;
  if (typeof w === "string" || typeof w === "number") return w;
  if (Buffer.isBuffer(w)) return w.toString("utf8");
  if (Array.isArray(w)) return (w as readonly WireReply[]).map(decoded);
  const r = w as { simple?: string; error?: string; nullArray?: true };
  if (r.simple !== undefined) return r.simple;
  if (r.error !== undefined) return { error: r.error };
  return null;
}

function expectedOutcome(w: WireReply): Expected {
  if (typeof w === "object" && w !== null && !Array.isArray(w) && !Buffer.isBuffer(w) && "error" in w) return { rejects: w.error };
  return { resolves: decoded(w) };
}

function normalise(r: Reply): unknown {
  if (r instanceof ReplyError) return { error: r.message };
  if (Array.isArray(r)) return r.map(normalise);
  return r;
}

/**
 * A server that answers `GET r<i>` with replies[i]. Replies owed are written
 * on the next event-loop turn, all together, cut at `cuts` into pieces, one
 * piece per turn: a pipelined client (all commands in one write) gets cuts
 * across reply boundaries, a pooled one (one command per socket at a time)
 * gets each reply cut.
 */
function scriptedServer(replies: readonly WireReply[], cuts: readonly number[]): Behaviour {
  let owed: Buffer[] = [];
  let flushing = false;
  const flush = async (conn: FakeConnection): Promise<void> => {
    await new Promise((r) => setImmediate(r));
    const bytes = Buffer.concat(owed);
    owed = [];
    flushing = false;
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    let at = 0;
    for (const p of [...points, bytes.length]) {
      if (p <= at) continue;
      conn.write(bytes.subarray(at, p));
      at = p;
      await new Promise((r) => setImmediate(r));
    }
  };
  return {
    onCommand(conn: FakeConnection, args: string[]) {
      const i = Number((args[1] ?? "").slice(1));
      owed.push(writeReplies([replies[i] as WireReply]));
      if (!flushing) {
        flushing = true;
        void flush(conn);
      }
    },
  };
}

describe.each(transports)("fuzz (%s)", (transport) => {
  function client(port: number): { c: Client; errors: unknown[] } {
    const c = createClient({
      port,
      transport,
      reconnect: { initialDelayMs: 1, maxDelayMs: 5 },
      commandTimeoutMs: 5000,
      pool: { max: 1 },
    });
    const errors: unknown[] = [];
    c.on("error", (e) => errors.push(e));
    clients.push(c);
    return { c, errors };
  }

  it("garbage reply bytes: ProtocolError (command and 'error' event), a reconnect, and the client serves again", async () => {
    await fc.assert(
      fc.asyncProperty(garbage, async (bytes) => {
        nextConnectionDoes({ onCommand: (conn) => conn.write(bytes) });
        const before = fake.connections.length;
        const { c, errors } = client(fake.port);
        try {
          const err = rejection(await settle(c.command(["SET", "k", "v"])));
          expect(err).toBeInstanceOf(ConnectionError);
          expect((err as ConnectionError).maybeExecuted).toBe(true);
          expect((err as ConnectionError).cause).toBeInstanceOf(ProtocolError);
          // The 'error' event tells of it too (besides, pooled: the dial it disproved).
          expect(errors.some((e) => e instanceof ProtocolError)).toBe(true);
          for (const e of errors) expect(e).toBeInstanceOf(RedisError);
          expect(await eventually(c, ["PING"])).toBe("PONG");
          expect(fake.connections.length).toBeGreaterThanOrEqual(before + 2);
        } finally {
          c.destroy();
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("arbitrary bytes, then close: one typed outcome, nothing escapes, the client serves again", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        nextConnectionDoes({ onCommand: (conn) => conn.end(Buffer.from(bytes)) });
        const { c, errors } = client(fake.port);
        try {
          const r = await settle(c.command(["SET", "k", "v"]));
          if (!r.ok) {
            expect(r.error).toBeInstanceOf(RedisError);
            if (r.error instanceof ConnectionError) expect(r.error.maybeExecuted).toBe(true);
            else expect(r.error).toBeInstanceOf(ReplyError);
          }
          for (const e of errors) expect(e).toBeInstanceOf(RedisError);
          expect(await eventually(c, ["PING"])).toBe("PONG");
        } finally {
          c.destroy();
        }
      }),
      { numRuns: RUNS },
    );
  });

  async function checkDecodes(c: Client, replies: readonly WireReply[]): Promise<void> {
    const results = await Promise.all(replies.map((_, i) => settle(c.command(["GET", `r${i}`]))));
    results.forEach((r, i) => {
      const want = expectedOutcome(replies[i] as WireReply);
      if ("rejects" in want) {
        const err = rejection(r);
        expect(err).toBeInstanceOf(ReplyError);
        expect((err as ReplyError).message).toBe(want.rejects);
      } else {
        if (!r.ok) throw r.error;
        expect(normalise(r.value)).toEqual(want.resolves);
      }
    });
  }

  it("valid replies cut at random boundaries decode the same", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(wireReply, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 30 }), async (replies, cuts) => {
        const script = scriptedServer(replies, cuts);
        plan = () => script;
        const { c } = client(fake.port);
        try {
          await checkDecodes(c, replies);
        } finally {
          c.destroy();
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("valid replies one byte per read (fault proxy split) decode the same", async () => {
    const proxy: FaultProxy = await startFaultProxy({ target: { port: fake.port } });
    proxy.setFault({ type: "split" });
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(wireReply, { minLength: 1, maxLength: 6 }), async (replies) => {
          const script = scriptedServer(replies, []);
          plan = () => script;
          const { c } = client(proxy.port);
          try {
            await checkDecodes(c, replies);
          } finally {
            c.destroy();
          }
        }),
        { numRuns: Math.ceil(RUNS / 2) },
      );
    } finally {
      await proxy.close();
    }
    await delay(0);
  });
});

describe("FUZZ_RUNS", () => {
  it("falls back to the default when unset or empty, and refuses 0 or anything not a positive integer", () => {
    expect(fuzzRuns(60, undefined)).toBe(60);
    expect(fuzzRuns(60, "")).toBe(60);
    expect(fuzzRuns(60, "  ")).toBe(60);
    expect(fuzzRuns(60, "500")).toBe(500);
    for (const bad of ["0", "-3", "1.5", "abc", "1e3", "Infinity", "0x10"]) {
      expect(() => fuzzRuns(60, bad), bad).toThrow(/^FUZZ_RUNS must be a positive integer/);
    }
  });
});
