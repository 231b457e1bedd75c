// What a big reply leaves behind, measured in child processes (one per
// check, `node --expose-gc`): a 32 MiB Buffer reply, once dropped, leaves no
// more than its own size retained (in fact next to nothing), and a process
// that decoded it exits promptly, with no timer or handle left open.
// (redis-parser, used before, kept a module-level pool of 3x the largest
// Buffer reply and a setInterval that held the process 2 to 3.5 s.)
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const CHILD = fileURLToPath(new URL("./fixtures/decoder-child.ts", import.meta.url));
const MiB = 1024 * 1024;

interface ChildResult {
  out: Record<string, unknown>;
  /** When the child exited (the parent's clock, ms since the epoch, sub-ms). */
  exitedAt: number;
}

function runChild(mode: string, deadlineMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ["--expose-gc", "--import", "tsx", CHILD, mode], { timeout: deadlineMs, killSignal: "SIGKILL", maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`child ${mode} did not exit cleanly within ${deadlineMs} ms: ${err.message}\n${stderr}`));
    });
    let stdout = "";
    child.stdout?.on("data", (b: Buffer | string) => (stdout += b.toString()));
    child.on("exit", (code) => {
      const exitedAt = performance.timeOrigin + performance.now();
      if (code !== 0) return;
      try {
        resolve({ out: JSON.parse(stdout.trim()) as Record<string, unknown>, exitedAt });
      } catch (e) {
        reject(new Error(`child ${mode} printed ${JSON.stringify(stdout)}: ${String(e)}`));
      }
    });
  });
}

describe("decoder memory and process exit", () => {
  it("a 32 MiB Buffer reply, dropped and collected, leaves no more than its own size retained", async () => {
    const { out } = await runChild("retain", 60_000);
    expect(out.length).toBe(32 * MiB);
    // The reply was one Buffer of exactly its size (assembled once, no pool behind it).
    expect(out.ownBytes).toBe(32 * MiB);
    const retained = out.retained as number;
    // The bound asked for is the reply's own size; half of it still catches a
    // decoder that kept the reply (32 MiB) or a pool (redis-parser: 96 MiB).
    expect(retained).toBeLessThan(16 * MiB);
  }, 90_000);

  it("a process that decoded it exits promptly after its main module returns, with nothing left open", async () => {
    const { out, exitedAt } = await runChild("exit", 60_000);
    expect(out.length).toBe(32 * MiB);
    expect(out.handles).toEqual([]);
    const lingerMs = exitedAt - (out.done as number);
    expect(lingerMs).toBeLessThan(500);
  }, 90_000);
});
