// Conformance, part 4: the command semantics table walked entry by entry,
// then a property over the whole of it. For every command that changes its
// connection's state: command() refuses it naming a route, the route named
// works, and the connection it ran on never serves another caller in its
// changed state. Then random mixes of plain, state, own-connection and
// blocking commands, with random deadlines and aborts, through command(),
// batch() and withConnection() on both transports: nothing crosses, nothing
// hangs, the shared connections keep their db and reply mode, and close()
// resolves.
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { STATE_COMMANDS, semantics } from "../../src/commands.js";
import { AbortError, ReplyError, TimeoutError, type Client, type Command } from "../../src/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { pollUntil } from "../support/wait.js";
import { fuzzRuns } from "../robustness/support.js";
import { clientFactory, clientList, TRANSPORTS } from "./support.js";

let server: RedisServer;
const clients = clientFactory(() => server);
const RUNS = fuzzRuns(12);

beforeAll(async () => {
  server = await startRedis();
});
afterEach(() => clients.destroyAll());
afterAll(async () => {
  await server.stop();
});

/** One invocation of every "state" entry of the table. */
const EXAMPLES: Record<string, Command> = {
  select: ["SELECT", "1"],
  multi: ["MULTI"],
  exec: ["EXEC"],
  discard: ["DISCARD"],
  watch: ["WATCH", "tbl:w"],
  unwatch: ["UNWATCH"],
  subscribe: ["SUBSCRIBE", "tbl:c"],
  unsubscribe: ["UNSUBSCRIBE"],
  psubscribe: ["PSUBSCRIBE", "tbl:*"],
  punsubscribe: ["PUNSUBSCRIBE"],
  ssubscribe: ["SSUBSCRIBE", "tbl:c"],
  sunsubscribe: ["SUNSUBSCRIBE"],
  monitor: ["MONITOR"],
  sync: ["SYNC"],
  psync: ["PSYNC", "?", "-1"],
  replconf: ["REPLCONF", "listening-port", "1"],
  hello: ["HELLO", "3"],
  auth: ["AUTH", "not-the-password"],
  reset: ["RESET"],
  quit: ["QUIT"],
  readonly: ["READONLY"],
  readwrite: ["READWRITE"],
  asking: ["ASKING"],
  "client|reply": ["CLIENT", "REPLY", "OFF"],
  "client|setname": ["CLIENT", "SETNAME", "changed"],
  "client|setinfo": ["CLIENT", "SETINFO", "LIB-NAME", "changed"],
  "client|tracking": ["CLIENT", "TRACKING", "ON"],
  "client|caching": ["CLIENT", "CACHING", "YES"],
  "client|no-evict": ["CLIENT", "NO-EVICT", "ON"],
  "client|no-touch": ["CLIENT", "NO-TOUCH", "ON"],
};

/** A connection state another caller could notice, read from CLIENT INFO of whichever connection answers. */
function stateOf(clientInfo: string): Record<string, string> {
  const f = Object.fromEntries(clientInfo.trim().split(" ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  return { name: f.name ?? "?", db: f.db ?? "?", flags: f.flags ?? "?", multi: f.multi ?? "?", sub: f.sub ?? "?", psub: f.psub ?? "?" };
}

const CLEAN = (name: string): Record<string, string> => ({ name, db: "0", flags: "N", multi: "-1", sub: "0", psub: "0" });

it("the examples cover every state entry of the table", () => {
  expect(Object.keys(EXAMPLES).sort()).toEqual([...STATE_COMMANDS].sort());
  for (const [entry, example] of Object.entries(EXAMPLES)) expect(semantics(example).effect, entry).toBe("state");
});

describe.each(TRANSPORTS)("%s transport: every state command", (transport) => {
  it.each(Object.keys(EXAMPLES))("%s: refused by command() naming a route; the route works; no caller sees the changed state", async (entry) => {
    const example = EXAMPLES[entry] as Command;
    const sem = semantics(example);
    const name = `tbl-${transport}`;
    const c: Client = clients.make(transport, { clientName: name, pool: { max: 2 } });
    const refused = (await c.command(example).catch((e: unknown) => e)) as TypeError;
    expect(refused).toBeInstanceOf(TypeError);
    expect(refused.message).toContain(String(example[0]).toUpperCase());
    expect(refused.message).toContain(sem.route);

    const ranOn = async (run: Promise<unknown>): Promise<void> => {
      const outcome = await run.then(
        (v) => v,
        (e: unknown) => e,
      );
      if (!sem.lendable) {
        expect(outcome).toBeInstanceOf(TypeError);
        return;
      }
      // Ran: a reply, or the server's own refusal (an unknown subcommand on this server version, cluster mode off).
      expect(outcome).not.toBeInstanceOf(TypeError);
      if (outcome instanceof Error) expect(outcome).toBeInstanceOf(ReplyError);
    };
    // A connection of its own: withConnection(), and a batch that holds the command.
    await ranOn(c.withConnection((conn) => conn.command(example)));
    await ranOn(
      c.batch([example, ["ECHO", "after"]]).then((results) => {
        const first = results[0];
        if (first instanceof Error && !(first instanceof ReplyError)) throw first;
        return results;
      }),
    );
    // The next callers never meet a connection in the changed state (the one that ran it was closed).
    const seen = await Promise.all(Array.from({ length: 4 }, () => c.command(["CLIENT", "INFO"])));
    for (const info of seen) expect(stateOf(String(info))).toEqual(CLEAN(name));
    expect(await Promise.all(Array.from({ length: 6 }, (_, i) => c.command(["ECHO", `e${i}`])))).toEqual(["e0", "e1", "e2", "e3", "e4", "e5"]);
    await c.close();
  });
});

type Op =
  | { kind: "echo"; via: "command" | "batch" | "atomic" | "lent"; timeoutMs: number | undefined; abortAfterMs: number | undefined }
  | { kind: "state"; entry: string; via: "command" | "batch" | "lent" }
  | { kind: "wait"; via: "command" | "batch" }
  | { kind: "block"; timeoutMs: number | undefined };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("echo" as const),
      via: fc.constantFrom("command" as const, "batch" as const, "atomic" as const, "lent" as const),
      timeoutMs: fc.option(fc.constantFrom(1, 5, 50), { nil: undefined }),
      abortAfterMs: fc.option(fc.constantFrom(0, 2, 20), { nil: undefined }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("state" as const), entry: fc.constantFrom(...Object.keys(EXAMPLES)), via: fc.constantFrom("command" as const, "batch" as const, "lent" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("wait" as const), via: fc.constantFrom("command" as const, "batch" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("block" as const), timeoutMs: fc.option(fc.constantFrom(5, 50), { nil: undefined }) }) },
);

describe.each(TRANSPORTS)("%s transport: random mixes from the whole table", (transport) => {
  it("never crosses, never hangs, keeps the shared connections' db and reply mode, and close() resolves", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40 }), async (ops) => {
        const name = `prop-${transport}-${run++}`;
        const c = clients.make(transport, { clientName: name, pool: { max: 3 } });
        const checks = ops.map((op, i) => runOp(c, transport, op, `${name}:${i}`));
        const problems = (await within(5000, Promise.all(checks))).filter((p): p is string => p !== undefined);
        expect(problems).toEqual([]);
        // Whatever ran, the connections other callers share are as configured.
        const tokens = Array.from({ length: 10 }, (_, i) => `${name}:after:${i}`);
        expect(await Promise.all(tokens.map((t) => c.command(["ECHO", t])))).toEqual(tokens);
        for (const info of await Promise.all(Array.from({ length: 3 }, () => c.command(["CLIENT", "INFO"])))) {
          expect(stateOf(String(info))).toEqual(CLEAN(name));
        }
        // Lent connections that ran a state command are closed, not kept.
        await pollUntil("no connection of this client left in a changed state", 3000, async () => {
          const rows = await clientList(server, name);
          return rows.every((r) => r.db === "0" && r.flags === "N" && r.multi === "-1") ? true : undefined;
        });
        await within(3000, c.close());
      }),
      { numRuns: RUNS },
    );
  }, 120_000);
});

function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/** Run one op; resolves with a description of what went wrong, or undefined. */
async function runOp(c: Client, transport: string, op: Op, token: string): Promise<string | undefined> {
  const outcome = <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> =>
    p.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
  switch (op.kind) {
    case "echo": {
      const controller = op.abortAfterMs === undefined ? undefined : new AbortController();
      if (controller !== undefined) setTimeout(() => controller.abort(), op.abortAfterMs);
      const options = { timeoutMs: op.timeoutMs, signal: controller?.signal };
      const r =
        op.via === "command"
          ? await outcome(c.command(["ECHO", token], options))
          : op.via === "lent"
            ? await outcome(c.withConnection((conn) => conn.command(["ECHO", token], options)))
            : await outcome(c.batch([["ECHO", token], ["ECHO", `${token}:2`]], { ...options, atomic: op.via === "atomic" }));
      const expected = op.via === "command" || op.via === "lent" ? token : [token, `${token}:2`];
      if (r.ok) {
        const value = r.value as unknown;
        if (Array.isArray(value) && op.via === "batch") {
          // A plain batch returns each member's error as a value.
          for (const [i, v] of value.entries()) {
            const want = (expected as string[])[i];
            if (v !== want && !(v instanceof TimeoutError || v instanceof AbortError)) return `${token}: batch member ${i} got ${String(v)}`;
          }
          return undefined;
        }
        return JSON.stringify(value) === JSON.stringify(expected) ? undefined : `${token}: got ${JSON.stringify(value)}`;
      }
      const limited = op.timeoutMs !== undefined || controller !== undefined;
      return limited && (r.error instanceof TimeoutError || r.error instanceof AbortError) ? undefined : `${token}: ${String(r.error)}`;
    }
    case "state": {
      const example = EXAMPLES[op.entry] as Command;
      const sem = semantics(example);
      const r =
        op.via === "command"
          ? await outcome(c.command(example))
          : op.via === "lent"
            ? await outcome(c.withConnection((conn) => conn.command(example)))
            : await outcome(c.batch([example, ["ECHO", token]]));
      const refused = !r.ok && r.error instanceof TypeError;
      const shouldRefuse = op.via === "command" || !sem.lendable;
      if (refused !== shouldRefuse) return `${token}: ${op.entry} via ${op.via}: ${refused ? "refused" : "ran"}`;
      if (op.via === "batch" && r.ok) {
        const echoed = (r.value as unknown[])[1];
        // QUIT ends the connection before the ECHO: a connection error; anything else answers it.
        if (op.entry !== "quit" && op.entry !== "multi" && echoed !== token) return `${token}: ECHO after ${op.entry} got ${String(echoed)}`;
      }
      return undefined;
    }
    case "wait": {
      const r = op.via === "command" ? await outcome(c.command(["WAIT", "0", "0"])) : await outcome(c.batch([["SET", token, "1"], ["WAIT", "0", "0"]]));
      if (op.via === "command" && transport === "pooled") return !r.ok && r.error instanceof TypeError ? undefined : `${token}: WAIT on pooled command() not refused`;
      if (!r.ok) return `${token}: WAIT failed: ${String(r.error)}`;
      const value = op.via === "command" ? r.value : (r.value as unknown[])[1];
      return typeof value === "number" ? undefined : `${token}: WAIT answered ${String(value)}`;
    }
    case "block": {
      const r = await outcome(c.command(["BLPOP", token, "0.01"], { timeoutMs: op.timeoutMs }));
      if (r.ok) return r.value === null ? undefined : `${token}: BLPOP got ${String(r.value)}`;
      return op.timeoutMs !== undefined && r.error instanceof TimeoutError ? undefined : `${token}: ${String(r.error)}`;
    }
  }
}
