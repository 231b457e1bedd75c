// Shared by the conformance suites: one client factory per transport, and
// polls on the server's own counters (events or polls with deadlines, never
// sleeps).
import { createClient, type Client, type ClientOptions, type TransportKind } from "../../src/index.js";
import type { RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/wait.js";

export const TRANSPORTS: readonly TransportKind[] = ["pipelined", "pooled"];

/** Clients made by `make` are destroyed by `destroyAll` (call it in afterEach). */
export function clientFactory(server: () => RedisServer): {
  make(transport: TransportKind, options?: ClientOptions): Client;
  destroyAll(): void;
} {
  const made: Client[] = [];
  return {
    make(transport, options = {}) {
      const c = createClient({ host: server().host, port: server().port, transport, ...options });
      made.push(c);
      return c;
    },
    destroyAll() {
      for (const c of made.splice(0)) c.destroy();
    },
  };
}

/** One field of INFO, as a string. */
export async function info(server: RedisServer, section: string, field: string): Promise<string> {
  const text = String(await server.admin(["INFO", section]));
  const match = new RegExp(`^${field}:(.*)$`, "m").exec(text);
  if (match === null) throw new Error(`INFO ${section} has no ${field}`);
  return (match[1] as string).trim();
}

/** Wait until the server counts exactly `n` clients blocked (BLPOP, CLIENT PAUSE). */
export async function untilBlocked(server: RedisServer, n: number, timeoutMs = 5000): Promise<void> {
  await waitFor(async () => Number(await info(server, "clients", "blocked_clients")) === n, timeoutMs);
}

/** Lines of CLIENT LIST whose name is `name`, as field maps. */
export async function clientList(server: RedisServer, name?: string): Promise<Record<string, string>[]> {
  const text = String(await server.admin(["CLIENT", "LIST"]));
  const rows = text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => Object.fromEntries(l.trim().split(" ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])));
  return name === undefined ? rows : rows.filter((r) => r.name === name);
}
