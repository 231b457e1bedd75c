// Decode-only micro-benchmark: redis-parser (the Decoder as it was, copied
// below as LegacyDecoder) against the hand-written RESP2 + RESP3 decoder of
// src/protocol/resp-decoder.ts. No server, no sockets: pre-built replies are
// fed in 64 KiB chunks, the size of a socket read.
//
//   node --expose-gc --import tsx bench/decoder.ts [--runs=N] [--quick] [--only=<workload name part>]
//
// Columns: ns/reply is the time of decoding alone (the consumer reads one
// character of each string reply: see runOnce), min and median of N runs, a
// fresh decoder per run, old and new runs alternating. Wall time, not
// process.cpuUsage(), which also counts the GC's helper threads; gc() runs
// once per workload, not before every run (after a gc() the next runs are
// slower and far noisier). On a shared machine read the min: noise only
// ever adds. Memory and exit are measured in child processes, one per
// decoder, so that one decoder's module-level state cannot disturb the
// other's numbers:
//   retained: heapUsed + external (ArrayBuffers included) after a 32 MiB
//     Buffer reply was decoded and dropped and gc() ran, minus the same
//     before it (right after, and 1 s later);
//   exit: the child decodes that reply, drops it, returns from its main
//     module; the time from there to the child's exit, and the handles
//     still active then (process.getActiveResourcesInfo()).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { ProtocolError, ReplyError } from "../src/errors.js";
import { RespDecoder, type DecoderHandlers, type IntegerMode, type Reply, type ReplyMode } from "../src/protocol/resp-decoder.js";

// ---------------------------------------------------------------------------
// The old decoder: src/protocol/decode.ts before the hand-written decoder
// (redis-parser 3.0.0 with exact integers), verbatim but for its name.

import RedisParser from "redis-parser";

// redis-parser types replies as `any`; this is the one place we narrow them.
type ParserValue = string | number | Buffer | null | Error | ParserValue[];

/** What the getter reads: redis-parser's own state while it parses an integer, and ours. */
interface ParserInternals {
  buffer: Buffer;
  offset: number;
  unsafe: bigint[];
}

/** A redis-parser that keeps the exact value of every integer beyond the safe range (see the top of this file). */
class ExactIntegerParser extends RedisParser {
  /** Exact values of the unsafe integers of the reply being parsed, in parse order. */
  unsafe: bigint[] = [];
  /** exactIntegers()' cursor in `unsafe`. */
  next = 0;

  override reset(): void {
    super.reset();
    this.unsafe = [];
  }
}

Object.defineProperty(ExactIntegerParser.prototype, "optionStringNumbers", {
  get(this: ParserInternals): boolean {
    // The 16th byte is a digit for any integer of 16 digits or more (signed
    // or not); with fewer (|n| < 10^15) it is always safe. That byte may also
    // belong to what follows a short integer: keep() checks. Past the end of
    // the buffer the integer is incomplete: redis-parser will parse it again.
    const buf = this.buffer;
    const i = this.offset + 15;
    if (i < buf.length) {
      const c = buf[i] as number;
      if (c >= 48 && c <= 57) keep(this);
    }
    return false;
  },
  // The base constructor calls setStringNumbers(false).
  set(_: boolean) {},
});

/** Slow path: the integer at parser.offset may have 16 digits or more. */
function keep(parser: ParserInternals): void {
  const buf = parser.buffer;
  const negative = buf[parser.offset] === 45; // '-'
  const start = negative ? parser.offset + 1 : parser.offset;
  // Same end test as redis-parser's: the "\r" must be followed by one more byte.
  const last = buf.length - 1;
  let end = start;
  while (end < last && buf[end] !== 13) end++;
  if (end >= last) return; // incomplete: redis-parser parses it again once more bytes came
  if (end - start < 16) return;
  // RESP integers are 64-bit: 20 digits at most. We read up to 30 exactly:
  // value = high * 10^15 + low, both exact doubles.
  const invalid = (): ProtocolError =>
    new ProtocolError(`Invalid RESP integer from server: ${JSON.stringify(buf.toString("latin1", parser.offset, Math.min(end, parser.offset + 40)))}`);
  if (end - start > 30) throw invalid();
  const split = end - 15;
  let high = 0;
  let low = 0;
  for (let i = start; i < end; i++) {
    const d = (buf[i] as number) - 48;
    if (d < 0 || d > 9) throw invalid();
    if (i < split) high = high * 10 + d;
    else low = low * 10 + d;
  }
  // Number.MAX_SAFE_INTEGER is 9_007199254740991.
  if (high < 9 || (high === 9 && low <= 7199254740991)) return;
  const value = BigInt(high) * 1_000_000_000_000_000n + BigInt(low);
  parser.unsafe.push(negative ? -value : value);
}

/**
 * Swap the unsafe numbers of a complete reply for their exact values (and,
 * for "bigint", the safe ones for bigints), depth first, in parse order.
 */
function exactIntegers(reply: Reply, parser: ExactIntegerParser, allBigint: boolean): Reply {
  parser.next = 0;
  const out = convertIntegers(reply, parser, allBigint);
  parser.unsafe.length = 0;
  return out;
}

function convertIntegers(v: Reply, parser: ExactIntegerParser, allBigint: boolean): Reply {
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return allBigint ? BigInt(v) : v;
    const exact = parser.unsafe[parser.next++];
    if (exact === undefined) throw new ProtocolError(`Invalid RESP integer from server (${v})`);
    return exact;
  }
  if (Array.isArray(v)) for (let i = 0; i < v.length; i++) v[i] = convertIntegers(v[i] as Reply, parser, allBigint);
  return v;
}

function convertNested(value: ParserValue[]): Reply[] {
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (v instanceof Error) value[i] = new ReplyError(v.message);
    else if (Array.isArray(v)) convertNested(v);
  }
  return value as Reply[];
}

class LegacyDecoder {
  private readonly parser: RedisParser;
  private pendingBytes = 0;
  private failed = false;
  /** True while parser.execute() runs. */
  private executing = false;
  /** The stream was reset or failed during execute(): drop what the parser still delivers from it. */
  private discarding = false;

  constructor(
    private readonly handlers: DecoderHandlers,
    private readonly maxReplyBytes = 512 * 1024 * 1024,
    integers: IntegerMode = "number",
  ) {
    const allBigint = integers === "bigint";
    const options = {
      stringNumbers: integers === "string",
      returnReply: (reply: ParserValue) => {
        if (this.discarding) return;
        this.pendingBytes = 0;
        let r = Array.isArray(reply) ? convertNested(reply) : (reply as Reply);
        if (exact !== undefined && (allBigint || exact.unsafe.length !== 0)) r = exactIntegers(r, exact, allBigint);
        this.handlers.onReply(r);
      },
      returnError: (err: Error) => {
        if (this.discarding) return;
        this.pendingBytes = 0;
        this.handlers.onErrorReply(new ReplyError(err.message));
      },
      returnFatalError: (err: Error) => {
        if (this.discarding) return;
        this.fail(new ProtocolError(`Invalid RESP from server: ${err.message}`, { cause: err }));
      },
    };
    const exact = integers === "string" ? undefined : new ExactIntegerParser(options);
    this.parser = exact ?? new RedisParser(options);
  }

  /** Ask for Buffers (true) or strings (false) for the next reply parsed. */
  setReturnBuffers(returnBuffers: boolean): void {
    if (this.parser.optionReturnBuffers !== returnBuffers) this.parser.setReturnBuffers(returnBuffers);
  }

  /** Feed socket bytes. After a protocol error the decoder ignores further input. */
  write(chunk: Buffer): void {
    // Empty chunks are skipped: redis-parser 3.0.0 mis-slices a bulk string
    // whose pending chunks include an empty one ("$0\r\n\r" + "" + "\n" gives "\r").
    if (this.failed || chunk.length === 0) return;
    this.pendingBytes += chunk.length;
    this.executing = true;
    try {
      this.parser.execute(chunk);
    } catch (err) {
      // A handler that throws must not leave the parser half way through a
      // buffer; treat it like corrupt input: the socket is no longer in sync.
      // (Unless a handler already reset the stream: then the error is the old stream's.)
      if (!this.discarding) {
        if (err instanceof ProtocolError) this.fail(err);
        else this.fail(new ProtocolError("Reply handling failed", { cause: err }));
      }
    } finally {
      this.executing = false;
    }
    if (this.discarding) {
      this.discarding = false;
      this.parser.reset();
      return;
    }
    if (this.pendingBytes > this.maxReplyBytes) {
      this.fail(new ProtocolError(`Reply exceeds maxReplyBytes (${this.maxReplyBytes} bytes)`));
    }
  }

  /** Forget any partial reply (a new socket starts clean). Safe to call from a handler. */
  reset(): void {
    this.pendingBytes = 0;
    this.failed = false;
    this.resetParser();
  }

  private resetParser(): void {
    if (this.executing) this.discarding = true;
    else this.parser.reset();
  }

  private fail(error: ProtocolError): void {
    if (this.failed) return;
    this.failed = true;
    this.resetParser();
    this.handlers.onProtocolError(error);
  }
}

// ---------------------------------------------------------------------------

type Which = "old" | "new";

interface DecoderLike {
  write(chunk: Buffer): void;
  setReturnBuffers(returnBuffers: boolean): void;
}

function makeDecoder(which: Which, handlers: DecoderHandlers, replies: ReplyMode = "compat", integers: IntegerMode = "number"): DecoderLike {
  return which === "old" ? new LegacyDecoder(handlers, undefined, integers) : new RespDecoder(handlers, { replies, integers });
}

const CHUNK = 64 * 1024;

function chunked(data: Buffer, size = CHUNK): Buffer[] {
  const out: Buffer[] = [];
  // Each chunk its own allocation, as socket reads are.
  for (let i = 0; i < data.length; i += size) out.push(Buffer.from(data.subarray(i, i + size)));
  return out;
}

function repeat(one: string | Buffer, times: number): Buffer {
  const b = typeof one === "string" ? Buffer.from(one, "latin1") : one;
  const out = Buffer.allocUnsafe(b.length * times);
  for (let i = 0; i < times; i++) b.copy(out, i * b.length);
  return out;
}

const v16 = "v".repeat(16);
const bulk = (s: string): string => `$${s.length}\r\n${s}\r\n`;
const kib100 = "x".repeat(100 * 1024);
const MIB32 = 32 * 1024 * 1024;

function bigBufferReply(size: number): Buffer {
  const header = Buffer.from(`$${size}\r\n`);
  const out = Buffer.alloc(header.length + size + 2, 0x61);
  header.copy(out, 0);
  out.write("\r\n", header.length + size, "latin1");
  return out;
}

interface Workload {
  name: string;
  protocol: 2 | 3;
  replies: number;
  buffers: boolean;
  mode?: ReplyMode;
  data: () => Buffer[];
  runs?: number;
  old?: boolean;
}

const quick = process.argv.includes("--quick");
const runsArg = process.argv.find((a) => a.startsWith("--runs="));
const RUNS = runsArg !== undefined ? Number(runsArg.slice(7)) : quick ? 5 : 15;

const hash10 = Array.from({ length: 5 }, (_, i) => bulk(`field:${i}`) + bulk(v16)).join("");
const set10 = Array.from({ length: 10 }, (_, i) => bulk(`member:${i}`)).join("");

const WORKLOADS: Workload[] = [
  { name: "GET 16 B", protocol: 2, replies: 200_000, buffers: false, data: () => chunked(repeat(bulk(v16), 200_000)), old: true },
  { name: "GET 16 B (Buffer)", protocol: 2, replies: 200_000, buffers: true, data: () => chunked(repeat(bulk(v16), 200_000)), old: true },
  { name: "MGET 10 x 16 B", protocol: 2, replies: 50_000, buffers: false, data: () => chunked(repeat(`*10\r\n${bulk(v16).repeat(10)}`, 50_000)), old: true },
  { name: "GET 100 KiB", protocol: 2, replies: 400, buffers: false, data: () => chunked(repeat(bulk(kib100), 400)), old: true },
  { name: "GET 100 KiB (Buffer)", protocol: 2, replies: 400, buffers: true, data: () => chunked(repeat(bulk(kib100), 400)), old: true },
  { name: "32 MiB Buffer reply", protocol: 2, replies: 1, buffers: true, data: () => chunked(bigBufferReply(MIB32)), runs: Math.max(3, Math.ceil(RUNS / 3)), old: true },
  { name: "INCR :12345", protocol: 2, replies: 500_000, buffers: false, data: () => chunked(repeat(":12345\r\n", 500_000)), old: true },
  // RESP3 (the new decoder only: redis-parser cannot read these).
  { name: "HGETALL 5 (map, compat)", protocol: 3, replies: 50_000, buffers: false, data: () => chunked(repeat(`%5\r\n${hash10}`, 50_000)) },
  { name: "HGETALL 5 (map, native)", protocol: 3, replies: 50_000, buffers: false, mode: "native", data: () => chunked(repeat(`%5\r\n${hash10}`, 50_000)) },
  { name: "SMEMBERS 10 (set, compat)", protocol: 3, replies: 50_000, buffers: false, data: () => chunked(repeat(`~10\r\n${set10}`, 50_000)) },
  { name: "SMEMBERS 10 (set, native)", protocol: 3, replies: 50_000, buffers: false, mode: "native", data: () => chunked(repeat(`~10\r\n${set10}`, 50_000)) },
  { name: "ZSCORE (double, compat)", protocol: 3, replies: 300_000, buffers: false, data: () => chunked(repeat(",3.14159\r\n", 300_000)) },
  { name: "ZSCORE (double, native)", protocol: 3, replies: 300_000, buffers: false, mode: "native", data: () => chunked(repeat(",3.14159\r\n", 300_000)) },
  { name: "push: message 16 B", protocol: 3, replies: 100_000, buffers: false, data: () => chunked(repeat(`>3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n${bulk(v16)}`, 100_000)) },
  { name: "GET 100 KiB (verbatim =)", protocol: 3, replies: 400, buffers: false, data: () => chunked(repeat(`=${kib100.length + 4}\r\ntxt:${kib100}\r\n`, 400)) },
];

/** Keeps the consumer's reads observable. */
let sink = 0;

function runOnce(which: Which, w: Workload, data: Buffer[]): number {
  let n = 0;
  const count = (r: unknown): void => {
    n++;
    // Read one character of a string reply, as any consumer would: a string
    // redis-parser built from several chunks is a V8 cons string, flattened
    // (copied) on first use; without this its cost would go unmeasured.
    if (typeof r === "string" && r.length > 0) sink ^= r.charCodeAt(r.length >> 1);
  };
  const d = makeDecoder(which, {
    onReply: count,
    onPush: count,
    onErrorReply: count,
    onProtocolError: (e) => {
      throw e;
    },
  }, w.mode);
  d.setReturnBuffers(w.buffers);
  const t0 = process.hrtime.bigint();
  for (const c of data) d.write(c);
  const t = Number(process.hrtime.bigint() - t0);
  if (n !== w.replies) throw new Error(`${which} ${w.name}: ${n} replies, expected ${w.replies}`);
  return t; // ns
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Min and median ns per reply of each decoder; old and new runs alternate, so that noise from other processes falls on both. */
function measure(w: Workload, whiches: readonly Which[]): Map<Which, { min: number; median: number }> {
  const data = w.data();
  const runs = w.runs ?? RUNS;
  gc?.(); // once per workload: a gc() before every run makes the runs after it slower and far noisier
  for (const which of whiches) for (let i = 0; i < Math.min(3, runs); i++) runOnce(which, w, data); // warm-up
  const times = new Map<Which, number[]>(whiches.map((x) => [x, []]));
  for (let i = 0; i < runs; i++) {
    for (const which of i % 2 === 0 ? whiches : [...whiches].reverse()) {
      times.get(which)!.push(runOnce(which, w, data) / w.replies);
    }
  }
  const out = new Map<Which, { min: number; median: number }>();
  for (const [which, t] of times) {
    t.sort((a, b) => a - b);
    out.set(which, { min: t[0] as number, median: t[Math.floor(t.length / 2)] as number });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Children: retained memory and time to exit, one decoder per process.

function memory(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

async function fullGc(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(20);
  }
}

/** The last decoder used stays alive (as a connection's does): whatever it keeps counts. */
let liveDecoder: DecoderLike | undefined;

/** Decode one 32 MiB Buffer reply from 64 KiB chunks and drop it. Returns its length. */
function decodeBig(which: Which): number {
  let chunks: Buffer[] | undefined = chunked(bigBufferReply(MIB32));
  let got: Reply | undefined;
  const d = makeDecoder(which, {
    onReply: (r) => {
      got = r;
    },
    onErrorReply: () => undefined,
    onProtocolError: (e) => {
      throw e;
    },
  });
  d.setReturnBuffers(true);
  for (const c of chunks) d.write(c);
  chunks = undefined;
  const length = Buffer.isBuffer(got) ? got.length : -1;
  got = undefined;
  liveDecoder = d;
  return length;
}

async function childRetain(which: Which): Promise<void> {
  if (gc === undefined) throw new Error("run with --expose-gc");
  // No warm-up: what the first big reply leaves behind (a pool) is the point.
  await fullGc();
  const before = memory();
  const length = decodeBig(which);
  await fullGc();
  const after = memory();
  await sleep(1000);
  await fullGc();
  const later = memory();
  if (liveDecoder === undefined) throw new Error("no decoder");
  process.stdout.write(JSON.stringify({ length, retained: after - before, retainedLater: later - before }) + "\n");
}

function childExit(which: Which): void {
  const length = decodeBig(which);
  const handles = process.getActiveResourcesInfo().filter((h) => h !== "TTYWrap" && h !== "PipeWrap");
  process.stdout.write(JSON.stringify({ length, done: performance.timeOrigin + performance.now(), handles }) + "\n");
  // ... and return: nothing is closed explicitly.
}

function runChild(mode: string, which: Which): Promise<{ out: Record<string, unknown>; exitedAt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url), `--child=${mode}`, `--decoder=${which}`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let text = "";
    child.stdout.on("data", (b: Buffer) => (text += b.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      const exitedAt = performance.timeOrigin + performance.now();
      if (code !== 0) return reject(new Error(`child ${mode} ${which} exited with ${code}`));
      resolve({ out: JSON.parse(text.trim().split("\n").pop() as string) as Record<string, unknown>, exitedAt });
    });
  });
}

const MiB = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const child = process.argv.find((a) => a.startsWith("--child="))?.slice(8);
  const which = (process.argv.find((a) => a.startsWith("--decoder="))?.slice(10) ?? "new") as Which;
  if (child === "retain") return childRetain(which);
  if (child === "exit") return childExit(which);

  console.log(`node ${process.version}, ${RUNS} runs per cell (min / median ns per reply, wall time), chunks of ${CHUNK / 1024} KiB, gc ${gc ? "before each workload" : "off (run with --expose-gc)"}`);
  console.log("");
  const rows: string[][] = [["workload", "RESP", "redis-parser min", "(median)", "new min", "(median)", "new / old"]];
  const only = process.argv.find((a) => a.startsWith("--only="))?.slice(7);
  for (const w of WORKLOADS) {
    if (only !== undefined && !w.name.toLowerCase().includes(only.toLowerCase())) continue;
    const m = measure(w, w.old === true ? ["old", "new"] : ["new"]);
    const neu = m.get("new")!;
    const old = m.get("old");
    const f = (x: number): string => (x >= 1e5 ? `${(x / 1e6).toFixed(2)} ms` : `${x.toFixed(x < 100 ? 1 : 0)} ns`);
    rows.push([w.name, String(w.protocol), old ? f(old.min) : "-", old ? f(old.median) : "-", f(neu.min), f(neu.median), old ? `${(neu.min / old.min).toFixed(2)}x` : "-"]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));

  if (sink === 0.5) console.log(sink);
  if (only !== undefined) return;
  console.log("");
  console.log("32 MiB Buffer reply, dropped, gc(): memory still held (heapUsed + external) | child exit after its main module returned");
  for (const d of ["old", "new"] as const) {
    const r = await runChild("retain", d);
    const e = await runChild("exit", d);
    const exitMs = e.exitedAt - (e.out.done as number);
    console.log(
      `${(d === "old" ? "redis-parser" : "new").padEnd(12)}  retained ${MiB(r.out.retained as number).padStart(9)} (1 s later ${MiB(r.out.retainedLater as number).padStart(9)})` +
        `  |  exit ${exitMs.toFixed(0).padStart(5)} ms, active handles: ${JSON.stringify(e.out.handles)}`,
    );
  }
}

await main();
