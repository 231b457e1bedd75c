// How to reach a server: dial, handshake (AUTH, SELECT, SETNAME), and any
// check after it. Every connection owner (the transports, the subscriber,
// the sentinel watcher) opens its sockets through one. A plain client's
// connector dials the configured address; behind Sentinel, the connector asks
// the sentinels for the address on every dial and checks the node's ROLE.
import { connectChannel, type ClientIdentity } from "../observability/channels.js";
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

/**
 * Dial `options`' address (or the route's, asked on every dial); each dial is
 * traced on respite:connect for `id`'s client. With protocol 3, a server that
 * does not know HELLO is spoken to in RESP2 from then on, and `onFallback`
 * is told once.
 */
export function createConnector(options: ResolvedOptions, route?: ConnectionRoute, id?: ClientIdentity, onFallback?: () => void): Connector {
  let protocol = options.protocol;
  const fellBack = (): void => {
    if (protocol === 2) return;
    protocol = 2;
    onFallback?.();
  };
  const open = (events: RespSocketEvents, signal: AbortSignal): Promise<RespSocket> => openConnection(options, events, signal, route, protocol, fellBack);
  return {
    open(events, signal) {
      if (id === undefined || !connectChannel.hasSubscribers) return open(events, signal);
      const ctx = { clientId: id.clientId, serverAddress: id.serverAddress, serverPort: id.serverPort };
      return connectChannel.tracePromise(() => open(events, signal), ctx);
    },
  };
}
