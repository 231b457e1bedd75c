// Pub/sub on a cluster (issue 10), on a real 3-master / 3-replica cluster
// (test/support/redis-cluster.ts) and both transports:
// - subscribe / psubscribe on one subscriber connection to one node (a
//   PUBLISH reaches every node); ssubscribe at each channel's slot owner;
// - after kill -9 of the master holding the subscriber and a shard channel's
//   slot, both are resubscribed on live masters and messages resume;
// - after a slot migration (the source ends the shard subscription with an
//   unsolicited sunsubscribe), the channel is subscribed at the new owner;
// - unsubscribing everything closes the per-node shard connections.
// Tests run in order and leave the cluster whole for the next.
import { describe, expect, it } from "vitest";
import { ClientClosedError, keySlot, type ClusterClient, type TransportKind } from "../../src/index.js";
import { useCluster } from "../support/cluster-suite.js";
import type { RedisClusterNode } from "../support/redis-cluster.js";
import { waitFor } from "../support/wait.js";

const TRANSPORTS: TransportKind[] = ["pipelined", "pooled"];
const CLIENT_NAME = "respite-pubsub-test";
const TEST_TIMEOUT_MS = 60_000;

const suite = useCluster();
const connectCluster = (transport: TransportKind): ClusterClient =>
  suite.connect(transport, { clientName: CLIENT_NAME, commandTimeoutMs: 5000 });

/** Messages as they arrive; next(n) waits (bounded) until n have arrived in total. */
function inbox(): { items: string[]; listener: (message: string, channel: string) => void; next(count: number): Promise<string[]> } {
  const items: string[] = [];
  return {
    items,
    listener: (message, channel) => items.push(`${channel}=${message}`),
    async next(count) {
      await waitFor(() => items.length >= count, 10_000);
      return items.slice(0, count);
    },
  };
}

/** Shard channel names, one per master, each on a slot that master owns now. */
async function channelPerMaster(prefix: string): Promise<Map<RedisClusterNode, string>> {
  const masters = await suite.cluster.masters();
  const byMaster = new Map<RedisClusterNode, string>();
  for (let i = 0; byMaster.size < masters.length; i++) {
    const name = `${prefix}:${i}`;
    const owner = await suite.cluster.masterOf(keySlot(name));
    if (!byMaster.has(owner)) byMaster.set(owner, name);
  }
  return byMaster;
}

async function shardNumsub(node: RedisClusterNode, channel: string): Promise<number> {
  return (await node.admin(["PUBSUB", "SHARDNUMSUB", channel]) as [string, number])[1];
}

/** The node whose CLIENT LIST shows our channel/pattern subscriber (a pubsub connection with psub or sub > 0 and no ssub). */
async function globalSubscriberNode(): Promise<RedisClusterNode> {
  for (const n of suite.cluster.nodes.filter((x) => x.running)) {
    const list = String(await n.admin(["CLIENT", "LIST", "TYPE", "pubsub"]));
    if (list.split("\n").some((l) => l.includes(`name=${CLIENT_NAME}`) && /\bssub=0\b/.test(l) && !/\bsub=0 psub=0\b/.test(l))) return n;
  }
  throw new Error("no node holds the channel subscriber");
}

function once<T>(c: ClusterClient, event: "resubscribed", match: (info: T) => boolean): Promise<T> {
  return new Promise<T>((resolve) => {
    const on = (info: T): void => {
      if (!match(info)) return;
      c.off(event, on as never);
      resolve(info);
    };
    c.on(event, on as never);
  });
}

describe.each(TRANSPORTS)("cluster pub/sub, %s transport", (transport) => {
  it("subscribe and psubscribe on one node get PUBLISH from any node; ssubscribe lives at each slot's owner", { timeout: TEST_TIMEOUT_MS }, async () => {
    const c = connectCluster(transport);
    const plain = inbox();
    const shard = inbox();
    const p = `${transport}:basic`;
    await c.subscribe(`${p}:news`, plain.listener);
    await c.psubscribe(`${p}:pat:*`, (message, channel, pattern) => plain.items.push(`${pattern}|${channel}=${message}`));
    const perMaster = await channelPerMaster(`${p}:s`);
    const shardChannels = [...perMaster.values()];
    await c.ssubscribe(shardChannels, shard.listener); // spans three slots and three masters
    expect(c.subscriptions).toEqual({ channels: [`${p}:news`], patterns: [`${p}:pat:*`], shardChannels });

    // Each shard channel is subscribed at its owner only.
    for (const [owner, ch] of perMaster) {
      for (const n of suite.cluster.nodes) expect(await shardNumsub(n, ch)).toBe(n === owner ? 1 : 0);
    }
    // PUBLISH on every master (the cluster bus forwards it to our one subscriber).
    const masters = await suite.cluster.masters();
    for (const [i, m] of masters.entries()) await m.admin(["PUBLISH", `${p}:news`, `n${i}`]);
    await c.command(["PUBLISH", `${p}:pat:x`, "via pattern"]);
    for (const ch of shardChannels) expect(await c.command(["SPUBLISH", ch, "hello"])).toBe(1);
    // Messages published on different nodes reach the subscriber's node over the cluster bus in no fixed order.
    expect((await plain.next(4)).sort()).toEqual([`${p}:news=n0`, `${p}:news=n1`, `${p}:news=n2`, `${p}:pat:*|${p}:pat:x=via pattern`].sort());
    expect((await shard.next(3)).sort()).toEqual(shardChannels.map((ch) => `${ch}=hello`).sort());

    // Unsubscribing everything closes the shard connections; the channel subscriber stays for what is left.
    await c.sunsubscribe();
    await c.punsubscribe();
    expect(c.subscriptions).toEqual({ channels: [`${p}:news`], patterns: [], shardChannels: [] });
    for (const ch of shardChannels) expect(await c.command(["SPUBLISH", ch, "gone"])).toBe(0);
    await waitFor(
      async () => {
        let ssubs = 0;
        for (const n of suite.cluster.nodes) {
          const list = String(await n.admin(["CLIENT", "LIST", "TYPE", "pubsub"]));
          ssubs += list.split("\n").filter((l) => l.includes(`name=${CLIENT_NAME}`) && /\bsub=0 psub=0 ssub=0\b/.test(l)).length;
        }
        return ssubs === 0;
      },
      5000,
    );
    await c.close();
    await expect(c.subscribe(`${p}:news`, () => undefined)).rejects.toBeInstanceOf(ClientClosedError);
    await expect(c.ssubscribe([], () => undefined)).rejects.toBeInstanceOf(ClientClosedError);
  });

  it("subscribing again after unsubscribing is a fresh subscription, not a resubscription", { timeout: TEST_TIMEOUT_MS }, async () => {
    const c = connectCluster(transport);
    const events: unknown[] = [];
    c.on("resubscribed", (info) => events.push(info));
    const shard = inbox();
    const ch = `${transport}:again:s`;
    await c.ssubscribe(ch, shard.listener);
    await c.sunsubscribe(ch);
    await c.ssubscribe(ch, shard.listener);
    expect(await c.command(["SPUBLISH", ch, "once"])).toBe(1);
    expect(await shard.next(1)).toEqual([`${ch}=once`]);
    expect(events).toEqual([]);
  });

  it("rejects bad input with a TypeError and subscribes nothing", { timeout: TEST_TIMEOUT_MS }, async () => {
    const c = connectCluster(transport);
    await expect(c.ssubscribe([], () => undefined)).rejects.toBeInstanceOf(TypeError);
    await expect(c.ssubscribe([""], () => undefined)).rejects.toBeInstanceOf(TypeError);
    await expect(c.ssubscribe("x", "not a function" as never)).rejects.toBeInstanceOf(TypeError);
    expect(c.subscriptions).toEqual({ channels: [], patterns: [], shardChannels: [] });
  });

  it("after kill -9 of the master holding the subscriber and a shard channel, both resubscribe on live masters", { timeout: TEST_TIMEOUT_MS }, async () => {
    const c = connectCluster(transport);
    const plain = inbox();
    const shard = inbox();
    const p = `${transport}:failover`;
    await c.subscribe(`${p}:news`, plain.listener);
    const victim = await globalSubscriberNode();
    const perMaster = await channelPerMaster(`${p}:s`);
    const ch = perMaster.get(victim) as string;
    await c.ssubscribe(ch, shard.listener);
    expect(await shardNumsub(victim, ch)).toBe(1);

    const channelBack = once<{ channels: string[] }>(c, "resubscribed", (i) => i.channels.length > 0);
    const shardBack = once<{ shardChannels: string[] }>(c, "resubscribed", (i) => i.shardChannels.includes(ch));
    const f = await suite.cluster.killMaster(keySlot(ch));
    expect(f.old).toBe(victim);
    expect(await channelBack).toEqual({ channels: [`${p}:news`], patterns: [], shardChannels: [] });
    expect(await shardBack).toEqual({ channels: [], patterns: [], shardChannels: [ch] });
    console.log(`[cluster] ${transport}: pub/sub resubscribed ${Date.now() - f.startedAt} ms after kill -9 (failover done after ${f.doneAt - f.startedAt} ms)`);

    expect(await shardNumsub(f.promoted, ch)).toBe(1);
    expect(await c.command(["SPUBLISH", ch, "after"])).toBe(1);
    await c.command(["PUBLISH", `${p}:news`, "after"]);
    expect(await shard.next(1)).toEqual([`${ch}=after`]);
    expect(await plain.next(1)).toEqual([`${p}:news=after`]);

    await f.old.restart();
    await suite.cluster.waitHealthy();
    // The old master came back as a replica: the shard channel stays at the promoted master.
    expect(await shardNumsub(f.promoted, ch)).toBe(1);
    expect(await c.command(["SPUBLISH", ch, "later"])).toBe(1);
    expect(await shard.next(2)).toEqual([`${ch}=after`, `${ch}=later`]);
  });

  it("a shard channel follows its slot when it migrates (the source ends it; it is subscribed at the target)", { timeout: TEST_TIMEOUT_MS }, async () => {
    const c = connectCluster(transport);
    const shard = inbox();
    const ch = `${transport}:migrate:s`;
    const slot = keySlot(ch);
    await c.ssubscribe(ch, shard.listener);
    const source = await suite.cluster.masterOf(slot);
    const target = (await suite.cluster.masters()).find((m) => m !== source) as RedisClusterNode;
    expect(await shardNumsub(source, ch)).toBe(1);

    const back = once<{ shardChannels: string[] }>(c, "resubscribed", (i) => i.shardChannels.includes(ch));
    await suite.cluster.migrateSlot(slot, target);
    expect(await back).toEqual({ channels: [], patterns: [], shardChannels: [ch] });
    expect(await shardNumsub(target, ch)).toBe(1);
    expect(await shardNumsub(source, ch)).toBe(0);
    expect(await c.command(["SPUBLISH", ch, "moved"])).toBe(1);
    expect(await shard.next(1)).toEqual([`${ch}=moved`]);

    await suite.cluster.migrateSlot(slot, source); // leave the cluster as it was
    await waitFor(async () => (await shardNumsub(source, ch)) === 1, 10_000);
    expect(await c.command(["SPUBLISH", ch, "home"])).toBe(1);
    expect(await shard.next(2)).toEqual([`${ch}=moved`, `${ch}=home`]);
  });
});
