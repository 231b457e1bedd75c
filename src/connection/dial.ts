// Open one TCP or TLS socket, bounded by a deadline.
import net from "node:net";
import tls from "node:tls";
import { ConnectionError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";

export function dial(options: ResolvedOptions, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const where = `${options.host}:${options.port}`;
    const socket = options.tls
      ? tls.connect({ servername: net.isIP(options.host) ? undefined : options.host, ...options.tls, host: options.host, port: options.port })
      : net.connect({ host: options.host, port: options.port });
    const readyEvent = options.tls ? "secureConnect" : "connect";
    let timer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      if (timer) clearTimeout(timer);
      socket.removeListener(readyEvent, onConnect);
      socket.removeListener("error", onError);
    };
    const onConnect = (): void => {
      cleanup();
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      resolve(socket);
    };
    const onError = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(new ConnectionError(`Could not connect to ${where}: ${err.message}`, "connect-failed", false, { cause: err }));
    };
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        cleanup();
        socket.destroy();
        reject(new ConnectionError(`Could not connect to ${where} within ${timeoutMs} ms`, "connect-failed", false));
      }, timeoutMs);
    }
    socket.once(readyEvent, onConnect);
    socket.once("error", onError);
  });
}
