// Cluster (issue 10), retries against a fake node. Review finding: a read that may have executed was
// resent on every loss of its connection (after its node client had already
// retried it once), up to maxRedirections times. A read is retried at most
// once in total. The node here is a fake: a one-node "cluster" whose every
// connection dies when a GET arrives (a node crashing on it, again and again),
// so the GETs it receives are the executions. And the commands waiting to be
// retried are bounded (every queue bounded): a node answering TRYAGAIN to
// everything fills the cluster's retry waits.
import { afterEach, describe, expect, it } from "vitest";
import { ConnectionError, createCluster, type ClusterClient, type QueueFullError, type TransportKind } from "../../src/index.js";
import { startFakeServer, type FakeConnection, type FakeServer } from "../support/fake-server.js";
import { writeReply } from "../support/resp-writer.js";

const TRANSPORTS: TransportKind[] = ["pipelined", "pooled"];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A node owning every slot; `onGet` answers each GET (and counts it). */
async function fakeNode(onGet: (conn: FakeConnection) => void): Promise<{ server: FakeServer; gets(): number }> {
  let gets = 0;
  let port = 0;
  const server = await startFakeServer({
    onCommand(conn, args) {
      const name = (args[0] ?? "").toUpperCase();
      if (name === "GET") {
        gets++;
        onGet(conn);
      } else if (name === "CLUSTER" && (args[1] ?? "").toUpperCase() === "SHARDS") {
        const node = ["id", "n1", "port", port, "ip", "127.0.0.1", "endpoint", "127.0.0.1", "role", "master", "replication-offset", 1, "health", "online"];
        conn.write(writeReply([["slots", [0, 16383], "nodes", [node]]]));
      } else {
        conn.write("+OK\r\n");
      }
    },
  });
  port = server.port;
  cleanups.push(() => server.close());
  return { server, gets: () => gets };
}

/** A GET kills the connection it came on. */
const crashingNode = (): ReturnType<typeof fakeNode> => fakeNode((conn) => conn.reset());

describe.each(TRANSPORTS)("cluster read retry (%s node clients)", (transport) => {
  it("a read whose connection dies each time it is sent runs at most twice in total", async () => {
    const node = await crashingNode();
    const c: ClusterClient = createCluster({
      rootNodes: [{ host: "127.0.0.1", port: node.server.port }],
      transport,
      maxRedirections: 4,
      refreshIntervalMs: 0,
      reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
    });
    cleanups.push(() => c.destroy());
    c.on("error", () => undefined);
    const err = await c.command(["GET", "rr:k"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).reason).toBe("socket-closed");
    expect((err as ConnectionError).maybeExecuted).toBe(true);
    // The first send and one retry: never one per redirection, never the node's retry on top of the cluster's.
    expect(node.gets()).toBe(2);
    expect(c.stats().rerouted).toBe(1);
  });

  it("retryReadOnly: false sends a read once", async () => {
    const node = await crashingNode();
    const c: ClusterClient = createCluster({
      rootNodes: [{ host: "127.0.0.1", port: node.server.port }],
      transport,
      retryReadOnly: false,
      maxRedirections: 4,
      refreshIntervalMs: 0,
      reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
    });
    cleanups.push(() => c.destroy());
    c.on("error", () => undefined);
    const err = await c.command(["GET", "rr:k"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).maybeExecuted).toBe(true);
    expect(node.gets()).toBe(1);
    expect(c.stats().rerouted).toBe(0);
  });
});

describe.each(TRANSPORTS)("cluster retry waits (%s node clients)", (transport) => {
  it("are bounded by offlineQueue.maxLength: past it a command is refused at once with QueueFullError", async () => {
    // TRYAGAIN to every GET: each one waits a backoff and is sent again, until
    // maxRedirections. The first 20 answers go out together, once all 20 GETs
    // arrived: all 20 want to wait at the same moment.
    const TRYAGAIN = "-TRYAGAIN Multiple keys request during rehashing of slot\r\n";
    const held: FakeConnection[] = [];
    let released = false;
    const node = await fakeNode((conn) => {
      if (released) conn.write(TRYAGAIN);
      else if (held.push(conn) === 20) {
        released = true;
        // One write per connection (its answers together: Nagle would hold back all but the first).
        for (const h of new Set(held)) h.write(TRYAGAIN.repeat(held.filter((x) => x === h).length));
      }
    });
    const c: ClusterClient = createCluster({
      rootNodes: [{ host: "127.0.0.1", port: node.server.port }],
      transport,
      pool: { max: 20 }, // pooled: one socket per GET, so all 20 are sent at once
      offlineQueue: { maxLength: 5 },
      maxRedirections: 3,
      refreshIntervalMs: 0,
    });
    cleanups.push(() => c.destroy());
    await c.connect();
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => c.command(["GET", `bound:${i}`]).catch((e: unknown) => e)));
    const names = outcomes.map((e) => (e instanceof Error ? e.name : String(e)));
    // Five waited and gave up after their retries; the other fifteen were refused at their first wait, never sent again.
    expect(names.filter((n) => n === "RedirectionLimitError")).toHaveLength(5);
    expect(names.filter((n) => n === "QueueFullError")).toHaveLength(15);
    for (const e of outcomes) expect((e as QueueFullError).maybeExecuted).toBe(false);
    expect(node.gets()).toBe(20 + 5 * 3);
  });
});
