// ACL (issue 7): username/password; a missing permission is a NOPERM
// ReplyError for that command only (the connection stays); the selected db
// and the client name survive reconnects.
import { inspect } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { ConnectionError, ReplyError, type Client } from "../../src/index.js";
import { TRANSPORTS, useRedis, within } from "./support.js";

const redis = useRedis();

beforeAll(async () => {
  // Keys and channels under app:, every command but DEL and FLUSHALL.
  await redis.server.admin(["ACL", "SETUSER", "app", "on", ">app-secret", "resetkeys", "~app:*", "resetchannels", "&app:*", "+@all", "-del", "-flushall"]);
});

async function clientLines(filter: (line: string) => boolean): Promise<string[]> {
  const list = String(await redis.server.admin(["CLIENT", "LIST"]));
  return list.split("\n").filter((l) => l.length > 0 && filter(l));
}

function nextReady(c: Client): Promise<void> {
  return within(new Promise<void>((resolve) => c.once("ready", () => resolve())), 5000, "ready");
}

for (const transport of TRANSPORTS) {
  describe(`ACL (${transport})`, () => {
    it("authenticates as an ACL user; a command it may not run is a NOPERM ReplyError and the client carries on", async () => {
      const c = redis.client(transport, { username: "app", password: "app-secret" });
      expect(await c.set("app:k", "v")).toBe("OK");
      expect(await c.command(["ACL", "WHOAMI"])).toBe("app");

      const denied = await c.del("app:k").catch((e: unknown) => e);
      expect(denied).toBeInstanceOf(ReplyError);
      expect((denied as ReplyError).code).toBe("NOPERM");
      expect((denied as ReplyError).command).toBe("DEL");
      const otherKey = await c.get("other:k").catch((e: unknown) => e);
      expect(otherKey).toBeInstanceOf(ReplyError);
      expect((otherKey as ReplyError).code).toBe("NOPERM");

      expect(c.status).toBe("ready");
      expect(await c.get("app:k")).toBe("v");
    });

    it("never shows the password when the client or its options are logged (util.inspect)", async () => {
      const c = redis.client(transport, { url: `redis://app:app-secret@127.0.0.1:${redis.server.port}` });
      expect(await c.set("app:i", "v")).toBe("OK");
      expect(await c.command(["BLPOP", "app:none", "0.01"])).toBe(null); // a dedicated connection too
      await c.subscribe("app:ch", () => undefined); // and the subscriber
      for (const shown of [inspect(c, { depth: Infinity }), inspect(c.options, { depth: Infinity }), String(c.options)]) {
        expect(shown).not.toContain("app-secret");
      }
      expect(inspect(c.options)).toContain("password: '<hidden>'");
      expect({ ...c.options }.password).toBe("app-secret"); // spreading (as the cluster does per node) keeps it
    });

    it("NOPERM inside a batch is that command's result; inside MULTI it aborts the transaction", async () => {
      const c = redis.client(transport, { url: `redis://app:app-secret@127.0.0.1:${redis.server.port}` });
      const plain = await c.batch([["SET", "app:b", "1"], ["DEL", "app:b"], ["GET", "app:b"]]);
      expect(plain[0]).toBe("OK");
      expect((plain[1] as ReplyError).code).toBe("NOPERM");
      expect(plain[2]).toBe("1");
      const atomic = await c.batch([["SET", "app:b", "2"], ["DEL", "app:b"]], { atomic: true });
      expect((atomic[0] as ReplyError).code).toBe("EXECABORT");
      expect((atomic[1] as ReplyError).code).toBe("NOPERM");
      expect(await c.get("app:b")).toBe("1");
    });

    it("subscribing to a channel outside the user's ACL rejects with NOPERM; allowed channels work", async () => {
      const c = redis.client(transport, { username: "app", password: "app-secret" });
      const err = await c.subscribe("secret:ch", () => undefined).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReplyError);
      expect((err as ReplyError).code).toBe("NOPERM");
      expect(c.subscriptions.channels).toEqual([]);
      let got!: (m: string) => void;
      const message = new Promise<string>((resolve) => (got = resolve));
      await c.subscribe(`app:${transport}`, (m) => got(m));
      await c.command(["PUBLISH", `app:${transport}`, "allowed"]);
      expect(await within(message, 3000, "message")).toBe("allowed");
    });

    it("a wrong password ends the client with one auth-failed error", async () => {
      const c = redis.client(transport, { username: "app", password: "wrong", reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
      let reconnects = 0;
      c.on("reconnecting", () => reconnects++);
      const err = await c.ping().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as ConnectionError).reason).toBe("auth-failed");
      expect(reconnects).toBe(0);
    });

    it("db and client name survive CLIENT KILL (checked in CLIENT LIST)", async () => {
      const name = `acl-${transport}`;
      const c = redis.client(transport, { username: "app", password: "app-secret", db: 5, clientName: name });
      expect(await c.set("app:db5", "five")).toBe("OK");
      const before = await clientLines((l) => l.includes(` name=${name} `));
      expect(before.length).toBeGreaterThanOrEqual(1);
      for (const line of before) expect(line).toMatch(/ db=5 .* user=app /);

      // Both transports lose their last connection here: disconnect, reconnecting, ready.
      const ready = nextReady(c);
      const killed = await redis.server.admin(["CLIENT", "KILL", "USER", "app"]);
      expect(killed).toBeGreaterThanOrEqual(1);
      await ready;
      // The next command runs on a new socket, in db 5 again, named again.
      expect(await c.get("app:db5")).toBe("five");
      const after = await clientLines((l) => l.includes(` name=${name} `));
      expect(after.length).toBeGreaterThanOrEqual(1);
      for (const line of after) expect(line).toMatch(/ db=5 .* user=app /);
      const oldIds = before.map((l) => /^id=(\d+)/.exec(l)?.[1]);
      for (const line of after) expect(oldIds).not.toContain(/^id=(\d+)/.exec(line)?.[1]);
      expect(await redis.server.admin(["GET", "app:db5"])).toBe(null); // db 0 does not have it
    });
  });
}
