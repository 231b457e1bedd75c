// Open a ready-to-use connection: dial, then the handshake (AUTH, SELECT,
// CLIENT SETNAME) before any user command, on every (re)connect. The whole of
// it is bounded by connectTimeoutMs, and a socket that dies mid-handshake
// fails the attempt (the caller backs off) instead of hanging. The owner's
// AbortSignal ends it at once: a client destroyed mid-dial must not be kept
// alive, nor keep the process alive, until connectTimeoutMs.
import { ClientClosedError, ConnectionError, ReplyError, type RedisError } from "../errors.js";
import type { Socket } from "node:net";
import type { Credentials, CredentialsProvider, ResolvedOptions, ServerAddress } from "../options.js";
import type { Reply } from "../protocol/decode.js";
import type { Command } from "../protocol/encode.js";
import { Request } from "../request.js";
import { dial } from "./dial.js";
import { RespSocket, type RespSocketEvents } from "./resp-socket.js";

/** One command on a socket still being set up (a check after the handshake: ROLE, READONLY). */
export type SetupExec = (command: Command) => Promise<Reply>;

/**
 * Where a connection goes and what it must pass, for a router above the
 * client (Sentinel, a cluster): `resolveAddress` is asked on every dial
 * (instead of host/port) and bounds its own time; `verify` runs after the
 * handshake, and its rejection fails the attempt (the owner backs off).
 */
export interface ConnectionRoute {
  resolveAddress?: () => Promise<ServerAddress>;
  verify?: (exec: SetupExec, address: ServerAddress, socket: Socket) => Promise<void>;
}

export function handshakeCommands(options: ResolvedOptions, protocol: 2 | 3 = 2): Command[] {
  const cmds: Command[] = [];
  if (protocol === 3) {
    // One round trip for the protocol, the credentials and the name; HELLO's
    // reply is the server's answer that proves the connection.
    const hello: string[] = ["HELLO", "3"];
    if (options.password !== undefined) hello.push("AUTH", options.username ?? "default", options.password);
    if (options.clientName !== undefined) hello.push("SETNAME", options.clientName);
    cmds.push(hello);
    if (options.db !== 0) cmds.push(["SELECT", options.db]);
    return cmds;
  }
  if (options.password !== undefined) {
    cmds.push(options.username !== undefined ? ["AUTH", options.username, options.password] : ["AUTH", options.password]);
  }
  if (options.db !== 0) cmds.push(["SELECT", options.db]);
  if (options.clientName !== undefined) cmds.push(["CLIENT", "SETNAME", options.clientName]);
  // With nothing else to say, PING: a connection counts as up only once the
  // server has answered. A proxy that accepts for a dead backend, or a server
  // that accepts and drops, must not look ready (commands sent in
  // that moment failed as maybe executed, and the loss was redialled at once).
  if (cmds.length === 0) cmds.push(["PING"]);
  return cmds;
}

/**
 * Replies that retrying cannot fix end the client (no reconnect storm with a
 * wrong password): auth-failed and handshake-failed. Anything else is worth
 * retrying after the backoff: LOADING (the server is reading its dataset),
 * and "-ERR max number of clients reached", which a full server sends as
 * the reply to whatever comes first, AUTH included.
 */
const UNFIXABLE = /^(WRONGPASS|NOAUTH|NOPERM)\b|invalid (username-)?password|without any password configured|no password is set|DB index is out of range|invalid DB index|cannot contain spaces/i;

function classify(command: Command, error: ReplyError, options: ResolvedOptions): ConnectionError {
  if (!UNFIXABLE.test(error.message)) {
    return new ConnectionError(`Connection setup was refused for now: ${error.message}`, "connect-failed", false, { cause: error });
  }
  if (command[0] === "AUTH" || (command[0] === "HELLO" && command.includes("AUTH"))) {
    // The reply never holds the password, and neither does our message.
    const who = options.username !== undefined ? ` as user "${options.username}"` : "";
    return new ConnectionError(`Authentication${who} failed: ${error.message}`, "auth-failed", false, { cause: error });
  }
  return new ConnectionError(`Connection setup failed at ${String(command[0])} ${String(command[1])}: ${error.message}`, "handshake-failed", false, {
    cause: error,
  });
}

/**
 * The provider's credentials, within timeoutMs (0: no limit). A provider that
 * throws, hangs or hands back no password fails this dial with a
 * ConnectionError ("credentials-failed"): the owner backs off and asks again,
 * never in a tight loop. The message never holds what the provider returned.
 */
export async function fetchCredentials(provider: CredentialsProvider, timeoutMs: number): Promise<Credentials> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const asked = Promise.resolve().then(() => (typeof provider === "function" ? provider() : provider.get()));
    const bounded =
      timeoutMs > 0
        ? Promise.race([
            asked,
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new ConnectionError(`The credentials provider did not answer within ${timeoutMs} ms`, "credentials-failed", false)), timeoutMs);
            }),
          ])
        : asked;
    const creds = await bounded.catch((err: unknown) => {
      if (err instanceof ConnectionError) throw err;
      throw new ConnectionError("The credentials provider failed", "credentials-failed", false, { cause: err });
    });
    if (typeof creds !== "object" || creds === null || typeof creds.password !== "string" || (creds.username !== undefined && typeof creds.username !== "string")) {
      throw new ConnectionError("The credentials provider must return { username?: string, password: string }", "credentials-failed", false);
    }
    return creds;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** The marker of a HELLO the server does not know (never seen outside openConnection). */
const HELLO_UNKNOWN = Symbol("hello-unknown");

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** Settles as `promise`, or rejects with ClientClosedError as soon as `signal` aborts. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(new ClientClosedError());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new ClientClosedError());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Dial and hand-shake one connection. Rejects with a ConnectionError, or with
 * ClientClosedError once `signal` aborts (the owner was closed or destroyed):
 * the socket is destroyed and every timer of the attempt cleared.
 */
/** Does this refusal of HELLO say the server predates it (Redis < 6)? Then RESP2 it is. */
function helloUnknown(command: Command, error: unknown): boolean {
  return command[0] === "HELLO" && error instanceof ReplyError && /unknown command/i.test(error.message);
}

/**
 * `protocol`: what to ask for (the connector remembers a fallback); when the
 * server does not know HELLO, the handshake is done again in RESP2 on the
 * same socket and `onFallback` is told.
 */
export async function openConnection(
  options: ResolvedOptions,
  events: RespSocketEvents,
  signal?: AbortSignal,
  route?: ConnectionRoute,
  protocol: 2 | 3 = 2,
  onFallback?: () => void,
): Promise<RespSocket> {
  if (isAborted(signal)) throw new ClientClosedError();
  // The address may come from a resolver, asked again on every dial (it
  // bounds its own time; connectTimeoutMs covers what follows).
  const resolveAddress = route?.resolveAddress;
  const target = resolveAddress === undefined ? options : { ...options, ...(await unlessAborted(resolveAddress(), signal)) };
  const started = Date.now();
  // Rotating credentials are asked for on every dial, before it (bounded by connectTimeoutMs).
  const creds = options.credentials === undefined ? undefined : await unlessAborted(fetchCredentials(options.credentials, options.connectTimeoutMs), signal);
  const socket = await dial(target, Math.max(options.connectTimeoutMs > 0 ? 1 : 0, options.connectTimeoutMs - (Date.now() - started)), signal);
  // The owner hears of the socket's close only once it was handed over;
  // before that a close fails the handshake, after a failed one it is ours.
  let phase: "handshake" | "open" | "abandoned" = "handshake";
  let lost: ((error: RedisError) => void) | undefined;
  const conn = new RespSocket(socket, options.maxReplyBytes, {
    ...events,
    onClose(error, unanswered) {
      if (phase === "open") {
        events.onClose(error, unanswered);
        return;
      }
      for (const r of unanswered) r.failConnection(error);
      lost?.(new ConnectionError("Connection lost during the handshake", "connect-failed", false, { cause: error }));
    },
  }, options.integers, options.replies);
  const authed = creds === undefined ? options : { ...options, username: creds.username, password: creds.password };
  const verify = route?.verify;
  // What is left of connectTimeoutMs for the next step: one budget for the dial and every handshake step (a RESP2 fallback included).
  const remaining = (): number => (options.connectTimeoutMs > 0 ? Math.max(1, options.connectTimeoutMs - (Date.now() - started)) : 0);
  // An abort fails whichever step is waiting; the catch below destroys the socket.
  const onAbort = (): void => lost?.(new ClientClosedError());
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (isAborted(signal)) throw new ClientClosedError(); // during the dial's last tick
    const exchange = (cmds: Command[]): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        lost = reject;
        const left = remaining();
        const reqs = cmds.map((c) => new Request(c, undefined, left));
        for (const r of reqs) conn.write(r);
        Promise.all(reqs.map((r, i) => r.promise.catch((err: unknown) => Promise.reject({ i, err })))).then(
          () => resolve(),
          ({ i, err }: { i: number; err: unknown }) => {
            const cmd = cmds[i] as Command;
            if (helloUnknown(cmd, err)) {
              reject(HELLO_UNKNOWN);
              return;
            }
            reject(
              err instanceof ReplyError
                ? classify(cmd, err, options)
                : new ConnectionError("Connection setup timed out or was lost", "connect-failed", false, { cause: err }),
            );
          },
        );
      });
    try {
      await exchange(handshakeCommands(authed, protocol));
      conn.resp2Shapes = protocol === 3 && options.replies === "compat";
    } catch (err) {
      if (err !== HELLO_UNKNOWN) throw err;
      // Redis < 6: the same socket, the RESP2 handshake (what HELLO carried, step by step).
      await exchange(handshakeCommands(authed, 2));
      onFallback?.();
    }
    if (verify !== undefined) {
      if (isAborted(signal)) throw new ClientClosedError(); // between the two steps
      // A check after the handshake (ROLE, READONLY), raced against socket
      // loss like the handshake; a rejection fails this attempt.
      await new Promise<void>((resolve, reject) => {
        lost = reject;
        const exec = (command: Command): Promise<Reply> => {
          const req = new Request(command, undefined, remaining());
          conn.write(req);
          return req.promise;
        };
        verify(exec, { host: target.host, port: target.port }, socket).then(resolve, reject);
      });
    }
  } catch (err) {
    phase = "abandoned";
    conn.destroy();
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  phase = "open";
  return conn;
}
