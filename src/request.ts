// One command on its way through a transport: its wire bytes, its flags, its
// deadline and signal, and the promise its caller awaits. It settles exactly
// once; whatever comes later (a late reply after a timeout, a second failure)
// is ignored here, so no transport needs its own "already settled?" logic.
import { blockingTimeoutMs, commandName, semantics, type CommandSemantics } from "./commands.js";
import { AbortError, ClientClosedError, ConnectionError, RedisError, ReplyError, TimeoutError } from "./errors.js";
import type { Reply } from "./protocol/decode.js";
import { unknownOption, type KeySet } from "./option-keys.js";
import { encodeCommand, type Command, type Encoded } from "./protocol/encode.js";
import type { RequestGroup } from "./request-group.js";

export interface CommandOptions {
  /** Return bulk strings as Buffers instead of UTF-8 strings. */
  returnBuffers?: boolean;
  /** Deadline for this call, in ms, replacing commandTimeoutMs; 0 = none. */
  timeoutMs?: number;
  /** Abort the call: it rejects with AbortError at once. */
  signal?: AbortSignal;
}

const COMMAND_OPTION_KEYS: KeySet<CommandOptions> = { returnBuffers: true, timeoutMs: true, signal: true };

/**
 * Throws a TypeError for an option name CommandOptions does not have. On the
 * hot path of every command: a for-in and a switch, no allocation (the cases
 * are COMMAND_OPTION_KEYS; test/features/strict-api.test.ts keeps them equal).
 */
export function checkCommandOptions(options: CommandOptions): void {
  if (typeof options !== "object") throw new TypeError(`command(args, options): options must be an object, got ${typeof options}`);
  for (const key in options) {
    switch (key) {
      case "returnBuffers":
      case "timeoutMs":
      case "signal":
        continue;
      default:
        throw unknownOption("command(args, options)", key, Object.keys(COMMAND_OPTION_KEYS));
    }
  }
}

export enum RequestState {
  /** Accepted, not yet handed to a socket. */
  Queued,
  /** Handed to socket.write(): the server may have it. */
  Written,
  Settled,
}

export class Request {
  readonly args: Command;
  readonly encoded: Encoded;
  readonly returnBuffers: boolean;
  /** What the command does to its connection (the command semantics table). */
  readonly sem: CommandSemantics;
  state = RequestState.Queued;
  /** Set once the request was re-sent after its socket died. */
  retried = false;
  /** The group it must be written with, back to back (MULTI … EXEC), if any. */
  group: RequestGroup | undefined;
  /**
   * Handed to a socket at least once. A read retried after its socket died is
   * Queued again, yet the server may have run it: maybeExecuted follows this,
   * not the current state, so a retried GET that then times out still says
   * it may have run.
   */
  everWritten = false;
  readonly promise: Promise<Reply>;
  private resolveFn!: (value: Reply) => void;
  private rejectFn!: (reason: Error) => void;
  private timer: NodeJS.Timeout | undefined;
  private signal: AbortSignal | undefined;
  private abortListener: (() => void) | undefined;
  private onSettle: ((req: Request) => void) | undefined;

  constructor(args: Command, options: CommandOptions | undefined, defaultTimeoutMs: number) {
    // Both throw a TypeError on bad input, before any state exists.
    if (options != null) checkCommandOptions(options);
    this.encoded = encodeCommand(args);
    this.args = args;
    this.sem = semantics(args);
    this.returnBuffers = options?.returnBuffers === true;
    this.promise = new Promise<Reply>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    const signal = options?.signal;
    if (signal) {
      if (signal.aborted) {
        this.fail(new AbortError(this.name, false, { cause: signal.reason }));
        return;
      }
      this.signal = signal;
      this.abortListener = () =>
        this.fail(new AbortError(this.name, this.everWritten, { cause: signal.reason }));
      signal.addEventListener("abort", this.abortListener);
    }
    let timeoutMs = options?.timeoutMs ?? defaultTimeoutMs;
    // A blocking command's own server-side timeout comes on top of the
    // command deadline (BLPOP k 5 with commandTimeoutMs 1000 may take 6 s).
    if (this.sem.holds && options?.timeoutMs === undefined && timeoutMs > 0) timeoutMs += blockingTimeoutMs(args);
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(() => this.fail(new TimeoutError(this.name, timeoutMs, this.everWritten)), timeoutMs);
    }
  }

  get readOnly(): boolean {
    return this.sem.readOnly;
  }

  get name(): string {
    return commandName(this.args);
  }

  get settled(): boolean {
    return this.state === RequestState.Settled;
  }

  /** Called once when the request settles, for transports that must react (a pooled socket to destroy). */
  whenSettled(callback: (req: Request) => void): void {
    this.onSettle = callback;
  }

  resolve(reply: Reply): void {
    if (this.state === RequestState.Settled) return;
    this.finish();
    this.resolveFn(reply);
  }

  /** An error reply from the server: the command reached it. */
  replyError(error: ReplyError): void {
    error.command = this.name;
    this.fail(error);
  }

  /** A RedisError, or a TypeError for input refused before anything was sent. */
  fail(error: RedisError | TypeError): void {
    if (this.state === RequestState.Settled) return;
    this.finish();
    this.rejectFn(error);
  }

  /** The socket this request was on died. */
  failConnection(cause: Error | undefined): void {
    const written = this.everWritten;
    const message = written
      ? `Connection lost after ${this.name} was sent; it may have executed`
      : `Connection lost before ${this.name} was sent`;
    this.fail(new ConnectionError(message, "socket-closed", written, { cause }));
  }

  /** The client closed before this request completed. */
  failClosed(): void {
    this.fail(new ClientClosedError(this.everWritten));
  }

  private finish(): void {
    this.state = RequestState.Settled;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.abortListener !== undefined) this.signal?.removeEventListener("abort", this.abortListener);
    const cb = this.onSettle;
    if (cb !== undefined) {
      this.onSettle = undefined;
      cb(this);
    }
  }

}

/**
 * A request respite sends for itself (a health-check PING, a re-AUTH): no
 * deadline of its own (the connection's fate decides it) and nobody awaits
 * it, so its failure is handled here.
 */
export function internalRequest(args: Command): Request {
  const r = new Request(args, { timeoutMs: 0 }, 0);
  r.promise.catch(() => undefined);
  return r;
}
