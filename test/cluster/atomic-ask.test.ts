// Atomic batches during a slot migration (issue 10), on a real 3-master /
// 3-replica cluster (test/support/redis-cluster.ts) and both transports. The
// harness' migrateSlot puts the slot in IMPORTING/MIGRATING state and moves
// its keys; its onStep hook runs the batches at each stage:
// - before any key moved: the transaction runs on the owner, no ASK;
// - its key moved: the owner answers ASK, and the transaction goes once to
//   the target as ASKING, MULTI, the commands, EXEC on one socket (no
//   backoff, no change to the slot table), and runs there exactly once;
// - its keys split between the two nodes: TRYAGAIN, backoff and retry at the
//   owner until the migration moved the rest, then it runs exactly once.
import { describe, expect, it } from "vitest";
import { keySlot, type ClusterClient, type TransportKind } from "../../src/index.js";
import { useCluster } from "../support/cluster-suite.js";
import { parseInfo, type RedisClusterNode } from "../support/redis-cluster.js";
import { waitFor } from "../support/wait.js";

const TRANSPORTS: TransportKind[] = ["pipelined", "pooled"];
const BATCH_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = 60_000;

const suite = useCluster();
const connectCluster = (transport: TransportKind): ClusterClient => suite.connect(transport, { commandTimeoutMs: BATCH_TIMEOUT_MS });

/** Executed (not rejected) calls of one command on a node (INFO commandstats). */
async function executed(node: RedisClusterNode, command: string): Promise<number> {
  const line = parseInfo(await node.admin(["INFO", "commandstats"]))[`cmdstat_${command}`];
  if (line === undefined) return 0;
  const fields = Object.fromEntries(line.split(",").map((kv) => kv.split("=") as [string, string]));
  return Number(fields.calls ?? 0);
}

/** A fresh hash tag (unused slot for this file), its slot, the slot's owner and another master. */
async function pickSlot(prefix: string): Promise<{ tag: string; slot: number; source: RedisClusterNode; target: RedisClusterNode }> {
  const masters = await suite.cluster.masters();
  const tag = `${prefix}-${Date.now()}`;
  const slot = keySlot(tag);
  const source = await suite.cluster.masterOf(slot);
  const target = masters.find((m) => m.id !== source.id) as RedisClusterNode;
  return { tag, slot, source, target };
}

type Counters = { ask: number; moved: number; tryAgain: number; clusterDown: number };

function counters(c: ClusterClient): Counters {
  const { ask, moved, tryAgain, clusterDown } = c.stats();
  return { ask, moved, tryAgain, clusterDown };
}

describe.each(TRANSPORTS)("atomic batch during a slot migration, %s transport", (transport) => {
  it(
    "runs on the owner before its key moved, and once on the ASK target (ASKING + MULTI) after",
    async () => {
      const c = connectCluster(transport);
      await c.connect();
      const { tag, slot, source, target } = await pickSlot(`${transport}-ask`);
      const k = `{${tag}}:counter`;
      expect(await c.set(k, "1")).toBe("OK");
      const redirects: { kind: string; slot: number; from: string; to: string }[] = [];
      c.on("redirect", (info) => redirects.push(info));
      const batch = [["INCR", k], ["GET", k]] as const;

      // Each stage's observations, asserted once the migration is over (a
      // throw inside onStep would leave the slot half migrated).
      let notMoved: { results: unknown; before: Counters; after: Counters; sourceIncr: number; targetIncr: number; owner: string | undefined } | undefined;
      let moved: {
        results: unknown;
        before: Counters;
        after: Counters;
        sourceIncr: number;
        targetIncr: number;
        targetExec: number;
        owner: string | undefined;
        sourceKeys: unknown;
        targetKeys: unknown;
        ms: number;
      } | undefined;

      await suite.cluster.migrateSlot(slot, target, {
        firstKeys: [k],
        onStep: async (step) => {
          if (step === "migrating" && notMoved === undefined) {
            // IMPORTING/MIGRATING set, the key still on the owner.
            const before = counters(c);
            const [s0, t0] = [await executed(source, "incr"), await executed(target, "incr")];
            const results = await c.batch([...batch], { atomic: true, timeoutMs: BATCH_TIMEOUT_MS });
            notMoved = {
              results,
              before,
              after: counters(c),
              sourceIncr: (await executed(source, "incr")) - s0,
              targetIncr: (await executed(target, "incr")) - t0,
              owner: c.masterOf(slot),
            };
          } else if (step === "migrated-batch" && moved === undefined) {
            // The key is on the target now; the slot still belongs to the source.
            const before = counters(c);
            const [s0, t0, e0] = [await executed(source, "incr"), await executed(target, "incr"), await executed(target, "exec")];
            const startedAt = Date.now();
            const results = await c.batch([...batch], { atomic: true, timeoutMs: BATCH_TIMEOUT_MS });
            const ms = Date.now() - startedAt;
            moved = {
              results,
              before,
              after: counters(c),
              sourceIncr: (await executed(source, "incr")) - s0,
              targetIncr: (await executed(target, "incr")) - t0,
              targetExec: (await executed(target, "exec")) - e0,
              owner: c.masterOf(slot),
              sourceKeys: await source.admin(["CLUSTER", "COUNTKEYSINSLOT", slot]),
              targetKeys: await target.admin(["CLUSTER", "COUNTKEYSINSLOT", slot]),
              ms,
            };
          }
        },
      });

      // Not moved yet: ran on the owner, no redirection at all.
      expect(notMoved).toBeDefined();
      expect(notMoved?.results).toEqual([2, "2"]);
      expect(notMoved?.after).toEqual(notMoved?.before);
      expect(notMoved?.sourceIncr).toBe(1);
      expect(notMoved?.targetIncr).toBe(0);
      expect(notMoved?.owner).toBe(source.address);

      // Moved: one ASK, followed at once to the target, where it ran once.
      expect(moved).toBeDefined();
      const m = moved as NonNullable<typeof moved>;
      expect(m.results).toEqual([3, "3"]);
      expect(m.after).toEqual({ ...m.before, ask: m.before.ask + 1 });
      expect(m.sourceIncr).toBe(0);
      expect(m.targetIncr).toBe(1);
      expect(m.targetExec).toBe(1);
      expect(m.sourceKeys).toBe(0);
      expect(m.targetKeys).toBe(1);
      // ASK changes nothing in the slot table.
      expect(m.owner).toBe(source.address);
      expect(redirects).toEqual([{ kind: "ask", slot, from: source.address, to: target.address }]);
      console.log(`[cluster] ${transport}: atomic batch answered ASK ran on ${target.address} in ${m.ms} ms`);

      // After the migration: MOVED as before, and the value was incremented exactly twice in all.
      expect(await target.admin(["GET", k])).toBe("3");
      expect(await c.batch([...batch], { atomic: true, timeoutMs: BATCH_TIMEOUT_MS })).toEqual([4, "4"]);
      expect(c.masterOf(slot)).toBe(target.address);
      expect(await target.admin(["GET", k])).toBe("4");
      await suite.cluster.waitHealthy();
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "waits out TRYAGAIN (keys split between the nodes) and runs once when the migration is done",
    async () => {
      const c = connectCluster(transport);
      await c.connect();
      const { tag, slot, source, target } = await pickSlot(`${transport}-split`);
      const [a, b] = [`{${tag}}:a`, `{${tag}}:b`];
      expect(await c.mset({ [a]: "10", [b]: "20" })).toBe("OK");
      const before = counters(c);
      let pending: Promise<unknown> | undefined;
      await suite.cluster.migrateSlot(slot, target, {
        firstKeys: [a],
        onStep: async (step) => {
          if (step !== "migrated-batch" || pending !== undefined) return;
          // a on the target, b on the source: the transaction cannot run anywhere yet.
          pending = c.batch(
            [
              ["INCR", a],
              ["INCR", b],
            ],
            { atomic: true, timeoutMs: BATCH_TIMEOUT_MS },
          );
          pending.catch(() => undefined);
          // Told TRYAGAIN (at the ASK target, or the owner): it waits and retries at the owner.
          await waitFor(() => c.stats().tryAgain > before.tryAgain, 5_000);
        },
      });
      expect(pending).toBeDefined();
      expect(await pending).toEqual([11, 21]);
      expect(c.stats().tryAgain).toBeGreaterThan(before.tryAgain);
      // Each key incremented exactly once, both on the target.
      expect(await target.admin(["MGET", a, b])).toEqual(["11", "21"]);
      expect(await source.admin(["CLUSTER", "COUNTKEYSINSLOT", slot])).toBe(0);
      await suite.cluster.waitHealthy();
    },
    TEST_TIMEOUT_MS,
  );
});
