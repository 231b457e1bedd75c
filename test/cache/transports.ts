// Which transports can run here. The pooled transport is built by another
// issue; until it lands its placeholder rejects every command with "pooled
// transport not built yet", and the suites that run per transport skip it
// (and say so in their title) instead of failing. Once it lands, this probe
// sees a real connection error and the pooled suites run.
import { createClient, type TransportKind } from "../../src/index.js";
import { freePort } from "../support/redis-server.js";

export const TRANSPORTS: readonly TransportKind[] = ["pipelined", "pooled"];

const PLACEHOLDER_MESSAGE = "pooled transport not built yet";

async function placeholderAnswers(transport: TransportKind): Promise<boolean> {
  // A port nobody listens on: a real transport fails to dial, fast.
  const port = await freePort();
  const client = createClient({ port, transport, lazyConnect: true, reconnect: false, offlineQueue: false, connectTimeoutMs: 1000 });
  try {
    await client.command(["PING"], { timeoutMs: 2000 });
    return false;
  } catch (err) {
    return err instanceof Error && err.message === PLACEHOLDER_MESSAGE;
  } finally {
    client.destroy();
  }
}

/** transport -> true when it is built and can be tested. */
export async function builtTransports(): Promise<Record<TransportKind, boolean>> {
  const [pipelined, pooled] = await Promise.all(TRANSPORTS.map(async (t) => !(await placeholderAnswers(t))));
  return { pipelined: pipelined === true, pooled: pooled === true };
}
