// One socket speaking RESP: the sender (encoded requests out, coalesced into
// one write per call) and the receiver (bytes -> decoder -> settle the head of
// the FIFO of written requests). Both transports build on it: the pipelined
// transport keeps many requests in flight, a pooled connection one at a time.
import type { Socket } from "node:net";
import { ProtocolError, type ReplyError } from "../errors.js";
import { Decoder, type IntegerMode, type Reply, type ReplyMode } from "../protocol/decode.js";
import type { Encoded } from "../protocol/encode.js";
import { RequestState, type Request } from "../request.js";
import { Deque } from "./deque.js";
import { execToResp2Shape, toResp2Shape } from "../protocol/resp2-shape.js";

export interface RespSocketEvents {
  /** Called exactly once, with every request that was written and not yet answered. */
  onClose(error: Error | undefined, unanswered: Request[]): void;
  /** The kernel buffer drained after a write returned false. */
  onDrain?(): void;
  /** The FIFO became empty (graceful close waits for it). */
  onIdle?(): void;
  /**
   * Replies that belong to no request (pub/sub messages). Returns true when
   * consumed; otherwise a reply with no waiter is a protocol violation.
   */
  onPush?(reply: Reply): boolean;
  /**
   * An error reply that belongs to no request (a refused SUBSCRIBE sent with
   * writeUntracked). Returns true when consumed; otherwise it is a protocol
   * violation, like any reply with no waiter.
   */
  onPushError?(error: ReplyError): boolean;
}

/** About how much one socket write carries when the queue is long (a string's length counts its UTF-16 units). */
const SLICE_BYTES = 64 * 1024;

export class RespSocket {
  private readonly inflight = new Deque<Request>();
  private readonly decoder: Decoder;
  private error: Error | undefined;
  private closed = false;
  /**
   * destroy() was called; 'close' has not fired yet. Nothing may be written
   * in between: it would never reach the server, yet be reported as maybe
   * executed and not re-sent.
   */
  private dying = false;
  /**
   * Set by the handshake once HELLO 3 succeeded with replies "compat": the
   * replies whose structure differs between the protocols are reshaped.
   */
  resp2Shapes = false;
  /** True after a write returned false, until 'drain'. */
  needsDrain = false;
  /** Parse mode for pushes, once an owner asked for one (setPushReturnBuffers). */
  private pushReturnBuffers: boolean | undefined;

  constructor(
    readonly socket: Socket,
    maxReplyBytes: number,
    private readonly events: RespSocketEvents,
    integers: IntegerMode = "number",
    replies: ReplyMode = "compat",
  ) {
    this.decoder = new Decoder(
      {
        onReply: (reply) => this.settleHead(reply, undefined),
        onErrorReply: (error) => this.settleHead(null, error),
        onProtocolError: (error) => this.destroy(error),
        // RESP3 push frames (after HELLO 3) never belong to a request: they
        // go to the owner's onPush. One nobody consumes is dropped: unlike a
        // RESP2 reply with no waiter, it cannot mean the FIFO is out of step.
        onPush: (frame) => {
          this.events.onPush?.(frame);
        },
      },
      maxReplyBytes,
      integers,
      { replies },
    );
    socket.on("data", (chunk: Buffer) => this.decoder.write(chunk));
    socket.on("error", (err: Error) => {
      this.error ??= err;
    });
    socket.on("close", () => this.handleClose());
    socket.on("drain", () => {
      this.needsDrain = false;
      this.events.onDrain?.();
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Written requests still waiting for their reply (timed-out ones included: their slot stays). */
  get inflightCount(): number {
    return this.inflight.length;
  }

  /** Written requests whose callers still wait (a timed-out one keeps its slot but waits no more). */
  unsettledInflight(): Request[] {
    return this.inflight.toArray().filter((r) => r.state !== RequestState.Settled);
  }

  /**
   * Write every unsettled request of `queue` (emptying it) in one socket
   * write. Returns false when the socket asked us to wait for 'drain'.
   */
  writeQueue(queue: Deque<Request>): boolean {
    // Left queued: the owner re-sends them on its next connection.
    if (this.closed || this.dying) return false;
    while (queue.length > 0 && !this.needsDrain) this.writeSlice(queue);
    return !this.needsDrain;
  }

  /**
   * Write the head of `queue`, about SLICE_BYTES of it, in one socket write.
   * What stays queued waits for 'drain' when the socket says so: a server
   * that reads slowly holds our queue, not megabytes in the socket's buffer.
   * A slice never ends inside a group: its members leave in one write, so a
   * group deadline can never fall between MULTI and EXEC.
   */
  private writeSlice(queue: Deque<Request>): void {
    let text = "";
    let chunks: (string | Buffer)[] | undefined;
    let bytes = 0;
    let last: Request | undefined;
    let req: Request | undefined;
    while ((req = queue.peek()) !== undefined) {
      if (bytes >= SLICE_BYTES && (last?.group === undefined || req.group !== last.group)) break;
      queue.shift();
      if (req.state === RequestState.Settled) continue; // timed out or aborted while queued
      this.track(req);
      last = req;
      const e = req.encoded;
      bytes += e.length;
      if (typeof e === "string") {
        text += e;
      } else {
        chunks ??= [];
        if (text !== "") chunks.push(text);
        chunks.push(e);
        text = "";
      }
    }
    if (chunks === undefined) {
      if (text !== "") this.writeRaw(text);
      return;
    }
    if (text !== "") chunks.push(text);
    this.socket.cork();
    for (const c of chunks) this.writeRaw(c);
    this.socket.uncork();
  }

  /** Write one request. Returns false when the socket asked us to wait for 'drain'. */
  write(req: Request): boolean {
    if (req.state === RequestState.Settled) return !this.needsDrain;
    if (this.closed || this.dying) {
      // Tracking it would leave it unsettled forever; it was never sent.
      req.failConnection(this.error);
      return false;
    }
    this.track(req);
    return this.writeRaw(req.encoded);
  }

  /**
   * Write a command whose replies do not go through the FIFO: they arrive
   * through onPush / onPushError (pub/sub, where one SUBSCRIBE gets one reply
   * per channel). Returns false when the socket asked us to wait for 'drain'.
   */
  writeUntracked(encoded: Encoded): boolean {
    return this.writeRaw(encoded);
  }

  /**
   * Parse replies that have no waiter (pushes) as Buffers or strings. Applies
   * whenever the FIFO is empty; tracked requests still get their own wish.
   */
  setPushReturnBuffers(returnBuffers: boolean): void {
    this.pushReturnBuffers = returnBuffers;
    this.decoder.setPushReturnBuffers(returnBuffers); // RESP3 push frames, whatever the FIFO head wants
    if (this.inflight.length === 0) this.decoder.setReturnBuffers(returnBuffers);
  }

  /**
   * Graceful close once nothing is owed: our FIN goes out after the bytes
   * already written, then the socket is closed without waiting for the
   * server's FIN (a frozen server would never send it, and close() must
   * resolve anyway).
   */
  end(): void {
    if (!this.closed) this.socket.end(() => this.socket.destroy());
  }

  /**
   * Close at once without telling the owner, handing back the requests that
   * were written and unanswered (destroy() of the client settles them itself).
   */
  abandon(): Request[] {
    if (this.closed) return [];
    this.closed = true;
    this.socket.destroy();
    this.decoder.reset();
    return this.inflight.drain();
  }

  destroy(error?: Error): void {
    if (this.closed) return;
    this.dying = true;
    this.error ??= error;
    this.socket.destroy();
  }

  private track(req: Request): void {
    req.everWritten = true;
    if (this.inflight.length === 0) this.decoder.setReturnBuffers(req.returnBuffers);
    req.state = RequestState.Written;
    this.inflight.push(req);
  }

  private writeRaw(data: string | Buffer): boolean {
    if (this.closed) return false;
    const ok = this.socket.write(data);
    if (!ok) this.needsDrain = true;
    return ok;
  }

  /**
   * The few replies whose RESP3 structure differs from RESP2's, put back in
   * RESP2's shape (src/protocol/resp2-shape.ts); EXEC's results by the
   * commands its group queued.
   */
  private inResp2Shape(req: Request, reply: Reply): Reply {
    const shape = req.sem.resp3;
    if (shape !== undefined) return toResp2Shape(shape, req.args, reply);
    const group = req.group?.requests;
    if (group !== undefined && req === group[group.length - 1] && req.name === "EXEC") {
      const multi = group.findIndex((r) => r.name === "MULTI");
      return execToResp2Shape(group.slice(multi + 1, -1), reply);
    }
    return reply;
  }

  private settleHead(reply: Reply, error: ReplyError | undefined): void {
    const req = this.inflight.shift();
    if (req === undefined) {
      if (error === undefined ? this.events.onPush?.(reply) === true : this.events.onPushError?.(error) === true) return;
      this.destroy(new ProtocolError("Received a reply that no command was waiting for"));
      return;
    }
    const next = this.inflight.peek();
    // The next reply parsed belongs to the new head: give the parser its wish now.
    if (next !== undefined) this.decoder.setReturnBuffers(next.returnBuffers);
    else if (this.pushReturnBuffers !== undefined) this.decoder.setReturnBuffers(this.pushReturnBuffers);
    if (error !== undefined) req.replyError(error);
    else if (!this.resp2Shapes) req.resolve(reply);
    else req.resolve(this.inResp2Shape(req, reply));
    if (next === undefined) this.events.onIdle?.();
  }

  private handleClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.decoder.reset();
    this.events.onClose(this.error, this.inflight.drain());
  }
}
