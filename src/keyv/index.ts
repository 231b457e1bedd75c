// respite/keyv: a Keyv storage adapter (keyv v5) on top of client.command().
//
//   import Keyv from "keyv";
//   import { KeyvRespite } from "respite/keyv";
//   const keyv = new Keyv({ store: new KeyvRespite("redis://127.0.0.1:6379") });
//
// Key layout and behaviour follow @keyv/redis, so data written by one is read
// by the other: with a namespace (Keyv always sets one, "keyv" by default) a
// key is stored as `${namespace}::${key}` (Keyv itself already prefixed `key`
// with `${namespace}:`), values are Keyv's serialized strings stored as-is,
// and a TTL (milliseconds) becomes `SET ... PX ttl`, so Redis expires the
// key at the time Keyv's own `expires` field says.
//
// clear() removes only this namespace's keys (SCAN MATCH + UNLINK, never
// FLUSHDB); without a namespace it refuses rather than guess which keys are
// ours. The module imports nothing from keyv: it matches Keyv's store shape
// structurally, so keyv stays the user's dependency, not ours.
import { EventEmitter } from "node:events";
import { Client } from "../client.js";
import { ClusterClient } from "../cluster/cluster-client.js";
import { mgetBySlot, sumBySlot } from "../cluster/fan-out.js";
import type { RedisKey } from "../helpers/base.js";
import { checkKeys, type KeySet } from "../option-keys.js";
import { scanKeys, type KeyScanOptions } from "../scan.js";
import type { ClientOptions } from "../options.js";
import type { Reply } from "../protocol/decode.js";
import type { Command } from "../protocol/encode.js";
import type { CommandOptions } from "../request.js";
import type { RespiteClient } from "../respite-client.js";

/**
 * What the adapter needs from a client: a respite Client or ClusterClient, or
 * anything with command() and close(). scan(), when present, walks every key
 * the client serves (on a cluster: every master); without it, SCAN goes
 * through command().
 */
export type KeyvRespiteClient = Pick<RespiteClient, "command" | "close"> & { scan?(options?: KeyScanOptions): AsyncIterable<string> };

export interface KeyvRespiteOptions {
  /** Namespace used until Keyv sets its own (Keyv always does: "keyv" unless told). */
  namespace?: string;
  /** Between namespace and key. Default "::" (as @keyv/redis). */
  keyPrefixSeparator?: string;
  /** SCAN COUNT hint for clear() and iterator(), and the most keys per UNLINK / MGET they send. Default 1000. */
  clearBatchSize?: number;
  /** Deadline for each GET, SET, MGET, UNLINK... the adapter sends, in ms; default: the client's commandTimeoutMs (which SCAN pages always use: they go through the client's scan()). */
  timeoutMs?: number;
  /**
   * false (default, as @keyv/redis): a Redis failure is emitted as an "error"
   * event (Keyv re-emits it) and the call returns a miss / false. true: the
   * call rejects with the RedisError. iterator() and a namespace-less clear()
   * always reject: a cut-short listing or a refused clear is not a miss.
   */
  throwOnErrors?: boolean;
  /** Whether disconnect() closes the client. Default: true when the adapter created it, false for a client passed in. */
  closeClient?: boolean;
}

/** The adapter's `opts`, as Keyv reads it (`dialect` and `url` tell Keyv the store is iterable). */
export interface KeyvRespiteOpts {
  dialect: "redis";
  url: string;
  keyPrefixSeparator: string;
  clearBatchSize: number;
  timeoutMs: number | undefined;
  throwOnErrors: boolean;
  [other: string]: unknown;
}

export interface KeyvRespiteEntry {
  key: string;
  value: string;
  ttl?: number;
}

const OPTION_KEYS: KeySet<KeyvRespiteOptions> = {
  namespace: true,
  keyPrefixSeparator: true,
  clearBatchSize: true,
  timeoutMs: true,
  throwOnErrors: true,
  closeClient: true,
};

const DEFAULT_SEPARATOR = "::";
const DEFAULT_BATCH = 1000;

function isClient(value: unknown): value is KeyvRespiteClient {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as KeyvRespiteClient).command === "function" &&
    typeof (value as KeyvRespiteClient).close === "function"
  );
}

/** SCAN MATCH is a glob: a namespace holding * ? [ ] or \ must match itself only. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/** A URL for Keyv's iterable-adapter check and for humans: never a password. */
function describeUrl(client: KeyvRespiteClient): string {
  if (client instanceof Client) {
    const { tls, host, port, db } = client.options;
    const h = host.includes(":") ? `[${host}]` : host;
    return `${tls === undefined ? "redis" : "rediss"}://${h}:${port}/${db}`;
  }
  if (client instanceof ClusterClient) {
    const { rootNodes, resolved } = client.options;
    return `${resolved.tls === undefined ? "redis" : "rediss"}://${rootNodes.map((n) => `${n.host}:${n.port}`).join(",")}`;
  }
  return "redis://";
}

function isOk(reply: Reply): boolean {
  return reply === "OK";
}

function asCount(reply: Reply): number {
  // A given client may use integers: "bigint" or "string"; counts are small.
  if (typeof reply === "bigint" || (typeof reply === "string" && /^\d+$/.test(reply))) return Number(reply);
  if (typeof reply !== "number") throw new TypeError(`Expected an integer reply, got ${typeof reply}`);
  return reply;
}

/** A Keyv TTL (ms) to a PX argument: positive and finite only; rounded up so Redis never expires a key before Keyv would. */
function pxOf(ttl: number | undefined): number | undefined {
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0) return undefined;
  return Math.ceil(ttl);
}

export class KeyvRespite extends EventEmitter {
  /** Set by Keyv (`store.namespace = keyv.namespace`); prefixes every key. */
  namespace: string | undefined;
  /** Read by Keyv (dialect/url) and by whoever wants to see the settings. */
  opts: KeyvRespiteOpts;
  readonly client: KeyvRespiteClient;
  private readonly ownsClient: boolean;
  private readonly separator: string;
  private readonly batchSize: number;
  private readonly commandOptions: CommandOptions | undefined;
  private readonly throwOnErrors: boolean;

  /**
   * @param connection a respite Client (not closed by disconnect() unless
   *   closeClient is set), or a URL / createClient options (the adapter owns
   *   that client and disconnect() closes it).
   */
  constructor(connection?: KeyvRespiteClient | string | ClientOptions, options: KeyvRespiteOptions = {}) {
    super();
    // Validate before creating a client: a throw must not leave one dialing.
    checkKeys("new KeyvRespite(connection, options)", options, OPTION_KEYS);
    const batch = options.clearBatchSize ?? DEFAULT_BATCH;
    if (!Number.isInteger(batch) || batch < 1) {
      throw new TypeError(`Option clearBatchSize must be a positive integer, got ${String(batch)}`);
    }
    const given = isClient(connection);
    this.client = given ? connection : new Client(connection as string | ClientOptions | undefined);
    this.ownsClient = options.closeClient ?? !given;
    this.namespace = options.namespace;
    this.separator = options.keyPrefixSeparator ?? DEFAULT_SEPARATOR;
    this.batchSize = batch;
    this.commandOptions = options.timeoutMs === undefined ? undefined : { timeoutMs: options.timeoutMs };
    this.throwOnErrors = options.throwOnErrors ?? false;
    this.opts = {
      dialect: "redis",
      url: describeUrl(this.client),
      keyPrefixSeparator: this.separator,
      clearBatchSize: this.batchSize,
      timeoutMs: options.timeoutMs,
      throwOnErrors: this.throwOnErrors,
    };
  }

  /** `${namespace}${separator}${key}`, or the key itself without a namespace. */
  prefixKey(key: string, namespace = this.namespace): string {
    return namespace ? `${namespace}${this.separator}${key}` : key;
  }

  async get<Value = string>(key: string): Promise<Value | undefined> {
    const redisKey = this.prefixKey(key);
    try {
      const reply = await this.run(["GET", redisKey]);
      return reply === null ? undefined : (reply as Value);
    } catch (err) {
      return this.failed(err, undefined);
    }
  }

  async getMany<Value = string>(keys: string[]): Promise<Array<Value | undefined>> {
    if (keys.length === 0) return [];
    const redisKeys = keys.map((k) => this.prefixKey(k));
    try {
      return (await this.mget(redisKeys)).map((v) => (v === null ? undefined : (v as Value)));
    } catch (err) {
      return this.failed(err, keys.map(() => undefined));
    }
  }

  /** Resolves true once stored, false if Redis failed (and throwOnErrors is off). */
  async set(key: string, value: string, ttl?: number): Promise<boolean> {
    const redisKey = this.prefixKey(key);
    const px = pxOf(ttl);
    try {
      const reply = await this.run(px === undefined ? ["SET", redisKey, value] : ["SET", redisKey, value, "PX", px]);
      return isOk(reply);
    } catch (err) {
      return this.failed(err, false);
    }
  }

  /** One SET per entry, pipelined. Keyv's store contract resolves nothing here; a failure is reported as for set(). */
  async setMany(entries: KeyvRespiteEntry[]): Promise<void> {
    await Promise.all(entries.map((e) => this.set(e.key, e.value, e.ttl)));
  }

  /** True when the key existed. */
  async delete(key: string): Promise<boolean> {
    const redisKey = this.prefixKey(key);
    try {
      return asCount(await this.run(["UNLINK", redisKey])) > 0;
    } catch (err) {
      return this.failed(err, false);
    }
  }

  /** True when at least one of the keys existed. */
  async deleteMany(keys: string[]): Promise<boolean> {
    if (keys.length === 0) return false;
    const redisKeys = keys.map((k) => this.prefixKey(k));
    try {
      return (await this.unlink(redisKeys)) > 0;
    } catch (err) {
      return this.failed(err, false);
    }
  }

  async has(key: string): Promise<boolean> {
    const redisKey = this.prefixKey(key);
    try {
      return asCount(await this.run(["EXISTS", redisKey])) === 1;
    } catch (err) {
      return this.failed(err, false);
    }
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return Promise.all(keys.map((k) => this.has(k)));
  }

  /**
   * Delete every key of this namespace: SCAN MATCH `namespace::*` page by
   * page, one UNLINK per page. Never FLUSHDB; refuses without a namespace.
   */
  async clear(): Promise<void> {
    const namespace = this.namespace;
    if (!namespace) {
      throw new Error(
        "KeyvRespite.clear() needs a namespace: it deletes only the keys under `namespace" +
          this.separator +
          "`, and without one the only choice would be the whole database",
      );
    }
    const match = `${escapeGlob(namespace)}${escapeGlob(this.separator)}*`;
    let firstError: unknown;
    const unlinks: Promise<void>[] = [];
    try {
      for await (const keys of this.pages(match)) {
        // Handled at once: a failure must not surface as an unhandled
        // rejection while the scan is still going.
        unlinks.push(
          this.unlink(keys).then(
            () => undefined,
            (err: unknown) => {
              firstError ??= err;
            },
          ),
        );
        if (firstError !== undefined) break;
      }
    } catch (err) {
      firstError ??= err;
    }
    await Promise.all(unlinks);
    if (firstError !== undefined) this.failed(firstError, undefined);
  }

  /**
   * Yields [key, serialized value] for every key under `namespace::`, the
   * namespace prefix removed (Keyv strips its own `namespace:` after). Keys
   * that vanish between SCAN and MGET are skipped. Without a namespace, yields
   * the keys that hold no separator (as @keyv/redis does).
   */
  async *iterator(namespace?: string): AsyncGenerator<[string, string], void, undefined> {
    const prefix = namespace ? `${namespace}${this.separator}` : "";
    const match = namespace ? `${escapeGlob(prefix)}*` : "*";
    for await (const found of this.pages(match)) {
      const keys = namespace ? found : found.filter((k) => !k.includes(this.separator));
      if (keys.length === 0) continue;
      const values = await this.mget(keys);
      for (let i = 0; i < keys.length; i++) {
        const value = values[i];
        if (typeof value === "string") yield [(keys[i] as string).slice(prefix.length), value];
      }
    }
  }

  /** Closes the client if the adapter owns it (it created it, or closeClient was set). */
  async disconnect(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }

  private run(args: Command): Promise<Reply> {
    return this.client.command(args, this.commandOptions);
  }

  /** The keys matching `match`, in pages of up to clearBatchSize (the client's SCAN: on a cluster, every master). */
  private async *pages(match: string): AsyncGenerator<string[], void, undefined> {
    let page: string[] = [];
    const options = { match, count: this.batchSize };
    const keys = this.client.scan?.(options) ?? scanKeys({ command: (args) => this.run(args) }, options);
    for await (const key of keys) {
      page.push(key);
      if (page.length < this.batchSize) continue;
      yield page;
      page = [];
    }
    if (page.length > 0) yield page;
  }

  /** MGET, one per slot on a cluster (keys of a page span slots), values in the order of `keys`. */
  private mget(keys: string[]): Promise<(string | null)[]> {
    const one = async (part: RedisKey[]): Promise<(string | null)[]> => {
      const reply = await this.run(["MGET", ...part]);
      if (!Array.isArray(reply)) throw new TypeError("MGET did not answer an array");
      return reply.map((v) => (typeof v === "string" ? v : null));
    };
    return this.client instanceof ClusterClient ? mgetBySlot(keys, one) : one(keys);
  }

  /** UNLINK, one per slot on a cluster; the number of keys removed. */
  private unlink(keys: string[]): Promise<number> {
    const one = async (part: RedisKey[]): Promise<number> => asCount(await this.run(["UNLINK", ...part]));
    return this.client instanceof ClusterClient ? sumBySlot(keys, one) : one(keys);
  }

  /** The error policy: rethrow, or report (only to listeners: an unheard "error" must not crash) and return the no-op result. */
  private failed<T>(err: unknown, fallback: T): T {
    if (this.throwOnErrors) throw err;
    if (this.listenerCount("error") > 0) this.emit("error", err);
    return fallback;
  }
}

export default KeyvRespite;
