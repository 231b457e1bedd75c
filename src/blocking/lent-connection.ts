// The socket a caller borrows (withConnection(), or a batch that runs on a
// connection of its own): commands go straight onto it (several may be in
// flight: MULTI … EXEC written back to back), and it remembers what they
// changed so the transport can tell, on release, whether the socket may be
// lent again.
import { refusal } from "../commands.js";
import { ConnectionReleasedError, type RedisError } from "../errors.js";
import type { Reply } from "../protocol/decode.js";
import type { Command } from "../protocol/encode.js";
import { Request, type CommandOptions } from "../request.js";
import type { DedicatedConnection } from "../transport.js";
import type { PooledSocket } from "./pooled-socket.js";
import { SessionState } from "./session-state.js";

export class LentConnection implements DedicatedConnection {
  private readonly session: SessionState;
  private released = false;

  constructor(
    private readonly socket: PooledSocket,
    db: number,
    private readonly commandTimeoutMs: number,
    /** The transport's error once it is closed (destroy() under a running callback). */
    private readonly closedError: () => RedisError | undefined,
  ) {
    this.session = new SessionState(db);
  }

  command(args: Command, options?: CommandOptions): Promise<Reply> {
    let req: Request;
    try {
      req = new Request(args, options, this.commandTimeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    const why = refusal(args, "lent");
    if (why !== undefined) req.fail(new TypeError(why));
    else this.send(req);
    return req.promise;
  }

  /** Write one request on the lent socket (already checked against the semantics table). */
  send(req: Request): void {
    if (req.settled) return; // an already-aborted signal
    const closed = this.closedError();
    if (closed !== undefined) req.fail(closed);
    else if (this.released) req.fail(new ConnectionReleasedError());
    else if (!this.socket.usable) req.failConnection(undefined); // never written: maybeExecuted false
    else {
      this.session.note(req.args);
      this.socket.conn.write(req);
    }
  }

  /** The callback finished. Returns whether the socket may be lent again. */
  release(): boolean {
    this.released = true;
    return !this.session.dirty && this.socket.clean;
  }
}
