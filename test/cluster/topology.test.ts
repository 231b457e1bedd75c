// Cluster (issue 10): slot hashing, topology parsing and redirection parsing,
// without a server.
import { describe, expect, it } from "vitest";
import { CrossSlotError, keySlot } from "../../src/index.js";
import { commandSlot, groupBySlot } from "../../src/cluster/slots.js";
import { parseRedirect, parseShards, parseSlots } from "../../src/cluster/topology.js";

describe("key slots", () => {
  it("matches the Redis Cluster spec (CRC16 mod 16384, hash tags)", () => {
    expect(keySlot("123456789")).toBe(12739);
    expect(keySlot("foo")).toBe(12182);
    expect(keySlot("user:{42}:name")).toBe(keySlot("42"));
    // Empty first tag ("{}"): the whole key hashes, so "{}x" is not "x".
    // Expected values from `redis-cli CLUSTER KEYSLOT` on redis-server 7.0.
    expect(keySlot("{}x")).toBe(10595);
    expect(keySlot("x")).toBe(16287);
    expect(keySlot("{}")).toBe(15257);
    // Only the first tag counts, and it ends at the first "}".
    expect(keySlot("foo{bar}{zap}")).toBe(5061);
    expect(keySlot("bar")).toBe(5061);
    expect(keySlot("foo{{bar}}zap")).toBe(4015); // tag is "{bar"
    expect(keySlot("{bar")).toBe(4015); // no closing brace: whole key
    expect(keySlot("}{foo}")).toBe(12182); // a "}" before the "{" is not a tag end
    expect(keySlot("{user1000}.following")).toBe(3443);
    expect(keySlot("user1000")).toBe(3443);
    expect(keySlot(Buffer.from("foo"))).toBe(12182);
    expect(keySlot(42)).toBe(keySlot("42"));
  });

  // cluster-key-slot alone gets this wrong ("foo{}{bar}" -> 4015, the slot of "{bar"): keySlot handles it.
  it("hashes the whole key when the first tag is empty, even if a later \"}\" follows", () => {
    expect(keySlot("foo{}{bar}")).toBe(8363);
    expect(keySlot("{}{foo}")).toBe(2263);
  });

  it("routes a command by its keys and rejects one spanning slots before sending", () => {
    expect(commandSlot(["PING"])).toBeUndefined();
    expect(commandSlot(["GET", "foo"])).toBe(12182);
    expect(commandSlot(["MSET", "{t}a", "1", "{t}b", "2"])).toBe(keySlot("t"));
    expect(commandSlot(["EVAL", "return 1", 2, "{t}a", "{t}b", "notakey"])).toBe(keySlot("t"));
    let error: unknown;
    try {
      commandSlot(["MGET", "a", "b", "a"]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CrossSlotError);
    expect((error as CrossSlotError).slots).toEqual([keySlot("a"), keySlot("b")]);
    expect((error as CrossSlotError).maybeExecuted).toBe(false);
    expect((error as CrossSlotError).code).toBe("ERR_RESPITE_CROSSSLOT");
  });

  it("groups keys by slot in first-seen order", () => {
    const groups = groupBySlot(["a", "b", "{a}x", "c"]);
    expect([...groups.values()]).toEqual([[0, 2], [1], [3]]);
  });
});

describe("topology", () => {
  it("parses CLUSTER SHARDS, skipping failed nodes and empty shards", () => {
    const node = (port: number, role: string, health = "online"): unknown[] => ["id", `id${port}`, "port", port, "ip", "10.0.0.1", "endpoint", "10.0.0.1", "role", role, "replication-offset", 1, "health", health];
    const topo = parseShards(
      [
        ["slots", [0, 99, 200, 299], "nodes", [node(7000, "master"), node(7003, "replica"), node(7006, "replica", "fail")]],
        ["slots", [100, 199], "nodes", [node(7001, "replica", "fail"), node(7004, "master")]],
        ["slots", [], "nodes", [node(7009, "master", "fail")]],
      ] as never,
      false,
      "127.0.0.1",
    );
    expect(topo.shards).toHaveLength(2);
    expect(topo.slots[0]?.master).toBe("10.0.0.1:7000");
    expect(topo.slots[250]?.replicas).toEqual(["10.0.0.1:7003"]);
    expect(topo.slots[150]?.master).toBe("10.0.0.1:7004");
    expect(topo.slots[150]?.replicas).toEqual([]);
    expect(topo.slots[300]).toBeUndefined();
  });

  it("parses CLUSTER SLOTS, an unknown endpoint meaning the host we asked", () => {
    const topo = parseSlots(
      [
        [0, 5460, ["", 7000, "a"], ["127.0.0.1", 7003, "d"]],
        [5461, 16383, ["?", 7001, "b"]],
      ] as never,
      "192.168.1.5",
    );
    expect(topo.slots[0]?.master).toBe("192.168.1.5:7000");
    expect(topo.slots[0]?.replicas).toEqual(["127.0.0.1:7003"]);
    expect(topo.slots[16383]?.master).toBe("192.168.1.5:7001");
  });

  it("parses MOVED and ASK", () => {
    expect(parseRedirect("MOVED 3999 127.0.0.1:6381", "h")).toEqual({ slot: 3999, to: "127.0.0.1:6381" });
    expect(parseRedirect("ASK 1 :6381", "h")).toEqual({ slot: 1, to: "h:6381" });
    expect(parseRedirect("MOVED 1 ::1:6381", "h")).toEqual({ slot: 1, to: "::1:6381" });
    expect(parseRedirect("MOVED x", "h")).toBeUndefined();
  });
});
