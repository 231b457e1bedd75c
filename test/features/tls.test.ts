// TLS (issue 7): rediss:// and the tls option against a redis-server with
// --tls-port and a certificate made at test time. A certificate that does not
// verify is fatal (like a wrong password): one clear error, no redial loop.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConnectionError, createClient, type Client, type ClientOptions, type TransportKind } from "../../src/index.js";
import { freePort, startRedis, type RedisServer } from "../support/redis-server.js";
import { TRANSPORTS, within } from "./support.js";
import { makeTestPki, type TestPki } from "./tls-certs.js";

let pki: TestPki;
let server: RedisServer;
let tlsPort: number;
const clients: Client[] = [];

function client(transport: TransportKind, options: ClientOptions): Client {
  const c = createClient({ transport, ...options });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  pki = makeTestPki();
  tlsPort = await freePort();
  server = await startRedis({
    args: ["--tls-port", String(tlsPort), "--tls-cert-file", pki.certFile, "--tls-key-file", pki.keyFile, "--tls-ca-cert-file", pki.caFile, "--tls-auth-clients", "no"],
  });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});
afterAll(async () => {
  await server?.stop();
  pki?.remove();
});

for (const transport of TRANSPORTS) {
  describe(`TLS (${transport})`, () => {
    it("rediss:// with the CA: commands, batches and pub/sub run over TLS", async () => {
      const c = client(transport, { url: `rediss://127.0.0.1:${tlsPort}/2`, tls: { ca: pki.ca } });
      expect(await c.set(`${transport}:tls:k`, "secret")).toBe("OK");
      expect(await c.get(`${transport}:tls:k`)).toBe("secret");
      expect(await c.batch([["INCR", `${transport}:tls:n`], ["INCR", `${transport}:tls:n`]], { atomic: true })).toEqual([1, 2]);
      const info = String(await c.command(["CLIENT", "INFO"]));
      expect(info).toMatch(/ db=2 /);
      let message!: (m: string) => void;
      const got = new Promise<string>((resolve) => (message = resolve));
      await c.subscribe(`${transport}:tls:ch`, (m) => message(m));
      await c.command(["PUBLISH", `${transport}:tls:ch`, "over tls"]);
      expect(await within(got, 3000, "TLS pub/sub message")).toBe("over tls");
    });

    it("the tls option with host/port, checking the host name localhost", async () => {
      const c = client(transport, { host: "localhost", port: tlsPort, tls: { ca: pki.ca } });
      expect(await c.ping()).toBe("PONG");
    });

    it("a wrong CA fails with a clear, fatal error and no redial loop", async () => {
      const c = client(transport, { url: `rediss://127.0.0.1:${tlsPort}`, tls: { ca: pki.wrongCa }, reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
      let reconnects = 0;
      c.on("reconnecting", () => reconnects++);
      const err = await c.ping().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as ConnectionError).reason).toBe("handshake-failed");
      expect((err as ConnectionError).message).toMatch(/^TLS certificate check failed for 127\.0\.0\.1:\d+ \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/);
      // Later commands get the same error at once: nothing dials again.
      const again = await c.ping().catch((e: unknown) => e);
      expect(again).toBeInstanceOf(ConnectionError);
      expect((again as ConnectionError).reason).toBe("handshake-failed");
      expect(reconnects).toBe(0);
    });

    it("a plain redis:// client on the TLS port gets a connection error, never a reply", async () => {
      const c = client(transport, { url: `redis://127.0.0.1:${tlsPort}`, reconnect: false, connectTimeoutMs: 1000 });
      const err = await c.ping().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectionError);
    });
  });
}
