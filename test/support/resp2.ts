// Setup file of the "resp2" test project (vitest.config.ts): every client a
// test creates without a protocol option speaks RESP2, so the same suites
// check that replies and behaviour do not change with the protocol.
import { DEFAULTS } from "../../src/options.js";

(DEFAULTS as { protocol: 2 | 3 }).protocol = 2;
