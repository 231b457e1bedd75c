// What a lent connection's commands left behind on the server side of the
// socket. A socket goes back to the pool only if the next borrower cannot
// tell it was used: not inside MULTI, no WATCH, the configured db, nothing
// else a "state" command of the semantics table changes (reply mode,
// tracking, name, ...). Anything else is destroyed on release: a new socket
// costs one dial, resetting costs as many round trips and could fail
// half-way. Tracked when sent (conservative: a refused SELECT still counts).
import { commandName, semantics } from "../commands.js";
import type { Arg, Command } from "../protocol/encode.js";

function text(arg: Arg | undefined): string {
  if (arg === undefined) return "";
  return Buffer.isBuffer(arg) ? arg.toString("latin1") : String(arg);
}

export class SessionState {
  private multi = false;
  private watching = false;
  private db: string;
  private sticky = false;

  constructor(private readonly homeDb: number) {
    this.db = String(homeDb);
  }

  note(args: Command): void {
    if (semantics(args).effect !== "state") return;
    switch (commandName(args)) {
      case "MULTI":
        this.multi = true;
        return;
      case "EXEC":
      case "DISCARD":
        // Both end the transaction and forget every WATCH.
        this.multi = false;
        this.watching = false;
        return;
      case "WATCH":
        this.watching = true;
        return;
      case "UNWATCH":
        if (!this.multi) this.watching = false;
        return;
      case "SELECT":
        this.db = text(args[1]);
        return;
      case "ASKING":
        // Consumed by the very next command.
        return;
      default:
        this.sticky = true;
    }
  }

  /** True when the socket must not be lent again. */
  get dirty(): boolean {
    return this.multi || this.watching || this.sticky || this.db !== String(this.homeDb);
  }
}
