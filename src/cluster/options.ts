// createCluster options: the node list, routing choices, and every
// createClient option, applied to each node's client.
import { hidePassword } from "../hide-password.js";
import { checkKeys, type KeySet } from "../option-keys.js";
import { CLIENT_OPTION_KEYS, resolveOptions, type ClientOptions, type ResolvedOptions } from "../options.js";

export type ReadFrom = "master" | "replica" | "preferReplica";

/** A node to start from: "redis://host:port" (credentials and TLS in the URL apply to every node), or { host, port }. */
export type RootNode = string | { host: string; port: number };

export interface ClusterOptions extends Omit<ClientOptions, "url" | "host" | "port" | "db" | "sentinel" | "role"> {
  /** Some nodes of the cluster (one is enough; more survive one being down). The rest is discovered. */
  rootNodes: readonly RootNode[];
  /**
   * Where read-only commands go: "master" (default), "replica" (a replica of
   * the slot's master, round-robin; the master when it has none), or
   * "preferReplica" (a connected replica, else the master). Replica
   * connections send READONLY on every (re)connect.
   */
  readFrom?: ReadFrom;
  /**
   * How many times one command may be redirected or retried (MOVED, ASK,
   * TRYAGAIN, CLUSTERDOWN, or re-routed after its node was lost) before it
   * fails with RedirectionLimitError. TRYAGAIN, CLUSTERDOWN and lost nodes
   * wait a backoff first (25 ms doubling to 1 s, jittered), so the default
   * rides out a failover of several seconds. Default 16.
   */
  maxRedirections?: number;
  /** The topology is also refreshed this often, in ms (0: never; MOVED and lost nodes still refresh it). Default 10000. */
  refreshIntervalMs?: number;
}

export interface ResolvedClusterOptions {
  rootNodes: { host: string; port: number }[];
  readFrom: ReadFrom;
  maxRedirections: number;
  refreshIntervalMs: number;
  /** Applied to every node client (host and port are set per node). */
  node: ClientOptions;
  /** The node options resolved once, for defaults the router needs (timeouts, tls, lazyConnect...). */
  resolved: ResolvedOptions;
}

export const CLUSTER_DEFAULTS = {
  readFrom: "master" as ReadFrom,
  maxRedirections: 16,
  refreshIntervalMs: 10_000,
} as const;

const WHERE = "createCluster(options)";
/** createClient options that a cluster does not take, and what to do instead. */
const NOT_FOR_A_CLUSTER: Readonly<Record<string, string>> = {
  url: "list the nodes in rootNodes",
  host: "list the nodes in rootNodes",
  port: "list the nodes in rootNodes",
  db: "a cluster has database 0 only",
  sentinel: "a cluster finds its nodes itself, from rootNodes",
  role: "use readFrom",
};
const CLUSTER_ONLY_KEYS: KeySet<Omit<ClusterOptions, keyof ClientOptions>> = { rootNodes: true, readFrom: true, maxRedirections: true, refreshIntervalMs: true };
const CLUSTER_OPTION_KEYS: readonly string[] = [
  ...Object.keys(CLUSTER_ONLY_KEYS),
  ...Object.keys(CLIENT_OPTION_KEYS).filter((k) => !Object.hasOwn(NOT_FOR_A_CLUSTER, k)),
];
const ROOT_NODE_KEYS: KeySet<{ host: string; port: number }> = { host: true, port: true };

export function resolveClusterOptions(input: ClusterOptions): ResolvedClusterOptions {
  if (input === null || typeof input !== "object") throw new TypeError("createCluster(options): options must be an object");
  for (const key of Object.keys(input)) {
    const instead = Object.hasOwn(NOT_FOR_A_CLUSTER, key) ? NOT_FOR_A_CLUSTER[key] : undefined;
    if (instead !== undefined) throw new TypeError(`${WHERE}: option "${key}" is not for a cluster: ${instead}`);
  }
  checkKeys(WHERE, input, CLUSTER_OPTION_KEYS);
  const { rootNodes, readFrom, maxRedirections, refreshIntervalMs, ...nodeOptions } = input;
  if (!Array.isArray(rootNodes) || rootNodes.length === 0) throw new TypeError("Option rootNodes must name at least one node");
  const rf = readFrom ?? CLUSTER_DEFAULTS.readFrom;
  if (rf !== "master" && rf !== "replica" && rf !== "preferReplica") {
    throw new TypeError(`Option readFrom must be "master", "replica" or "preferReplica", got ${String(rf)}`);
  }
  const maxRedir = maxRedirections ?? CLUSTER_DEFAULTS.maxRedirections;
  if (!Number.isInteger(maxRedir) || maxRedir < 0) throw new TypeError(`Option maxRedirections must be a non-negative integer, got ${String(maxRedir)}`);
  const refresh = refreshIntervalMs ?? CLUSTER_DEFAULTS.refreshIntervalMs;
  if (typeof refresh !== "number" || !Number.isFinite(refresh) || refresh < 0) {
    throw new TypeError(`Option refreshIntervalMs must be a non-negative number, got ${String(refresh)}`);
  }
  // Credentials and TLS from the first URL apply to every node unless given as options.
  let fromUrl: Partial<ClientOptions> = {};
  const roots = rootNodes.map((r, i) => {
    if (typeof r === "string") {
      const o = resolveOptions(r);
      if (i === 0 || fromUrl.password === undefined) {
        fromUrl = { username: o.username, password: o.password, ...(o.tls !== undefined ? { tls: o.tls } : {}) };
      }
      return { host: o.host, port: o.port };
    }
    if (r === null || typeof r !== "object" || typeof r.host !== "string" || !Number.isInteger(r.port)) {
      throw new TypeError("Option rootNodes: each node must be a redis:// URL or { host, port }");
    }
    checkKeys(WHERE, r, ROOT_NODE_KEYS, `rootNodes[${i}].`);
    return { host: r.host, port: r.port };
  });
  const node: ClientOptions = hidePassword({ ...nodeOptions });
  if (node.username === undefined && fromUrl.username !== undefined) node.username = fromUrl.username;
  if (node.password === undefined && fromUrl.password !== undefined) node.password = fromUrl.password;
  if (node.tls === undefined && fromUrl.tls !== undefined) node.tls = fromUrl.tls;
  // Throws the usual TypeErrors for bad node options, once, here.
  const resolved = resolveOptions(node, WHERE);
  return { rootNodes: roots, readFrom: rf, maxRedirections: maxRedir, refreshIntervalMs: refresh, node, resolved };
}
