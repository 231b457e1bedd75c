// A minimal RESP connection for the bench's own chores (readiness probe,
// INFO, FLUSHALL, preloading data), deliberately independent of the clients
// under test: it encodes by hand and decodes with redis-parser directly, so a
// bug in respite cannot corrupt the data set respite is then verified against.
import { Socket } from "node:net";
import RedisParser from "redis-parser";

function encode(args: readonly string[]): string {
  let out = "*" + args.length + "\r\n";
  for (const a of args) out += "$" + Buffer.byteLength(a) + "\r\n" + a + "\r\n";
  return out;
}

/** Where to connect, and what to send first on every admin socket (AUTH, SELECT from REDIS_URL). */
export interface AdminTarget {
  host: string;
  port: number;
  prelude: readonly (readonly string[])[];
}

/** Send all commands on one fresh socket (pipelined) and resolve with their replies in order. Error replies reject. */
export async function adminBatch(target: AdminTarget, commands: readonly (readonly string[])[], timeoutMs: number): Promise<unknown[]> {
  const replies = await rawBatch(target.port, target.host, [...target.prelude, ...commands], timeoutMs);
  return replies.slice(target.prelude.length);
}

function rawBatch(port: number, host: string, commands: readonly (readonly string[])[], timeoutMs: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const replies: unknown[] = [];
    const socket = new Socket();
    let done = false;
    const finish = (err: Error | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(replies);
    };
    const timer = setTimeout(() => finish(new Error(`admin: no reply from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    const parser = new RedisParser({
      returnReply: (reply: unknown) => {
        replies.push(reply);
        if (replies.length === commands.length) finish(undefined);
      },
      returnError: (err) => finish(new Error(`admin: ${String(commands[replies.length]?.[0])}: ${err.message}`)),
      returnFatalError: (err) => finish(err),
    });
    socket.on("data", (chunk: Buffer) => parser.execute(chunk));
    socket.on("error", (err) => finish(err));
    socket.on("close", () => finish(new Error(`admin: ${host}:${port} closed the connection`)));
    socket.connect(port, host, () => {
      // Write in slices so a large batch does not build one giant string.
      for (let i = 0; i < commands.length; i += 1000) {
        socket.write(commands.slice(i, i + 1000).map(encode).join(""));
      }
    });
  });
}

export async function adminCommand(target: AdminTarget, args: readonly string[], timeoutMs: number): Promise<unknown> {
  const [reply] = await adminBatch(target, [args], timeoutMs);
  return reply;
}
