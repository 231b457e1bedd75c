// What the simulation test files route through vi.mock (the factories must
// live in each test file, hoisted; they call these):
//
//   vi.mock("node:net", async (orig) => (await import("./mocks.js")).mockNet(await orig()));
//   vi.mock("../../src/request.js", async (orig) => (await import("./mocks.js")).mockRequest(await orig()));
//
// mockNet: net.connect() returns a SimSocket of the active SimNet, so the
// real dial() and openConnection() run over the in-memory network.
// mockRequest: Request is subclassed (nothing else changes) so the registry
// sees every request the client creates and every settle attempt: "every
// promise settles exactly once" is checked on the client's own requests,
// handshake ones included, not only on what a caller can see.
import type * as NetModule from "node:net";
import type * as RequestModule from "../../src/request.js";
import { noteCreated, noteSettleAttempt } from "./request-registry.js";
import { simConnect } from "./sim-net.js";

export function mockNet(real: typeof NetModule): typeof NetModule {
  const connect = ((options: { host?: string; port?: number }) => simConnect(options)) as unknown as typeof NetModule.connect;
  return { ...real, default: { ...real, connect, createConnection: connect }, connect, createConnection: connect } as typeof NetModule;
}

export function mockRequest(real: typeof RequestModule): typeof RequestModule {
  class Request extends real.Request {
    constructor(...args: ConstructorParameters<typeof real.Request>) {
      super(...args);
      noteCreated(this);
    }

    override resolve(reply: Parameters<RequestModule.Request["resolve"]>[0]): void {
      const was = this.state === real.RequestState.Settled;
      super.resolve(reply);
      noteSettleAttempt(this, was);
    }

    override fail(error: Parameters<RequestModule.Request["fail"]>[0]): void {
      const was = this.state === real.RequestState.Settled;
      super.fail(error);
      noteSettleAttempt(this, was);
    }
  }
  return { ...real, Request };
}
