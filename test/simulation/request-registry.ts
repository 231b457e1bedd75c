// Every Request the client creates during one simulated run (see mocks.ts):
// when it was created, whether a caller of the harness created it (inside a
// command() or batch() call) or the client did on its own (the handshake),
// and each attempt to settle it.
import type { Request } from "../../src/request.js";

export interface RequestRecord {
  req: Request;
  createdAt: number;
  /** Created inside a harness call to command()/batch() (not a handshake PING). */
  user: boolean;
  /** Which harness call created it (the members of one batch share it); 0 for the client's own. */
  call: number;
  /** Settle attempts that settled it (must end as exactly 1). */
  settles: number;
  /** Attempts after it had settled (ignored by Request by design; counted for the record). */
  late: number;
  settledAt: number | undefined;
}

interface Sink {
  now(): number;
  userCall: boolean;
  callId: number;
  records: Map<Request, RequestRecord>;
}

let sink: Sink | undefined;

export function startRegistry(now: () => number): Sink {
  sink = { now, userCall: false, callId: 0, records: new Map() };
  return sink;
}

export function stopRegistry(): void {
  sink = undefined;
}

function record(req: Request): RequestRecord | undefined {
  const s = sink;
  if (s === undefined) return undefined;
  let r = s.records.get(req);
  if (r === undefined) {
    r = { req, createdAt: s.now(), user: s.userCall, call: s.userCall ? s.callId : 0, settles: 0, late: 0, settledAt: undefined };
    s.records.set(req, r);
  }
  return r;
}

export function noteCreated(req: Request): void {
  record(req);
}

export function noteSettleAttempt(req: Request, wasSettled: boolean): void {
  const r = record(req);
  if (r === undefined) return;
  if (wasSettled) {
    r.late++;
    return;
  }
  if (req.settled) {
    r.settles++;
    r.settledAt = sink?.now();
  }
}

/** Run `fn` as a harness call: the requests it creates are the callers'. */
export function asUser<T>(fn: () => T): T {
  const s = sink;
  if (s === undefined) return fn();
  const before = s.userCall;
  s.userCall = true;
  s.callId++;
  try {
    return fn();
  } finally {
    s.userCall = before;
  }
}
