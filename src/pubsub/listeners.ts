// What the caller wants: for each channel (or pattern), its listeners, and
// whether each wants payloads as Buffers. The subscriber (re)subscribes
// exactly these names on every socket, and delivers each message here.
import { RedisError } from "../errors.js";
import type { Reply } from "../protocol/decode.js";

/** channel: SUBSCRIBE; pattern: PSUBSCRIBE; shard: SSUBSCRIBE (sharded pub/sub, Redis 7). */
export type Kind = "channel" | "pattern" | "shard";
export type AnyListener = (message: string | Buffer, channel: string, pattern: string) => void;
/** listener -> wants Buffers */
type Listeners = Map<AnyListener, boolean>;

export class ListenerRegistry {
  private readonly wanted: Record<Kind, Map<string, Listeners>> = { channel: new Map(), pattern: new Map(), shard: new Map() };

  /** Names that have at least one listener. */
  names(kind: Kind): string[] {
    return [...this.wanted[kind].keys()];
  }

  has(kind: Kind, name: string): boolean {
    return this.wanted[kind].has(name);
  }

  get isEmpty(): boolean {
    return this.wanted.channel.size === 0 && this.wanted.pattern.size === 0 && this.wanted.shard.size === 0;
  }

  /** Add `listener` to every name; returns the names that had no listener before (to subscribe now). */
  add(kind: Kind, names: readonly string[], listener: AnyListener, buffers: boolean): string[] {
    const fresh: string[] = [];
    for (const name of names) {
      let listeners = this.wanted[kind].get(name);
      if (listeners === undefined) {
        listeners = new Map();
        this.wanted[kind].set(name, listeners);
        fresh.push(name);
      }
      listeners.set(listener, buffers);
    }
    return fresh;
  }

  /** Remove `listener` (or every listener) from every name; returns the names left with none (to unsubscribe). */
  remove(kind: Kind, names: readonly string[], listener: AnyListener | undefined): string[] {
    const gone: string[] = [];
    for (const name of names) {
      const listeners = this.wanted[kind].get(name);
      if (listeners === undefined) continue;
      if (listener !== undefined) listeners.delete(listener);
      else listeners.clear();
      if (listeners.size === 0) {
        this.wanted[kind].delete(name);
        gone.push(name);
      }
    }
    return gone;
  }

  /** The server refused `name`: it would fail on any socket, so nobody listens to it any more. */
  drop(kind: Kind, name: string): void {
    this.wanted[kind].delete(name);
  }

  /**
   * Call every listener of `name` (the channel; for a pattern message, the
   * pattern, and `patternChannel` the channel). A listener that throws is
   * reported through `onError`; the others still get the message.
   */
  deliver(kind: Kind, name: string, payload: Reply, patternChannel: string | undefined, onError: (error: RedisError) => void): void {
    const listeners = this.wanted[kind].get(name);
    if (listeners === undefined || listeners.size === 0) return;
    if (!Buffer.isBuffer(payload) && typeof payload !== "string") return;
    const channel = patternChannel ?? name;
    const pattern = kind === "pattern" ? name : "";
    let asText: string | undefined;
    // A snapshot: a listener may unsubscribe (itself or others) while we loop.
    for (const [listener, buffers] of [...listeners]) {
      let message: string | Buffer;
      if (buffers) message = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
      else message = asText ??= Buffer.isBuffer(payload) ? payload.toString("utf8") : payload;
      try {
        if (kind === "pattern") listener(message, channel, pattern);
        else (listener as (m: string | Buffer, c: string) => void)(message, channel);
      } catch (err) {
        // A throwing listener must not desync the socket (the decoder would
        // treat it as corrupt input), nor starve the other listeners.
        onError(new RedisError(`A pub/sub listener for "${channel}" threw`, "ERR_RESPITE_LISTENER", false, { cause: err }));
      }
    }
  }
}
