// The package as a user gets it: `npm pack` (its prepare script builds dist),
// the tarball installed into throwaway consumer projects, and loaded every way
// users load it: require() from CommonJS, import from ESM, and TypeScript
// under module node16 / node20 / nodenext / bundler / commonjs (node10),
// compiled with tsc and then run. Nothing resolves from the source tree.
//
// - The pack runs in a copy of the repo (src, the tsconfigs, package.json and
//   the files it lists; node_modules linked), so it never rewrites the dist/
//   other test files build and read.
// - The consumers install offline: `npm ci --offline` with a lockfile written
//   from the tarball's package.json and this repo's package-lock.json, whose
//   packages are in the npm cache once this repo's `npm ci` has run. A
//   dependency the tarball does not declare is not installed, so a missing
//   one fails here.
// - Each consumer sets a key, reads it, sends a raw command, uses the Keyv
//   adapter against a redis-server of ours, and must exit 0 by itself (close()
//   leaves nothing running), with nothing on stderr (no warning either).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempDir, removeTempDir } from "../support/processes.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";

const exec = promisify(execFile);
const repo = process.cwd();
const tsc = join(repo, "node_modules", "typescript", "bin", "tsc");
const RUN_TIMEOUT_MS = 15_000;
// The tsc runs share two cores with the rest of the suite.
const COMPILE_TEST_TIMEOUT_MS = 120_000;

interface PackageJson {
  name: string;
  version: string;
  files?: string[];
  exports: Record<string, string | Record<string, string>>;
  typesVersions?: Record<string, Record<string, string[]>>;
  engines?: Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, unknown>;
  license?: string;
}

interface LockEntry {
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [other: string]: unknown;
}

let root: string;
let consumer: string;
let packed: string[];
let pkg: PackageJson;
let server: RedisServer;

async function run(cmd: string, args: string[], cwd: string, what: string): Promise<{ stdout: string; stderr: string }> {
  try {
    return await exec(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: "false" } });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${what} failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

/** Copy of the repo holding what `npm pack` reads and builds from. */
function stageRepo(stage: string): void {
  const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as PackageJson;
  for (const entry of ["package.json", "tsconfig.json", "tsconfig.build.json", "src", ...(manifest.files ?? [])]) {
    if (entry === "dist" || !existsSync(join(repo, entry))) continue;
    cpSync(join(repo, entry), join(stage, entry), { recursive: true });
  }
  symlinkSync(join(repo, "node_modules"), join(stage, "node_modules"), "dir");
}

/**
 * The consumer's package-lock.json: respite from the tarball, and the
 * tarball's dependencies (with theirs) as this repo's lockfile pins them.
 */
function consumerLock(tarball: string, devDependencies: Record<string, string>, registry: string): object {
  const repoLock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
  const integrity = `sha512-${createHash("sha512").update(readFileSync(join(root, tarball))).digest("base64")}`;
  const packages: Record<string, object> = {
    "": { name: "respite-consumer", version: "1.0.0", dependencies: { respite: `file:../${tarball}` }, devDependencies },
    "node_modules/respite": {
      version: pkg.version,
      resolved: `file:../${tarball}`,
      integrity,
      license: pkg.license,
      dependencies: pkg.dependencies,
      optionalDependencies: pkg.optionalDependencies,
      peerDependencies: pkg.peerDependencies,
      peerDependenciesMeta: pkg.peerDependenciesMeta,
      engines: pkg.engines,
    },
  };
  const add = (names: string[], dev: boolean): void => {
    for (const name of names) {
      const at = `node_modules/${name}`;
      if (packages[at] !== undefined) continue;
      const entry = repoLock.packages[at];
      if (entry === undefined) throw new Error(`${name} (a dependency of the tarball) is not in this repo's package-lock.json at the top level`);
      const { dev: _d, devOptional: _o, optional: _p, peer: _q, ...rest } = entry;
      // Our lockfile leaves `resolved` out (the default registry); npm ci --offline
      // then looks some packages up by name, which the cache cannot answer.
      const base = name.slice(name.lastIndexOf("/") + 1);
      rest.resolved ??= `${registry.replace(/\/?$/, "/")}${name}/-/${base}-${entry.version}.tgz`;
      packages[at] = dev ? { ...rest, dev: true } : rest;
      add([...Object.keys(entry.dependencies ?? {}), ...Object.keys(entry.optionalDependencies ?? {})], dev);
    }
  };
  add([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})], false);
  add(Object.keys(devDependencies), true);
  return { name: "respite-consumer", version: "1.0.0", lockfileVersion: 3, requires: true, packages };
}

beforeAll(async () => {
  root = makeTempDir("respite-package-");
  const stage = join(root, "stage");
  mkdirSync(stage);
  stageRepo(stage);
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", root], stage, "npm pack");
  const report = JSON.parse(stdout.slice(stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
  const tarball = (report[0] as { filename: string }).filename;
  packed = (report[0] as { files: { path: string }[] }).files.map((f) => f.path);
  pkg = JSON.parse(readFileSync(join(stage, "package.json"), "utf8")) as PackageJson;

  consumer = join(root, "consumer");
  mkdirSync(consumer);
  const repoLock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
  const typesNode = (repoLock.packages["node_modules/@types/node"] as LockEntry).version;
  // @opentelemetry/api: respite/otel's optional peer, so that every entry of the exports map loads.
  const otelApi = (repoLock.packages["node_modules/@opentelemetry/api"] as LockEntry).version;
  const devDependencies = { "@types/node": typesNode, "@opentelemetry/api": otelApi };
  writeFileSync(
    join(consumer, "package.json"),
    JSON.stringify({ name: "respite-consumer", version: "1.0.0", private: true, dependencies: { respite: `file:../${tarball}` }, devDependencies }, null, 2),
  );
  const registry = (await run("npm", ["config", "get", "registry"], consumer, "npm config get registry")).stdout.trim();
  writeFileSync(join(consumer, "package-lock.json"), JSON.stringify(consumerLock(tarball, devDependencies, registry), null, 2));
  try {
    await run("npm", ["ci", "--offline", "--no-audit", "--no-fund"], consumer, "npm ci --offline of the consumer");
  } catch (err) {
    throw new Error(`${(err as Error).message}\n(The consumer installs from the npm cache: run \`npm ci\` in the repo first.)`);
  }
  writeConsumers();
  server = await startRedis();
}, 180_000);

afterAll(async () => {
  await server?.stop();
  if (root !== undefined) removeTempDir(root);
});

// ---- the consumers ---------------------------------------------------------

const CJS = `
const { createClient, ReplyError, RedisError } = require("respite");
// Every entry of the exports map loads through require().
const loaded = Object.keys(require("respite/package.json").exports)
  .filter((s) => s !== "./package.json")
  .map((s) => "respite" + s.slice(1))
  .filter((name) => Object.keys(require(name)).length > 0);
const keyv = require("respite/keyv");
const { KeyvRespite } = keyv;
async function main() {
  const p = process.env.PREFIX;
  const client = createClient(process.env.URL);
  const set = await client.set(p + ":k", "v");
  const value = await client.get(p + ":k");
  const pong = await client.command(["PING"]);
  const err = await client.command(["INCR", p + ":k"]).catch((e) => e);
  const store = new KeyvRespite(client, { namespace: p });
  const stored = await store.set("a", "1");
  const got = await store.get("a");
  await client.close();
  console.log(JSON.stringify({ set, value, pong, reply: err instanceof ReplyError, base: err instanceof RedisError, stored, got, same: keyv.default === KeyvRespite, loaded }));
}
main().catch((e) => { console.error(e); process.exitCode = 1; });
`;

const ESM = `
import { createRequire } from "node:module";
import { createClient, ReplyError, RedisError } from "respite";
import KeyvDefault, { KeyvRespite } from "respite/keyv";
const { exports } = createRequire(import.meta.url)("respite/package.json");
const loaded = [];
for (const s of Object.keys(exports).filter((s) => s !== "./package.json")) {
  if (Object.keys(await import("respite" + s.slice(1))).length > 0) loaded.push("respite" + s.slice(1));
}
const p = process.env.PREFIX;
const client = createClient(process.env.URL);
const set = await client.set(p + ":k", "v");
const value = await client.get(p + ":k");
const pong = await client.command(["PING"]);
const err = await client.command(["INCR", p + ":k"]).catch((e) => e);
const store = new KeyvRespite(client, { namespace: p });
const stored = await store.set("a", "1");
const got = await store.get("a");
await client.close();
console.log(JSON.stringify({ set, value, pong, reply: err instanceof ReplyError, base: err instanceof RedisError, stored, got, same: KeyvDefault === KeyvRespite, loaded }));
`;

// The same program for every TypeScript setting; its types must be respite's
// real ones (not any): each @ts-expect-error below must meet an error.
const TS = `
import { createClient, RedisError, ReplyError, type Client, type ClientOptions, type Reply } from "respite";
import KeyvDefault, { KeyvRespite, type KeyvRespiteOptions } from "respite/keyv";

function typeChecks(client: Client): void {
  // @ts-expect-error: not a ClientOptions name
  createClient({ transprot: "pooled" });
  // @ts-expect-error: a key is a string or a Buffer
  void client.get(42);
  // @ts-expect-error: command() takes an array
  void client.command("PING");
  // @ts-expect-error: not a KeyvRespiteOptions name
  new KeyvRespite(client, { namespce: "x" });
}

async function main(): Promise<void> {
  const p = process.env.PREFIX ?? "ts";
  const options: ClientOptions = { url: process.env.URL, transport: "pooled" };
  const client: Client = createClient(options);
  const set: "OK" = await client.set(p + ":k", "v");
  const value: string | null = await client.get(p + ":k");
  const pong: Reply = await client.command(["PING"]);
  const err: unknown = await client.command(["INCR", p + ":k"]).catch((e: unknown) => e);
  const keyvOptions: KeyvRespiteOptions = { namespace: p };
  const store = new KeyvRespite(client, keyvOptions);
  const stored: boolean = await store.set("a", "1");
  const got: string | undefined = await store.get("a");
  await client.close();
  const same: boolean = (KeyvDefault as unknown) === KeyvRespite;
  console.log(JSON.stringify({ set, value, pong, reply: err instanceof ReplyError, base: err instanceof RedisError, stored, got, same }));
}

void typeChecks;
main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
`;

interface TsSetting {
  name: string;
  type: "commonjs" | "module";
  module: string;
  moduleResolution: string;
  /** Check respite's .d.ts files themselves too (slower): once, under the strictest setting. */
  libCheck: boolean;
}

const TS_SETTINGS: TsSetting[] = [
  { name: "esm-nodenext", type: "module", module: "nodenext", moduleResolution: "nodenext", libCheck: true },
  { name: "esm-node16", type: "module", module: "node16", moduleResolution: "node16", libCheck: false },
  { name: "esm-bundler", type: "module", module: "esnext", moduleResolution: "bundler", libCheck: false },
  { name: "cjs-nodenext", type: "commonjs", module: "nodenext", moduleResolution: "nodenext", libCheck: false },
  { name: "cjs-node20", type: "commonjs", module: "node20", moduleResolution: "node16", libCheck: false },
  { name: "cjs-node10", type: "commonjs", module: "commonjs", moduleResolution: "node10", libCheck: false },
];

/** A CommonJS project on module node16: TypeScript models Node 16, which cannot require() an ES module. */
const CJS_NODE16: TsSetting = { name: "cjs-node16", type: "commonjs", module: "node16", moduleResolution: "node16", libCheck: false };

function writeProject(name: string, type: "commonjs" | "module", files: Record<string, string>): string {
  const dir = join(consumer, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `respite-consumer-${name}`, private: true, type }, null, 2));
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

function writeConsumers(): void {
  writeProject("cjs", "commonjs", { "main.js": CJS });
  writeProject("esm", "module", { "main.js": ESM });
  for (const s of [...TS_SETTINGS, CJS_NODE16]) {
    const tsconfig = {
      compilerOptions: {
        module: s.module,
        moduleResolution: s.moduleResolution,
        target: "ES2022",
        lib: ["ES2022"],
        types: ["node"],
        strict: true,
        esModuleInterop: true,
        skipLibCheck: !s.libCheck,
        outDir: "out",
        rootDir: ".",
      },
      files: ["main.ts"],
    };
    writeProject(`ts-${s.name}`, s.type, { "tsconfig.json": JSON.stringify(tsconfig, null, 2), "main.ts": TS });
  }
}

/** "respite", "respite/keyv", ...: every entry of the exports map but package.json. */
function entryPoints(): string[] {
  return Object.keys(pkg.exports)
    .filter((s) => s !== "./package.json")
    .map((s) => "respite" + s.slice(1));
}

const EXPECTED = { set: "OK", value: "v", pong: "PONG", reply: true, base: true, stored: true, got: "1", same: true };

/** Run a consumer's program: it must exit 0 by itself, print the expected line, and nothing on stderr. */
async function runConsumer(dir: string, file: string, prefix: string, expected: object = EXPECTED): Promise<void> {
  const started = Date.now();
  let out: { stdout: string; stderr: string };
  try {
    out = await exec(process.execPath, [file], { cwd: dir, env: { ...process.env, URL: server.url, PREFIX: prefix }, timeout: RUN_TIMEOUT_MS });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string; killed?: boolean };
    const why = e.killed ? `did not exit within ${RUN_TIMEOUT_MS} ms` : "failed";
    throw new Error(`${dir}/${file} ${why}: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
  expect(out.stderr).toBe("");
  expect(JSON.parse(out.stdout.trim())).toEqual(expected);
  expect(Date.now() - started).toBeLessThan(RUN_TIMEOUT_MS);
}

async function compile(dir: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [tsc, "-p", dir], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as Error & { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, output: `${e.stdout ?? ""}${e.stderr ?? ""}` || e.message };
  }
}

// ---- the tests ---------------------------------------------------------------

describe("the packed tarball", () => {
  it("holds the build and the README, not the sources or tests, and every exports target", () => {
    expect(packed).toEqual(expect.arrayContaining(["package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/keyv/index.js", "dist/keyv/index.d.ts"]));
    expect(packed.filter((f) => f.startsWith("src/") || f.startsWith("test/") || f.startsWith("bench/"))).toEqual([]);
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      const targets = typeof target === "string" ? [target] : Object.values(target);
      for (const t of targets) expect(packed, `exports["${subpath}"] -> ${t}`).toContain(t.replace(/^\.\//, ""));
      // require() must find it too: a condition that CommonJS matches.
      if (typeof target !== "string") expect(Object.keys(target), `exports["${subpath}"]`).toContain("default");
    }
    for (const paths of Object.values(pkg.typesVersions?.["*"] ?? {})) {
      for (const t of paths) expect(packed).toContain(t.replace(/^\.\//, ""));
    }
  });

  it("declares a Node range whose every version can require() an ES module", () => {
    // require(esm) without a flag: 20.19+ on the 20 line, 22.12+ on the 22 line, every later line.
    expect(pkg.engines?.node).toBe("^20.19.0 || >=22.12.0");
    expect(process.features).toHaveProperty("require_module", true);
  });
});

describe("JavaScript consumers", () => {
  it('CommonJS: require("respite") and require("respite/keyv") talk to Redis, every entry loads, and the process exits by itself', async () => {
    await runConsumer(join(consumer, "cjs"), "main.js", "cjs", { ...EXPECTED, loaded: entryPoints() });
  });

  it('ESM: import from "respite" and "respite/keyv" talk to Redis, every entry loads, and the process exits by itself', async () => {
    await runConsumer(join(consumer, "esm"), "main.js", "esm", { ...EXPECTED, loaded: entryPoints() });
  });
});

describe.concurrent("TypeScript consumers (tsc, then run)", () => {
  for (const s of TS_SETTINGS) {
    it(`${s.type === "module" ? "ESM" : "CommonJS"} project, module ${s.module}, moduleResolution ${s.moduleResolution}`, async () => {
      const dir = join(consumer, `ts-${s.name}`);
      const { code, output } = await compile(dir);
      expect(output, `tsc -p ${dir}`).toBe("");
      expect(code).toBe(0);
      await runConsumer(dir, "out/main.js", s.name);
    }, COMPILE_TEST_TIMEOUT_MS);
  }

  it("CommonJS project on module node16: tsc refuses require() of an ES module (TS1479); module node20 or nodenext is the setting", async () => {
    // TypeScript's node16 mode models Node 16, which had no require(esm); the
    // README says so. Should a TypeScript release accept it, this test says
    // the README needs updating.
    const { code, output } = await compile(join(consumer, `ts-${CJS_NODE16.name}`));
    expect(code).not.toBe(0);
    expect(output).toMatch(/main\.ts\(2,\d+\): error TS1479: .*ECMAScript module.*require/);
    expect(output.match(/error TS\d+/g)).toEqual(["error TS1479", "error TS1479"]);
  }, COMPILE_TEST_TIMEOUT_MS);
});
