// The clientCache option: validated, with its defaults. Off unless given.
import { checkKeys, type KeySet } from "../option-keys.js";
import { resolveCacheable, type CacheableSpec } from "./cacheable.js";

export interface ClientCacheOptions {
  /**
   * Most memory the entries may take, in bytes: each counts its key, its
   * value and a fixed per-entry overhead (ENTRY_OVERHEAD_BYTES), so the
   * figure follows what the heap holds. Least recently used entries go
   * first. Default 64 MiB.
   */
  maxBytes?: number;
  /** An entry is dropped this long after it was stored, in ms; 0 (default) = only when invalidated or evicted. */
  ttlMs?: number;
  /**
   * "default": the server remembers which keys this client read and tells it
   * when one of those changes. "broadcast": the server tells it of every
   * change under `prefixes` (every key without them), whoever read what; no
   * per-connection memory on the server, more invalidation traffic.
   */
  mode?: "default" | "broadcast";
  /** Only keys starting with one of these are cached (broadcast mode: the server reports only these). Default: every key. */
  prefixes?: readonly string[];
  /** Narrow the cached commands to these (from CACHEABLE_COMMANDS). Default: all of them. */
  commands?: readonly string[];
}

export interface ResolvedClientCacheOptions {
  maxBytes: number;
  ttlMs: number;
  mode: "default" | "broadcast";
  prefixes: string[];
  commands: Map<string, CacheableSpec>;
}

export const CLIENT_CACHE_DEFAULTS = { maxBytes: 64 * 1024 * 1024, ttlMs: 0, mode: "default" } as const;

const KEYS: KeySet<ClientCacheOptions> = { maxBytes: true, ttlMs: true, mode: true, prefixes: true, commands: true };

export function resolveClientCacheOptions(input: ClientCacheOptions | boolean | undefined, where: string): ResolvedClientCacheOptions | undefined {
  if (input === undefined || input === false) return undefined;
  const opts: ClientCacheOptions = input === true ? {} : input;
  checkKeys(where, opts, KEYS, "clientCache.");
  const maxBytes = opts.maxBytes ?? CLIENT_CACHE_DEFAULTS.maxBytes;
  if (typeof maxBytes !== "number" || !Number.isFinite(maxBytes) || maxBytes < 1) {
    throw new TypeError(`Option clientCache.maxBytes must be a positive number, got ${String(maxBytes)}`);
  }
  const ttlMs = opts.ttlMs ?? CLIENT_CACHE_DEFAULTS.ttlMs;
  if (typeof ttlMs !== "number" || Number.isNaN(ttlMs) || ttlMs < 0) {
    throw new TypeError(`Option clientCache.ttlMs must be a non-negative number, got ${String(ttlMs)}`);
  }
  const mode = opts.mode ?? CLIENT_CACHE_DEFAULTS.mode;
  if (mode !== "default" && mode !== "broadcast") throw new TypeError(`Option clientCache.mode must be "default" or "broadcast", got ${String(mode)}`);
  const prefixes = opts.prefixes ?? [];
  if (!Array.isArray(prefixes) || prefixes.some((p) => typeof p !== "string" || p === "")) {
    throw new TypeError("Option clientCache.prefixes must be an array of non-empty strings");
  }
  return { maxBytes, ttlMs: Number.isFinite(ttlMs) ? ttlMs : 0, mode, prefixes: [...new Set(prefixes)], commands: resolveCacheable(opts.commands) };
}
