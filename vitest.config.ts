import { defineConfig } from "vitest/config";

/**
 * The suites whose replies and behaviour must not change with the protocol
 * run twice: once as every client does by default (RESP3, HELLO 3) and once
 * with RESP2 as the default (test/support/resp2.ts).
 */
const BOTH_PROTOCOLS = [
  "test/conformance/**/*.test.ts",
  "test/features/**/*.test.ts",
  "test/cache/**/*.test.ts",
  "test/chaos/chaos.test.ts",
  "test/chaos/features-chaos.test.ts",
];

export default defineConfig({
  test: {
    // Each test file spawns its own redis-server; two cores, so two files at a time.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      { extends: true, test: { name: "resp3", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "resp2", include: BOTH_PROTOCOLS, setupFiles: ["test/support/resp2.ts"] } },
    ],
  },
});
