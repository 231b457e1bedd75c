// The error classes: codes of respite's own, and instanceof across two
// installed copies of the package (a library and the application each with
// its own copy of respite).
import { describe, expect, it } from "vitest";
import * as respite from "../../src/index.js";
import { ClientClosedError, ConnectionError, RedisError, ReplyError, SentinelError, TimeoutError } from "../../src/index.js";

describe("errors", () => {
  it("carry codes of respite's own, never Node's", () => {
    expect(new TimeoutError("GET", 5, false).code).toBe("ERR_RESPITE_TIMEOUT");
    expect(new respite.AbortError("GET", false).code).toBe("ERR_RESPITE_ABORTED");
    expect(new ConnectionError("x", "offline", false).code).toBe("ERR_RESPITE_CONNECTION");
    expect(new ClientClosedError().code).toBe("ERR_RESPITE_CLIENT_CLOSED");
    // A reply error keeps the server's own code.
    expect(new ReplyError("WRONGTYPE Operation against a key").code).toBe("WRONGTYPE");
  });

  it("instanceof works across two copies of the module, for every class and its bases", async () => {
    // A second instance of the same module: what a second installed copy of the package is.
    const url = new URL("../../src/errors.ts", import.meta.url);
    url.search = "?copy=2";
    const other = (await import(/* @vite-ignore */ url.href)) as typeof import("../../src/errors.js");
    expect(other.TimeoutError).not.toBe(TimeoutError);
    const foreign = new other.TimeoutError("GET", 5, true);
    expect(foreign).toBeInstanceOf(TimeoutError);
    expect(foreign).toBeInstanceOf(RedisError);
    expect(foreign).toBeInstanceOf(Error);
    expect(foreign).not.toBeInstanceOf(ConnectionError);
    const sentinel = new other.SentinelError("no", "unreachable");
    expect(sentinel).toBeInstanceOf(SentinelError);
    expect(sentinel).toBeInstanceOf(ConnectionError);
    expect(sentinel).toBeInstanceOf(RedisError);
    // And the other way round.
    expect(new ClientClosedError()).toBeInstanceOf(other.ClientClosedError);
    expect(new ClientClosedError()).not.toBeInstanceOf(other.TimeoutError);
    // Plain values are no errors of ours.
    expect(new Error("x")).not.toBeInstanceOf(RedisError);
    expect({ code: "ERR_RESPITE_TIMEOUT" }).not.toBeInstanceOf(RedisError);
    expect(null).not.toBeInstanceOf(RedisError);
  });

  it("the package exports the error classes and nothing internal", () => {
    expect("afterAnyWrite" in respite).toBe(false);
    for (const name of ["RedisError", "ReplyError", "ConnectionError", "TimeoutError", "AbortError", "ProtocolError", "ClientClosedError", "QueueFullError", "PoolTimeoutError", "WatchError", "ConnectionReleasedError", "SentinelError", "CrossSlotError", "RedirectionLimitError", "UnsafeIntegerError"]) {
      expect(typeof (respite as Record<string, unknown>)[name], name).toBe("function");
    }
  });
});
