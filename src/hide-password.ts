// Options objects that hold a password hide it from util.inspect.
import type { InspectOptions, inspect as Inspect } from "node:util";

/**
 * `console.log(client)` and `util.inspect(options)` show "<hidden>" for the
 * password (our standard: no password in a log). A non-enumerable inspect
 * hook, so spreading the object still copies the real value. JSON.stringify
 * is not covered: do not serialise options.
 */
export function hidePassword<T extends { password?: string | undefined }>(options: T): T {
  Object.defineProperty(options, Symbol.for("nodejs.util.inspect.custom"), {
    enumerable: false,
    value(this: T, _depth: number, inspectOptions: InspectOptions, inspect: typeof Inspect): string {
      return inspect(this.password === undefined ? { ...this } : { ...this, password: "<hidden>" }, inspectOptions);
    },
  });
  return options;
}
