// PLACEHOLDER: replaced by the pooled transport (issue 4).
import { ConnectionError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";
import type { Request } from "../request.js";
import type { ClientStatus, DedicatedConnection, Transport, TransportEvents } from "../transport.js";

export class PooledTransport implements Transport {
  constructor(
    readonly options: ResolvedOptions,
    readonly events: TransportEvents,
  ) {}
  get status(): ClientStatus {
    return "idle";
  }
  connect(): Promise<void> {
    return Promise.resolve();
  }
  send(req: Request): void {
    req.fail(new ConnectionError("pooled transport not built yet", "offline", false));
  }
  withConnection<T>(_fn: (conn: DedicatedConnection) => Promise<T>): Promise<T> {
    return Promise.reject(new Error("not built"));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): void {}
}
