// Load and observation helpers for the Sentinel tests (issue 11).
//
// startLoad: K callers, each looping SET k:{i} "{i}:{seq}" then GET k:{i}.
// Every reply is checked against what that caller may legitimately see
// (crossed replies: another caller's value, or a reply shaped for another
// command), every promise is counted in and out (unsettled), and the longest
// stretch without any successful reply after fault() is the pause.
//
// startMonitor: MONITOR on a raw socket, each line stamped with its arrival
// time, to prove which writes a node executed.
import net from "node:net";
import type { Client, RedisError } from "../../src/index.js";
import { writeCommand } from "../support/resp-writer.js";

export interface SetRecord {
  caller: number;
  seq: number;
  value: string;
  issuedAt: number;
  outcome: "pending" | "ok" | "rejected";
  error?: RedisError;
}

export interface LoadReport {
  ok: number;
  crossed: string[];
  unsettled: number;
  /** Longest time without a successful reply, measured from fault() on. */
  pauseMs: number;
  /** Time from fault() to the first successful reply after it. */
  firstOkAfterFaultMs: number;
  sets: Map<string, SetRecord>;
  setRejections: SetRecord[];
  getRejections: RedisError[];
  /** Per caller, the value of its last acknowledged SET and whether a later SET's fate is unknown. */
  lastAcked: { value: string | undefined; unknownAfter: boolean }[];
}

export interface Load {
  readonly ok: number;
  readonly okSinceFault: number;
  /** Time of the first successful reply to a command issued after fault() (plus a grace), if any. */
  readonly firstOkAfterFault: number | undefined;
  fault(): void;
  stop(waitMs?: number): Promise<LoadReport>;
}

/** A command issued this long after fault() cannot have been answered by the node the fault hit. */
const FAULT_GRACE_MS = 50;

export function keyOf(caller: number): string {
  return `sentinel-load:${caller}`;
}

export function startLoad(client: Client, callers: number): Load {
  let stopped = false;
  let started = 0;
  let settled = 0;
  let ok = 0;
  let okSinceFault = 0;
  let faultAt: number | undefined;
  let firstOkAfterFault: number | undefined;
  let lastOk = Date.now();
  let pauseMs = 0;
  const crossed: string[] = [];
  const sets = new Map<string, SetRecord>();
  const setRejections: SetRecord[] = [];
  const getRejections: RedisError[] = [];
  const lastAcked = Array.from({ length: callers }, () => ({ value: undefined as string | undefined, unknownAfter: false }));

  const success = (issuedAt: number): void => {
    const now = Date.now();
    ok++;
    if (faultAt !== undefined) {
      okSinceFault++;
      // Replies already on their way when the fault struck do not count as "served again".
      if (issuedAt >= faultAt + FAULT_GRACE_MS) firstOkAfterFault ??= now;
      // Successes are continuous before the fault: the longest gap after it spans the outage.
      pauseMs = Math.max(pauseMs, now - lastOk);
    }
    lastOk = now;
  };

  const loop = async (caller: number): Promise<void> => {
    const key = keyOf(caller);
    let seq = 0;
    // Pipelined callers move in lock-step (one write, one chunk of replies):
    // odd callers start with a GET so every batch in flight holds writes.
    if (caller % 2 === 1) {
      started++;
      await client.command(["GET", key]).then(
        () => settled++,
        () => settled++,
      );
    }
    while (!stopped) {
      seq++;
      const value = `${caller}:${seq}`;
      const rec: SetRecord = { caller, seq, value, issuedAt: Date.now(), outcome: "pending" };
      sets.set(value, rec);
      started++;
      try {
        const reply = await client.command(["SET", key, value]);
        settled++;
        if (reply !== "OK") crossed.push(`SET ${key} got ${JSON.stringify(reply)}`);
        rec.outcome = "ok";
        lastAcked[caller] = { value, unknownAfter: false };
        success(rec.issuedAt);
      } catch (err) {
        settled++;
        rec.outcome = "rejected";
        rec.error = err as RedisError;
        setRejections.push(rec);
        if ((err as RedisError).maybeExecuted) (lastAcked[caller] as { unknownAfter: boolean }).unknownAfter = true;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      started++;
      const getIssuedAt = Date.now();
      try {
        const reply = await client.command(["GET", key]);
        settled++;
        // After a failover a GET may see an older value of its own key (async
        // replication), never another caller's and never a future one.
        const mine = typeof reply === "string" && reply.startsWith(`${caller}:`) && Number(reply.slice(reply.indexOf(":") + 1)) <= seq;
        if (reply !== null && !mine) crossed.push(`GET ${key} got ${JSON.stringify(reply)}`);
        success(getIssuedAt);
      } catch (err) {
        settled++;
        getRejections.push(err as RedisError);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  const loops = Array.from({ length: callers }, (_, i) => loop(i));

  return {
    get ok() {
      return ok;
    },
    get okSinceFault() {
      return okSinceFault;
    },
    get firstOkAfterFault() {
      return firstOkAfterFault;
    },
    fault() {
      faultAt = Date.now();
    },
    async stop(waitMs = 15_000) {
      stopped = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(loops), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
      return {
        ok,
        crossed,
        unsettled: started - settled,
        pauseMs,
        firstOkAfterFaultMs: faultAt !== undefined && firstOkAfterFault !== undefined ? firstOkAfterFault - faultAt : NaN,
        sets,
        setRejections,
        getRejections,
        lastAcked,
      };
    },
  };
}

export interface MonitorLine {
  /** Date.now() scale: when the server ran the command. */
  at: number;
  args: string[];
}

export interface Monitor {
  readonly lines: MonitorLine[];
  close(): void;
}

/** Parse the quoted arguments of one MONITOR line: 123.456 [0 127.0.0.1:5555] "SET" "k" "v". */
function monitorArgs(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line)) !== null) out.push((m[1] as string).replace(/\\(.)/g, "$1"));
  return out;
}

/**
 * When the server ran the command: the line's own timestamp (+1700000000.123456 ...).
 * Not when the line reached us: a master SIGSTOPped between sending a reply
 * and feeding MONITOR delivers the line only after SIGCONT, for a command it
 * ran (and answered) before the pause.
 */
function executedAt(line: string): number | undefined {
  const ts = /^\+(\d+)\.(\d+) /.exec(line);
  return ts === null ? undefined : Number(ts[1]) * 1000 + Math.floor(Number(`0.${ts[2]}`) * 1000);
}

/** MONITOR on `port` (after AUTH); resolves once the server confirmed. */
export function startMonitor(port: number, password: string | undefined): Promise<Monitor> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const lines: MonitorLine[] = [];
    let buffer = "";
    let confirmed = false;
    let okCount = 0;
    const expectedOks = password === undefined ? 1 : 2;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`MONITOR on ${port} not confirmed`));
    }, 3000);
    socket.on("error", (err) => {
      clearTimeout(timer);
      if (!confirmed) reject(err);
    });
    socket.on("data", (chunk: Buffer) => {
      const at = Date.now();
      buffer += chunk.toString("utf8");
      let i: number;
      while ((i = buffer.indexOf("\r\n")) !== -1) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (line.startsWith("-")) {
          clearTimeout(timer);
          socket.destroy();
          reject(new Error(`MONITOR on ${port}: ${line}`));
          return;
        }
        if (line === "+OK" && !confirmed) {
          // One +OK for AUTH (when sent), one for MONITOR.
          okCount++;
          if (okCount === expectedOks) {
            confirmed = true;
            clearTimeout(timer);
            resolve({ lines, close: () => socket.destroy() });
          }
          continue;
        }
        if (confirmed && line.startsWith("+")) lines.push({ at: executedAt(line) ?? at, args: monitorArgs(line) });
      }
    });
    if (password !== undefined) socket.write(writeCommand(["AUTH", password]));
    socket.write(writeCommand(["MONITOR"]));
  });
}
