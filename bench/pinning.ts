// Core pinning: with taskset on PATH and at least two usable cores, this node
// process (all its threads: main, libuv pool, V8 helpers, any native client
// threads created later inherit it) goes to one core and redis-server to
// another, so the two never fight over a core and the numbers measure the
// client. Pinning ourselves in place (taskset -a -p) avoids a re-exec and the
// signal forwarding it would need.
import { execFileSync } from "node:child_process";

export interface Pinning {
  /** Core for redis-server, if we pin it. */
  redisCore: number | undefined;
  note: string;
}

function run(args: string[]): string {
  return execFileSync("taskset", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Parse "0-3,6" into [0,1,2,3,6]. */
function parseCpuList(list: string): number[] {
  const cores: number[] = [];
  for (const part of list.trim().split(",")) {
    const [a, b] = part.split("-").map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    for (let c = a; c <= (b ?? a); c++) cores.push(c);
  }
  return cores;
}

export function pinProcesses(disabled: boolean): Pinning {
  if (disabled) return { redisCore: undefined, note: "pinning disabled (--no-pin)" };
  let allowed: number[];
  try {
    // "pid 123's current affinity list: 0,1"
    const out = run(["-c", "-p", String(process.pid)]);
    allowed = parseCpuList(out.slice(out.lastIndexOf(":") + 1));
  } catch {
    return { redisCore: undefined, note: "taskset not found: nothing pinned" };
  }
  if (allowed.length < 2) return { redisCore: undefined, note: `only core(s) ${allowed.join(",")} usable: nothing pinned` };
  const [nodeCore, redisCore] = allowed as [number, number];
  try {
    run(["-a", "-c", "-p", String(nodeCore), String(process.pid)]);
  } catch (err) {
    return { redisCore: undefined, note: `taskset failed (${err instanceof Error ? err.message.split("\n")[0] : String(err)}): nothing pinned` };
  }
  return { redisCore, note: `node pid ${process.pid} pinned to core ${nodeCore} (taskset -a -c -p ${nodeCore})` };
}
