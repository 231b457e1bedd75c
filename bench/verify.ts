// Before a client is measured it must prove it returns the right data: small
// and 100 KiB values, a missing key, MGET, SET EX, an error reply that must
// not desync what follows, and many concurrent GETs whose replies must each
// reach the right caller. A client that fails is excluded from the run.
// On a cluster the MGET check is left out (its keys span slots, which the
// anchors reject with CROSSSLOT); the concurrent GETs cover every master.
import type { BenchClient } from "./clients.js";
import { BIG_KEY, describeReply, key, replyMatches, smallValue, type Expected, type RawCommand } from "./workloads.js";

const VERIFY_TIMEOUT_MS = 15_000;

async function expectReply(client: BenchClient, cmd: RawCommand, expected: Expected): Promise<void> {
  const reply = await client.send(cmd);
  if (!replyMatches(reply, expected)) {
    throw new Error(`${cmd[0]} ${cmd[1] ?? ""} returned ${describeReply(reply)}, expected ${describeReply(expected)}`);
  }
}

export function probeKey(name: string): string {
  return `bench:verify:${name}`;
}

export interface VerifyOptions {
  /** Send the 10-key MGET (single node only: on a cluster its keys span slots). Default true. */
  mget?: boolean;
}

async function checks(client: BenchClient, big: string, options: VerifyOptions): Promise<void> {
  const probe = probeKey(client.name);
  await expectReply(client, ["SET", probe, "0123456789abcdef"], "OK");
  await expectReply(client, ["GET", probe], "0123456789abcdef");
  await expectReply(client, ["GET", "bench:verify:missing"], null);
  await expectReply(client, ["GET", BIG_KEY], big);
  if (options.mget !== false) {
    const mget: RawCommand = ["MGET"];
    const values: Expected[] = [];
    for (let i = 0; i < 10; i++) {
      mget.push(key(i));
      values.push(smallValue(i));
    }
    await expectReply(client, mget, values);
  }
  await expectReply(client, ["SET", key(1), smallValue(1), "EX", "3600"], "OK");

  // An error reply must reject that call only, and leave the connection in step.
  let rejected = false;
  try {
    await client.send(["INCR", key(2)]);
  } catch {
    rejected = true;
  }
  if (!rejected) throw new Error("INCR on a non-integer value did not reject");
  await expectReply(client, ["GET", key(2)], smallValue(2));

  // Many callers at once: every reply must reach its own caller.
  const n = 512;
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) => (i % 64 === 0 ? client.send(["GET", BIG_KEY]) : client.send(["GET", key(i * 7)]))),
  );
  for (let i = 0; i < n; i++) {
    const want = i % 64 === 0 ? big : smallValue(i * 7);
    if (!replyMatches(replies[i], want)) {
      throw new Error(`concurrent GET #${i} returned ${describeReply(replies[i])}, expected ${describeReply(want)}`);
    }
  }
}

/** Resolves if the client answers correctly; rejects with the first wrong answer (or a timeout). */
export async function verifyClient(client: BenchClient, big: string, options: VerifyOptions = {}): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`verification did not finish within ${VERIFY_TIMEOUT_MS / 1000} s`)), VERIFY_TIMEOUT_MS);
  });
  try {
    const run = checks(client, big, options);
    run.catch(() => undefined); // if the timeout wins, a late rejection is no crash
    await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
