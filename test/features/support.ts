// Shared set-up of the feature suites: one redis-server per test file, clients
// per transport, destroyed after each test.
import { afterAll, afterEach, beforeAll } from "vitest";
import { createClient, type Client, type ClientOptions, type TransportKind } from "../../src/index.js";
import { startRedis, type RedisServer, type StartRedisOptions } from "../support/redis-server.js";

export const TRANSPORTS: readonly TransportKind[] = ["pipelined", "pooled"];

export interface Fixture {
  readonly server: RedisServer;
  /** A client of the file's server (or `options.url` / host / port), destroyed after the test. */
  client(transport: TransportKind, options?: ClientOptions): Client;
  /** Register a client made elsewhere for clean-up. */
  track(client: Client): Client;
}

/** Start one redis-server for the file; every client made through the fixture is destroyed after each test. */
export function useRedis(opts?: StartRedisOptions): Fixture {
  let server: RedisServer | undefined;
  const clients: Client[] = [];
  beforeAll(async () => {
    server = await startRedis(opts);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });
  afterAll(async () => {
    await server?.stop();
  });
  const fixture: Fixture = {
    get server(): RedisServer {
      if (server === undefined) throw new Error("the redis-server is not started yet");
      return server;
    },
    client(transport, options = {}) {
      const c = createClient({ url: fixture.server.url, transport, ...options });
      clients.push(c);
      return c;
    },
    track(c) {
      clients.push(c);
      return c;
    },
  };
  return fixture;
}

/** A rejection's reason (fails the test if the promise resolved). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (err: unknown) => err,
  );
}

/** A promise plus its resolver, for events. */
export function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolve with the next value a callback registration yields, or reject after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
