// How to reach a server: dial, handshake (AUTH, SELECT, SETNAME), and any
// check after it. Every connection owner (the transports, the subscriber,
// the sentinel watcher) opens its sockets through one. A plain client's
// connector dials the configured address; behind Sentinel, the connector asks
// the sentinels for the address on every dial and checks the node's ROLE.
import type { ResolvedOptions } from "../options.js";
import { openConnection, type ConnectionRoute } from "./handshake.js";
import type { RespSocket, RespSocketEvents } from "./resp-socket.js";

export interface Connector {
  /**
   * One ready connection. Rejects with a ConnectionError (its reason tells
   * whether retrying can help), or with ClientClosedError once `signal`
   * aborts; the socket and every timer of the attempt are gone then.
   */
  open(events: RespSocketEvents, signal: AbortSignal): Promise<RespSocket>;
}

/** Dial `options`' address (or the route's, asked on every dial). */
export function createConnector(options: ResolvedOptions, route?: ConnectionRoute): Connector {
  return { open: (events, signal) => openConnection(options, events, signal, route) };
}
