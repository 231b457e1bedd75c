// close(), close({ timeoutMs }) and destroy() in every state of each
// connection owner, deterministically: each case drives a Client into the
// state with a short fixed schedule, calls the operation there, and runs the
// rest of the simulation's checks (every promise settles once, close()
// resolves after what was accepted, nothing remains, no dial after it...).
// The random schedules reach these states too (the property prints how
// often); these cases make sure each one is reached on every run.
import { describe, expect, it, vi } from "vitest";

vi.mock("node:net", async (orig) => (await import("./mocks.js")).mockNet(await orig()));
vi.mock("../../src/request.js", async (orig) => (await import("./mocks.js")).mockRequest(await orig()));

import { ClientWorld, SubscriberWorld } from "./harness.js";
import type { Action, SimConfig } from "./schedule.js";

const config = (transport: SimConfig["transport"], lazyConnect: boolean): SimConfig => ({
  transport,
  lazyConnect,
  commandTimeoutMs: 0,
  connectTimeoutMs: 500,
  reconnect: { initialDelayMs: 50, maxDelayMs: 400, maxAttempts: Number.POSITIVE_INFINITY },
  maxPending: 10,
  offlineQueue: 10,
  retryReadOnly: true,
  pool: { min: 0, max: 2, acquireTimeoutMs: 1000, idleTimeoutMs: 0 },
  healthCheckIntervalMs: 0,
  protocol: 3,
  serverHello: true,
  randomSeed: 11,
});

const operations: { name: string; action: Action }[] = [
  { name: "close()", action: { t: "close" } },
  { name: "close({ timeoutMs: 100 })", action: { t: "close", timeoutMs: 100 } },
  { name: "destroy()", action: { t: "destroy" } },
];

const label = (a: Action): string => (a.t === "destroy" ? "destroy" : a.t === "close" && a.timeoutMs !== undefined ? "close(timeout)" : "close");

/** How to reach each client status, and whether the client is lazy. */
const clientStates: { status: string; lazy: boolean; before: Action[] }[] = [
  { status: "idle", lazy: true, before: [] },
  { status: "connecting", lazy: true, before: [{ t: "dial", mode: "hang" }, { t: "cmd", op: "echo" }] },
  { status: "ready", lazy: false, before: [{ t: "advance", ms: 1 }, { t: "cmd", op: "get" }] },
  { status: "reconnecting", lazy: false, before: [{ t: "advance", ms: 1 }, { t: "dial", mode: "refuse" }, { t: "kill", rst: false }, { t: "cmd", op: "set" }] },
  { status: "closing", lazy: false, before: [{ t: "advance", ms: 1 }, { t: "freeze" }, { t: "cmd", op: "echo" }, { t: "close" }] },
  { status: "closed", lazy: false, before: [{ t: "advance", ms: 1 }, { t: "close" }, { t: "advance", ms: 10 }] },
];

describe("close() and destroy() in every state", () => {
  for (const transport of ["pipelined", "pooled"] as const) {
    for (const st of clientStates) {
      for (const op of operations) {
        it(`${transport}: ${op.name} while ${st.status}`, async () => {
          const w = new ClientWorld(config(transport, st.lazy), false);
          const actions = [...st.before, op.action, { t: "unfreeze" } as Action, { t: "advance", ms: 2000 } as Action];
          const r = await w.run(actions);
          const ours = st.before.filter((a) => a.t === "close" || a.t === "destroy").length;
          expect(r.closeStates[ours]).toBe(`${label(op.action)}@${st.status}`);
        });
      }
    }
  }

  const subscriberStates: { state: string; before: Action[] }[] = [
    { state: "none", before: [] },
    { state: "connecting", before: [{ t: "dial", mode: "hang" }, { t: "subscribe", ch: 0 }] },
    { state: "ready", before: [{ t: "subscribe", ch: 0 }, { t: "advance", ms: 1 }, { t: "publish", ch: 0 }] },
    { state: "backoff", before: [{ t: "subscribe", ch: 0 }, { t: "advance", ms: 1 }, { t: "dial", mode: "refuse" }, { t: "kill", rst: false }] },
    { state: "idle", before: [{ t: "subscribe", ch: 0 }, { t: "advance", ms: 1 }, { t: "unsubscribe", ch: 0 }, { t: "advance", ms: 1 }, { t: "kill", rst: false }] },
    { state: "closed", before: [{ t: "subscribe", ch: 0 }, { t: "advance", ms: 1 }, { t: "destroy" }] },
  ];
  for (const st of subscriberStates) {
    for (const op of [operations[0], operations[2]] as { name: string; action: Action }[]) {
      it(`subscriber: ${op.name} while ${st.state}`, async () => {
        const w = new SubscriberWorld(config("pipelined", true), false);
        const r = await w.run([...st.before, op.action, { t: "advance", ms: 2000 }]);
        const ours = st.before.filter((a) => a.t === "close" || a.t === "destroy").length;
        expect(r.closeStates[ours]).toBe(`${op.action.t}@${st.state}`);
      });
    }
  }
});
