// Cluster (issue 10) review finding: a read that may have executed was
// resent on every loss of its connection (after its node client had already
// retried it once), up to maxRedirections times. A read is retried at most
// once in total. The node here is a fake: a one-node "cluster" whose every
// connection dies when a GET arrives (a node crashing on it, again and again),
// so the GETs it receives are the executions.
import { afterEach, describe, expect, it } from "vitest";
import { ConnectionError, createCluster, type ClusterClient, type TransportKind } from "../../src/index.js";
import { startFakeServer, type FakeServer } from "../support/fake-server.js";
import { writeReply } from "../support/resp-writer.js";

const TRANSPORTS: TransportKind[] = ["pipelined", "pooled"];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A node owning every slot; a GET kills the connection it came on. */
async function crashingNode(): Promise<{ server: FakeServer; gets(): number }> {
  let gets = 0;
  let port = 0;
  const server = await startFakeServer({
    onCommand(conn, args) {
      const name = (args[0] ?? "").toUpperCase();
      if (name === "GET") {
        gets++;
        conn.reset();
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
