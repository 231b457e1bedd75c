// After close(), a process that used pub/sub, blocking commands, batches,
// scripts and SCAN exits by itself (no handle left open), on both transports.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runs, TRANSPORTS, useRedis } from "./support.js";

const redis = useRedis();
const CHILD = fileURLToPath(new URL("./fixtures/child-features.ts", import.meta.url));

function runChild(args: string[], deadlineMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--import", "tsx", CHILD, ...args], { timeout: deadlineMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`child did not exit by itself within ${deadlineMs} ms: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

describe("lifecycle", () => {
  for (const transport of TRANSPORTS.filter(runs)) {
    it(`a child process using every feature exits by itself after close() (${transport})`, async () => {
      await redis.server.admin(["FLUSHALL"]);
      expect(await runChild([redis.server.url, transport], 15_000)).toEqual({
        received: "hi",
        blpop: null,
        batch: ["OK", 2],
        script: "lua",
        keys: ["child:k"],
      });
    });
  }
});
