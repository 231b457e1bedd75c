// The README's examples must run (issue 8): every ```ts block that starts
// with an import is a complete program. Each runs as its own module, against
// the built package ("respite" resolves through the exports map, as for a
// user), with REDIS_URL pointing at a server of ours, and must exit 0 by
// itself (close() leaves no open handle) within its deadline.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "../support/redis-server.js";

const run = promisify(execFile);
const readme = readFileSync(join(process.cwd(), "README.md"), "utf8");
// A block may be followed by <!-- prints ... -->: then its stdout must be exactly that.
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```(?:\n<!-- prints\n([\s\S]*?)-->)?/g)]
  .map((m) => ({ code: m[1] as string, prints: m[2] }))
  .filter((b) => b.code.startsWith("import "));
let server: RedisServer;
// Inside the repo so that "respite" and its dependencies resolve from it.
const dir = mkdtempSync(join(process.cwd(), ".readme-"));

beforeAll(async () => {
  await run("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: process.cwd() });
  server = await startRedis();
}, 120_000);
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await server?.stop();
});

describe("README examples", () => {
  it("has runnable examples", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(8);
  });

  it.each(blocks.map((b, i) => [i, b.code, b.prints] as const))(
    "example %i runs and exits by itself",
    async (i, code, prints) => {
      await server.admin(["FLUSHALL"]);
      const file = join(dir, `example-${i}.ts`);
      writeFileSync(file, code);
      const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", file], {
        cwd: process.cwd(),
        env: { ...process.env, REDIS_URL: server.url },
        timeout: 20_000,
      });
      expect(stderr).toBe("");
      if (prints !== undefined) expect(stdout).toBe(prints);
    },
    30_000,
  );
});
