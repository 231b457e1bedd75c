// Micro-benchmark of the reply decoder (no server, no sockets): how much the
// `integers` option costs per reply. Feeds pre-built RESP in 64 KiB chunks.
//
//   node --expose-gc --import tsx bench/decode-integers.ts [--module=path/to/decode.ts] [--integers=number|bigint|string]
//
// --module lets you compare against another copy of src/protocol/decode.ts
// (the Decoder constructor's third argument is the integer mode), e.g. the
// code before the option, with its imports made absolute:
//   git show <commit>:src/protocol/decode.ts | sed -e 's#"redis-parser"#"'$PWD'/node_modules/redis-parser/index.js"#' \
//     -e 's#"../errors.js"#"'$PWD'/src/errors.ts"#' > /tmp/decode-baseline.ts
// Times are CPU times of the decoding alone (median and min of 21 runs).
import { pathToFileURL } from "node:url";
import path from "node:path";

type Handlers = { onReply(r: unknown): void; onErrorReply(e: unknown): void; onProtocolError(e: unknown): void };
type DecoderLike = { write(chunk: Buffer): void };
type DecoderCtor = new (h: Handlers, maxReplyBytes?: number, integers?: string) => DecoderLike;

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const modulePath = path.resolve(arg("module") ?? new URL("../src/protocol/decode.ts", import.meta.url).pathname);
const integers = arg("integers") ?? "number";
const { Decoder } = (await import(pathToFileURL(modulePath).href)) as { Decoder: DecoderCtor };

function chunks(text: string): Buffer[] {
  const all = Buffer.from(text, "latin1");
  const out: Buffer[] = [];
  for (let i = 0; i < all.length; i += 65536) out.push(all.subarray(i, i + 65536));
  return out;
}

const value16 = "v".repeat(16);
const workloads: { name: string; replies: number; data: Buffer[] }[] = [
  { name: "1e6 x :12345", replies: 1e6, data: chunks(":12345\r\n".repeat(1e6)) },
  { name: "2e5 x MGET 10 bulk", replies: 2e5, data: chunks(("*10\r\n" + `$16\r\n${value16}\r\n`.repeat(10)).repeat(2e5)) },
  { name: "2e5 x *10 of :12345", replies: 2e5, data: chunks(("*10\r\n" + ":12345\r\n".repeat(10)).repeat(2e5)) },
  { name: "1e6 x :9007199254740993", replies: 1e6, data: chunks(":9007199254740993\r\n".repeat(1e6)) },
];

function run(data: Buffer[]): number {
  let n = 0;
  const d = new Decoder(
    {
      onReply: () => {
        n++;
      },
      onErrorReply: () => undefined,
      onProtocolError: (e) => {
        throw e;
      },
    },
    undefined,
    integers,
  );
  // CPU time, not wall time: less noise on a shared machine.
  const t0 = process.cpuUsage();
  for (const c of data) d.write(c);
  const t = process.cpuUsage(t0);
  if (n === 0) throw new Error("no replies");
  return (t.user + t.system) / 1e3;
}

const gc = (globalThis as { gc?: () => void }).gc;
console.log(`module ${modulePath}, integers=${integers}, node ${process.version}`);
for (const w of workloads) {
  for (let i = 0; i < 3; i++) run(w.data); // warm-up
  const times: number[] = [];
  for (let i = 0; i < 21; i++) {
    gc?.();
    times.push(run(w.data));
  }
  times.sort((a, b) => a - b);
  const median = times[10] as number;
  console.log(`${w.name.padEnd(26)} median ${median.toFixed(1).padStart(7)} ms  (${((median * 1e6) / w.replies).toFixed(1)} ns/reply, min ${(times[0] as number).toFixed(1)} ms)`);
}
