// Keyv's own compliance suite (@keyv/test-suite: api, values, namespaces,
// then the iterator tests) against KeyvRespite on a real redis-server, once
// per transport. The suites are registered as published: nothing edited,
// nothing skipped. The store factory returns a fresh adapter over one shared
// client per transport, as an application would (one client, many Keyvs).
import Keyv from "keyv";
import * as test from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import keyvTestSuite, { keyvIteratorTests } from "@keyv/test-suite";
import type { KeyvStoreAdapter } from "keyv";
import { createClient, type Client } from "../../src/index.js";
import { KeyvRespite } from "../../src/keyv/index.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";

const TRANSPORTS = ["pipelined", "pooled"] as const;

// Compile-time: the adapter is a Keyv store as keyv's own types define it.
const asStore = (a: KeyvRespite): KeyvStoreAdapter => a;
void asStore;

let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

describe.each(TRANSPORTS)("KeyvRespite over the %s transport", (transport) => {
  describe("compliance", () => {
    let client: Client;
    const store = (): KeyvRespite => new KeyvRespite(client);

    beforeAll(async () => {
      client = createClient({ url: server.url, transport });
      await client.connect();
    });
    afterAll(async () => {
      await client?.close();
    });

    it("runs on the transport it was given", async () => {
      expect(client.options.transport).toBe(transport);
      expect(await client.command(["PING"])).toBe("PONG");
    });

    describe("@keyv/test-suite", () => {
      keyvTestSuite(test, Keyv, store);
    });

    describe("@keyv/test-suite iterator", () => {
      keyvIteratorTests(test, Keyv, store);
    });
  });
});
