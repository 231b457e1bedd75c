// The pooled transport's line of callers, without a server: what a request
// that leaves the line unserved is told. maybeExecuted follows
// Request.everWritten, as everywhere else (review finding: a read put back in
// line after its socket died was told "not executed" when the client closed
// or no socket came in time, though the server may have run it).
import { describe, expect, it } from "vitest";
import { ClientClosedError, ConnectionError, PoolTimeoutError } from "../../src/index.js";
import { WaiterQueue } from "../../src/blocking/waiters.js";
import { Request } from "../../src/request.js";

/** A GET as the pooled transport holds it: written once and put back in line (written), or never sent. */
function read(written: boolean): Request {
  const r = new Request(["GET", "k"], undefined, 0);
  if (written) {
    r.everWritten = true;
    r.retried = true;
  }
  return r;
}

async function reasonOf(r: Request): Promise<unknown> {
  return r.promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
}

describe("pooled waiters: maybeExecuted of a request that leaves the line unserved", () => {
  it("ClientClosedError (close or destroy while it waits)", async () => {
    const q = new WaiterQueue(0, () => undefined, () => false);
    const [written, fresh] = [read(true), read(false)];
    q.add(written, true);
    q.add(fresh);
    q.failAll(new ClientClosedError());
    const [a, b] = [await reasonOf(written), await reasonOf(fresh)];
    expect(a).toBeInstanceOf(ClientClosedError);
    expect((a as ClientClosedError).maybeExecuted).toBe(true);
    expect(b).toBeInstanceOf(ClientClosedError);
    expect((b as ClientClosedError).maybeExecuted).toBe(false);
  });

  it("PoolTimeoutError (no socket within acquireTimeoutMs)", async () => {
    const q = new WaiterQueue(20, () => undefined, () => false);
    const [written, fresh] = [read(true), read(false)];
    q.add(written, true);
    q.add(fresh);
    const [a, b] = [await reasonOf(written), await reasonOf(fresh)];
    expect(a).toBeInstanceOf(PoolTimeoutError);
    expect((a as PoolTimeoutError).maybeExecuted).toBe(true);
    expect((a as PoolTimeoutError).timeoutMs).toBe(20);
    expect(b).toBeInstanceOf(PoolTimeoutError);
    expect((b as PoolTimeoutError).maybeExecuted).toBe(false);
    expect(q.live).toBe(0);
  });

  it("ConnectionError (the next dial failed): same message and reason", async () => {
    const q = new WaiterQueue(0, () => undefined, () => false);
    const [written, fresh] = [read(true), read(false)];
    q.add(written, true);
    q.add(fresh);
    q.failAll(new ConnectionError("Could not connect to 127.0.0.1:1: ECONNREFUSED", "connect-failed", false));
    const [a, b] = [(await reasonOf(written)) as ConnectionError, (await reasonOf(fresh)) as ConnectionError];
    expect([a.message, a.reason, a.maybeExecuted]).toEqual(["Could not connect to 127.0.0.1:1: ECONNREFUSED", "connect-failed", true]);
    expect([b.message, b.reason, b.maybeExecuted]).toEqual(["Could not connect to 127.0.0.1:1: ECONNREFUSED", "connect-failed", false]);
  });

  it("follows everWritten, not retried: a request marked retried but never written was not executed", async () => {
    const q = new WaiterQueue(0, () => undefined, () => false);
    const r = new Request(["GET", "k"], undefined, 0);
    r.retried = true; // batch members are marked so, to never be re-sent
    q.add(r);
    q.failAll(new ConnectionError("Could not connect", "connect-failed", false));
    expect(((await reasonOf(r)) as ConnectionError).maybeExecuted).toBe(false);
  });
});
