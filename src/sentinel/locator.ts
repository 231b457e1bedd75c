// Finding the data node through the sentinels, and checking it.
//
// resolve(): ask the sentinels in turn (SENTINEL GET-MASTER-ADDR-BY-NAME, or
// SENTINEL REPLICAS for role "replica"), each on a fresh connection bounded
// by sentinel.timeoutMs; the first that answers moves to the front of the
// list, so the next round starts with a sentinel known to work. Concurrent
// dials (a pool filling up) share one round.
//
// verify(): after the handshake, ROLE must say what we asked for: the
// sentinels' view lags behind a failover (and a partitioned sentinel may be
// wrong), so a node that is not a master is refused and the transport goes
// back to the sentinels after its backoff. Verified sockets are counted per
// address until they close, so a +switch-master can tell whether the client
// still holds sockets to the old master.
import net from "node:net";
import { openConnection } from "../connection/handshake.js";
import { ConnectionError, ReplyError, SentinelError } from "../errors.js";
import type { SetupExec } from "../connection/handshake.js";
import type { ResolvedOptions, ServerAddress } from "../options.js";
import type { Reply } from "../protocol/decode.js";
import type { Command } from "../protocol/encode.js";
import { Request } from "../request.js";
import type { ResolvedSentinelOptions } from "./options.js";

export function addressKey(a: ServerAddress): string {
  return net.isIPv6(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** A connection to one sentinel: the sentinels' own credentials and TLS, no db, no name, no sentinel hooks. */
export function sentinelConnectionOptions(base: ResolvedOptions, sentinel: ResolvedSentinelOptions, node: ServerAddress): ResolvedOptions {
  return {
    ...base,
    host: node.host,
    port: node.port,
    db: 0,
    username: sentinel.username,
    password: sentinel.password,
    credentials: sentinel.credentials,
    clientName: undefined,
    tls: sentinel.tls,
    connectTimeoutMs: sentinel.timeoutMs,
    sentinel: undefined,
  };
}

/** One command to one sentinel on a fresh connection; the whole of it bounded by timeoutMs. */
async function ask(options: ResolvedOptions, command: Command, timeoutMs: number): Promise<Reply> {
  const deadline = Date.now() + timeoutMs;
  const conn = await openConnection(
    options,
    {
      onClose: (error, unanswered) => {
        for (const r of unanswered) r.failConnection(error);
      },
    },
    undefined,
    undefined,
    options.protocol,
  );
  try {
    const req = new Request(command, undefined, Math.max(1, deadline - Date.now()));
    conn.write(req);
    return await req.promise;
  } finally {
    conn.abandon();
  }
}

type Outcome =
  | { kind: "ok"; address: ServerAddress }
  | { kind: "unknown" }
  | { kind: "refused"; error: unknown }
  | { kind: "no-replica" }
  | { kind: "down"; error: unknown };

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isAuthError(err: unknown): boolean {
  if (err instanceof ConnectionError) return err.reason === "auth-failed";
  return err instanceof ReplyError && (err.code === "NOAUTH" || err.code === "WRONGPASS" || /AUTH/.test(err.message));
}

/** A flat [k1, v1, k2, v2, ...] reply as an object. */
function fields(reply: Reply): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

export class SentinelLocator {
  /** Sentinels in the order we ask them: the last one that answered first. */
  readonly nodes: ServerAddress[];
  private pending: Promise<ServerAddress> | undefined;
  /** Verified, still open data sockets per address. */
  private readonly live = new Map<string, number>();
  /** The sentinel whose last answer no socket has verified yet (refused dial, wrong role). */
  private unverified: ServerAddress | undefined;

  constructor(
    private readonly base: ResolvedOptions,
    private readonly sentinel: ResolvedSentinelOptions,
    private readonly role: "master" | "replica",
  ) {
    this.nodes = sentinel.nodes.map((n) => ({ ...n }));
  }

  get name(): string {
    return this.sentinel.name;
  }

  /** Addresses the client holds verified sockets to. */
  liveAddresses(): string[] {
    return [...this.live.keys()];
  }

  connectionOptions(node: ServerAddress): ResolvedOptions {
    return sentinelConnectionOptions(this.base, this.sentinel, node);
  }

  /**
   * The address to dial now, from the first sentinel that knows. One round at
   * a time. `forDial` false: only a look (no socket will verify the answer).
   */
  resolve(forDial = true): Promise<ServerAddress> {
    this.pending ??= this.round(forDial).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** Ask this sentinel first next time (it just announced a failover: its view is the newest). */
  prefer(node: ServerAddress): void {
    this.promote(node);
    this.unverified = undefined;
  }

  private promote(node: ServerAddress): void {
    const i = this.nodes.indexOf(node);
    if (i > 0) {
      this.nodes.splice(i, 1);
      this.nodes.unshift(node);
    }
  }

  private async round(forDial: boolean): Promise<ServerAddress> {
    const name = this.sentinel.name;
    const failures: string[] = [];
    let unknown = 0;
    let refused = 0;
    let noReplica = 0;
    let lastError: unknown;
    // The front sentinel's last answer led nowhere (a dead or demoted node):
    // its view may lag behind a failover, so it goes last this round.
    const front = this.nodes[0];
    if (front !== undefined && front === this.unverified && this.nodes.length > 1) {
      this.nodes.push(this.nodes.shift() as ServerAddress);
    }
    for (const node of [...this.nodes]) {
      const outcome = await this.askOne(node);
      const where = addressKey(node);
      switch (outcome.kind) {
        case "ok":
          this.promote(node);
          if (forDial) this.unverified = node;
          return outcome.address;
        case "unknown":
          unknown++;
          failures.push(`${where} does not know "${name}"`);
          break;
        case "refused":
          refused++;
          lastError = outcome.error;
          failures.push(`${where} refused the sentinel credentials (${describe(outcome.error)})`);
          break;
        case "no-replica":
          noReplica++;
          failures.push(`${where} knows no healthy replica`);
          break;
        case "down":
          lastError = outcome.error;
          failures.push(`${where}: ${describe(outcome.error)}`);
          break;
      }
    }
    const asked = this.nodes.length;
    const detail = failures.join("; ");
    const cause = lastError === undefined ? undefined : { cause: lastError };
    // Retrying cannot fix these when every sentinel answered: one clear error, no loop.
    if (unknown > 0 && unknown + refused === asked) {
      throw new SentinelError(`Sentinel: no sentinel knows a master named "${name}" (${detail})`, "unknown-master");
    }
    if (refused === asked) {
      throw new SentinelError(`Sentinel: every sentinel refused the sentinel credentials (${detail})`, "auth-failed", cause);
    }
    if (noReplica > 0) {
      throw new SentinelError(`Sentinel: no healthy replica of "${name}" (${detail})`, "no-replica", cause);
    }
    throw new SentinelError(`Sentinel: no sentinel answered for "${name}" (${detail})`, "unreachable", cause);
  }

  private async askOne(node: ServerAddress): Promise<Outcome> {
    const name = this.sentinel.name;
    const command: Command = this.role === "master" ? ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", name] : ["SENTINEL", "REPLICAS", name];
    let reply: Reply;
    try {
      reply = await ask(this.connectionOptions(node), command, this.sentinel.timeoutMs);
    } catch (err) {
      if (isAuthError(err)) return { kind: "refused", error: err };
      if (err instanceof ReplyError && /no such master/i.test(err.message)) return { kind: "unknown" };
      return { kind: "down", error: err };
    }
    if (this.role === "master") {
      if (reply === null) return { kind: "unknown" };
      if (Array.isArray(reply) && reply.length >= 2) {
        const port = Number(reply[1]);
        if (Number.isInteger(port) && port > 0) return { kind: "ok", address: { host: String(reply[0]), port } };
      }
      return { kind: "down", error: new Error("unexpected reply to SENTINEL GET-MASTER-ADDR-BY-NAME") };
    }
    if (!Array.isArray(reply)) return { kind: "down", error: new Error("unexpected reply to SENTINEL REPLICAS") };
    const healthy = reply
      .map(fields)
      // Not master-link-status: sentinels refresh it every 10 s only, and a
      // resyncing replica still serves (stale) reads.
      .filter((r) => !/s_down|o_down|disconnected/.test(r.flags ?? ""))
      .map((r) => ({ host: r.ip ?? "", port: Number(r.port) }))
      .filter((a) => a.host !== "" && Number.isInteger(a.port) && a.port > 0);
    if (healthy.length === 0) return { kind: "no-replica" };
    // Random: many clients spread their reads over the replicas.
    return { kind: "ok", address: healthy[Math.floor(Math.random() * healthy.length)] as ServerAddress };
  }

  /** The post-handshake check: ROLE must match; then the socket counts as live until it closes. */
  async verify(exec: SetupExec, address: ServerAddress, socket: net.Socket): Promise<void> {
    const where = addressKey(address);
    let reply: Reply;
    try {
      reply = await exec(["ROLE"]);
    } catch (err) {
      if (err instanceof ReplyError) {
        // NOPERM or an unknown command: retrying cannot help.
        throw new ConnectionError(`Sentinel: ROLE was refused by ${where} (${err.message}); the user needs +role`, "handshake-failed", false, {
          cause: err,
        });
      }
      throw new ConnectionError(`Sentinel: could not check the role of ${where}: ${describe(err)}`, "connect-failed", false, { cause: err });
    }
    const actual = Array.isArray(reply) ? String(reply[0]) : "unknown";
    const wanted = this.role === "master" ? "master" : "slave";
    if (actual !== wanted) {
      const what = actual === "slave" ? "a replica" : actual === "master" ? "a master" : `"${actual}"`;
      throw new SentinelError(
        `Sentinel: ${where} is ${what}, not the ${this.role} of "${this.sentinel.name}" the sentinels named; asking them again`,
        "wrong-role",
      );
    }
    this.unverified = undefined;
    if (socket.destroyed) return;
    this.live.set(where, (this.live.get(where) ?? 0) + 1);
    socket.once("close", () => {
      const n = (this.live.get(where) ?? 1) - 1;
      if (n <= 0) this.live.delete(where);
      else this.live.set(where, n);
    });
  }
}
