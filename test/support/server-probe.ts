// Talking to a test server from outside any client: a free port to start it
// on, one command on a fresh socket, an INFO reply as fields. The harnesses
// use these to decide readiness and to drive faults.
import { createServer, Socket } from "node:net";
// The replies keep the client's shapes (Reply, ReplyError) so callers read
// them as before, but the bytes are written and read by the harness's own
// RESP code (resp-writer.ts, resp-reader.ts), never by src/protocol: an
// oracle must not share a codec bug with the client it checks.
import type { Arg } from "../../src/protocol/encode.js";
import type { Reply } from "../../src/protocol/decode.js";
import { ReplyError } from "../../src/errors.js";
import { RespError, RespReader, type RespValue } from "./resp-reader.js";
import { writeCommand } from "./resp-writer.js";

const HOST = "127.0.0.1";

/** A port that was free a moment ago (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const address = srv.address();
      if (address === null || typeof address === "string") {
        srv.close();
        reject(new Error("could not read the port of a listening socket"));
        return;
      }
      srv.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}

/**
 * Send one command on a fresh socket and settle with its reply. With a
 * password, AUTH goes first on the same socket (a failed AUTH rejects). The
 * socket is always destroyed; the deadline covers connect and replies.
 */
export function sendCommand(
  port: number,
  args: readonly Arg[],
  timeoutMs: number,
  password?: string,
  host = HOST,
): Promise<Reply> {
  const name = String(args[0]).toUpperCase();
  const commands: (readonly Arg[])[] = password === undefined ? [args] : [["AUTH", password], args];
  // Throws a TypeError for a bad argument, before any socket is opened.
  const bytes = Buffer.concat(commands.map((c) => writeCommand(c)));
  return new Promise<Reply>((resolve, reject) => {
    const socket = new Socket();
    let settled = false;
    let awaiting = commands.length;
    const finish = (err: Error | null, reply?: Reply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply ?? null);
    };
    const timer = setTimeout(
      () => finish(new Error(`${name} to ${host}:${port} got no reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const reader = new RespReader();
    socket.on("data", (chunk: Buffer) => {
      let values: RespValue[];
      try {
        values = reader.feed(chunk);
      } catch (err) {
        finish(err as Error);
        return;
      }
      for (const value of values) {
        if (value instanceof RespError) {
          finish(new ReplyError(value.message));
          return;
        }
        if (--awaiting === 0) {
          finish(null, toReply(value));
          return;
        }
      }
    });
    socket.on("error", (err) => finish(err));
    socket.on("close", () => finish(new Error(`${name} to ${host}:${port}: connection closed before a reply`)));
    socket.connect(port, host, () => socket.write(bytes));
  });
}

/** The client's shape of a reply: nested error replies (inside EXEC results) become ReplyError values. */
export function toReply(value: RespValue): Reply {
  if (value instanceof RespError) return new ReplyError(value.message);
  if (Array.isArray(value)) return value.map(toReply);
  return value;
}

/** "field:value" lines of an INFO / CLUSTER INFO reply. */
export function parseInfo(reply: Reply): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof reply !== "string") return out;
  for (const line of reply.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
