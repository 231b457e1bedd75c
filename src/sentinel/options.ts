// The `sentinel` option, validated and with its defaults. The
// sentinels have their own credentials and TLS: the client's username,
// password and tls apply to the data nodes only.
import type { ConnectionOptions as TlsOptions } from "node:tls";
import { hidePassword } from "../hide-password.js";
import type { CredentialsProvider } from "../options.js";
import { checkKeys, type KeySet } from "../option-keys.js";

export interface SentinelOptions {
  /**
   * The sentinels, as "redis://host:port", "rediss://host:port" (TLS) or
   * "host:port". Asked in turn; the one that answered moves to the front.
   */
  nodes: string[];
  /** The master's name in the sentinels' configuration (`sentinel monitor <name> ...`). */
  name: string;
  /** ACL user for the sentinels (not the data nodes). Default none. */
  username?: string;
  /** Password for the sentinels (not the data nodes). Default none. */
  password?: string;
  /** Rotating credentials for the sentinels (asked before every sentinel connection), in place of username/password. */
  credentials?: CredentialsProvider;
  /** TLS to the sentinels: true or node:tls options. Default off (a rediss:// node turns it on). */
  tls?: boolean | TlsOptions;
  /** Bound on one sentinel query (dial, AUTH, reply), in ms. Default 2000. */
  timeoutMs?: number;
}

export interface SentinelAddress {
  host: string;
  port: number;
}

export interface ResolvedSentinelOptions {
  nodes: SentinelAddress[];
  name: string;
  username: string | undefined;
  password: string | undefined;
  credentials: CredentialsProvider | undefined;
  tls: TlsOptions | undefined;
  timeoutMs: number;
}

export const SENTINEL_DEFAULTS = { port: 26379, timeoutMs: 2000 } as const;

function parseNode(node: unknown, index: number): { address: SentinelAddress; tls: boolean } {
  if (typeof node !== "string" || node === "") {
    throw new TypeError(`Option sentinel.nodes[${index}] must be a "redis://host:port" or "host:port" string`);
  }
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(node) ? node : `redis://${node}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    // Never echo the value: it may hold a password.
    throw new TypeError(`Option sentinel.nodes[${index}] is not a valid address: expected "redis://host:port" or "host:port"`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new TypeError(`Option sentinel.nodes[${index}] has scheme "${u.protocol}": expected redis: or rediss:`);
  }
  if (u.username !== "" || u.password !== "") {
    throw new TypeError(`Option sentinel.nodes[${index}] holds credentials: put them in sentinel.username / sentinel.password`);
  }
  if (u.hostname === "") throw new TypeError(`Option sentinel.nodes[${index}] has no host`);
  const port = u.port === "" ? SENTINEL_DEFAULTS.port : Number(u.port);
  return { address: { host: u.hostname.replace(/^\[(.*)\]$/, "$1"), port }, tls: u.protocol === "rediss:" };
}

const SENTINEL_KEYS: KeySet<SentinelOptions> = { nodes: true, name: true, username: true, password: true, credentials: true, tls: true, timeoutMs: true };

export function resolveSentinelOptions(input: SentinelOptions, where = "createClient(options)"): ResolvedSentinelOptions {
  if (typeof input !== "object" || input === null) throw new TypeError("Option sentinel must be an object { nodes, name }");
  checkKeys(where, input, SENTINEL_KEYS, "sentinel.");
  if (!Array.isArray(input.nodes) || input.nodes.length === 0) {
    throw new TypeError("Option sentinel.nodes must list at least one sentinel");
  }
  if (typeof input.name !== "string" || input.name === "") throw new TypeError("Option sentinel.name must be a non-empty string");
  const parsed = input.nodes.map(parseNode);
  const timeoutMs = input.timeoutMs ?? SENTINEL_DEFAULTS.timeoutMs;
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError(`Option sentinel.timeoutMs must be a positive number, got ${String(timeoutMs)}`);
  }
  const tlsOpt = input.tls ?? parsed.some((p) => p.tls);
  return hidePassword({
    nodes: parsed.map((p) => p.address),
    name: input.name,
    username: input.username,
    password: input.password,
    credentials: input.credentials,
    tls: tlsOpt === false ? undefined : tlsOpt === true ? {} : tlsOpt,
    timeoutMs,
  });
}
