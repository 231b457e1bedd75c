// `import { createClient } from "respite"` must work for a user who installs
// the package: the build output and the exports map, not the TS sources.
// Node resolves a package's own name through its exports map (self-reference),
// so a child process importing "respite" from the repo root sees exactly what
// an installed copy would.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { beforeAll, expect, it } from "vitest";
import { startRedis, type RedisServer } from "../support/redis-server.js";

const run = promisify(execFile);
let server: RedisServer;

beforeAll(async () => {
  await run("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: process.cwd() });
  server = await startRedis();
  return () => server.stop();
}, 120_000);

it("imports the built package by name and talks to Redis, then exits by itself", async () => {
  const script = `
    import { createClient, RedisError, ReplyError } from "respite";
    const c = createClient(process.env.URL);
    await c.command(["SET", "pkg", "ok"]);
    const v = await c.command(["GET", "pkg"]);
    const e = await c.command(["INCR", "pkg"]).catch((err) => err);
    await c.close();
    console.log(JSON.stringify({ v, reply: e instanceof ReplyError, base: e instanceof RedisError }));
  `;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], {
    cwd: process.cwd(),
    env: { ...process.env, URL: server.url },
    timeout: 10_000,
  });
  expect(JSON.parse(stdout.trim())).toEqual({ v: "ok", reply: true, base: true });
});
