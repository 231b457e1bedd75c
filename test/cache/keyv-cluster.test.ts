// The Keyv adapter on a Redis Cluster (issues 8 and 10): the same
// KeyvRespite over a ClusterClient. Keys of one namespace spread over every
// master, so getMany / deleteMany / clear() / iterator() must work across
// slots: MGET and UNLINK are split by slot, SCAN walks every master. Keyv's
// own compliance suite runs unedited on the cluster, then targeted checks.
import Keyv from "keyv";
import * as test from "vitest";
import { beforeAll, afterAll, describe, expect, it } from "vitest";
import keyvTestSuite, { keyvIteratorTests } from "@keyv/test-suite";
import { createCluster, keySlot, type ClusterClient } from "../../src/index.js";
import { KeyvRespite } from "../../src/keyv/index.js";
import { useCluster } from "../support/cluster-suite.js";

const suite = useCluster();

describe("KeyvRespite on a Redis Cluster", () => {
  let client: ClusterClient;
  const store = (): KeyvRespite => new KeyvRespite(client);

  beforeAll(async () => {
    // Not suite.connect(): that client is destroyed after each test, and Keyv's suite shares one.
    client = createCluster({ rootNodes: suite.cluster.urls.slice(0, 2), connectTimeoutMs: 1000 });
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
  });

  describe("@keyv/test-suite", () => {
    keyvTestSuite(test, Keyv, store);
  });

  describe("@keyv/test-suite iterator", () => {
    keyvIteratorTests(test, Keyv, store);
  });

  it("getMany, deleteMany, iterator and clear work on keys spread over every master", async () => {
    const keyv = new Keyv({ store: new KeyvRespite(client), namespace: "spread" });
    const other = new Keyv({ store: new KeyvRespite(client), namespace: "other" });
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k) => keyv.set(k, `v-${k}`)));
    await other.set("k1", "kept");

    // The stored keys really sit on all three masters.
    const owners = new Set(keys.map((k) => client.masterOf(keySlot(`spread::${k}`))));
    const stored = await Promise.all(client.nodes("master").map(async (n) => (await n.command(["KEYS", "spread::*"])) as string[]));
    expect(stored.filter((list) => list.length > 0)).toHaveLength(3);
    expect(stored.flat()).toHaveLength(60);
    expect(owners.size).toBe(3);

    expect(await keyv.get(["k0", "k30", "missing", "k59"])).toEqual(["v-k0", "v-k30", undefined, "v-k59"]);
    const seen: string[] = [];
    const iterator = keyv.iterator?.bind(keyv);
    if (iterator === undefined) throw new Error("Keyv sees no iterator on the adapter");
    for await (const [key, value] of iterator("spread")) {
      expect(value).toBe(`v-${String(key)}`);
      seen.push(String(key));
    }
    expect(seen.sort()).toEqual([...keys].sort());

    expect(await keyv.delete(["k0", "k1", "k2", "missing"])).toBe(true);
    expect(await keyv.get(["k0", "k1", "k2", "k3"])).toEqual([undefined, undefined, undefined, "v-k3"]);

    await keyv.clear();
    const left = await Promise.all(client.nodes("master").map(async (n) => (await n.command(["KEYS", "spread::*"])) as string[]));
    expect(left.flat()).toEqual([]);
    expect(await other.get("k1")).toBe("kept"); // another namespace is untouched
  });
});
