// Open one TCP or TLS socket, bounded by a deadline and by the owner's
// AbortSignal (destroy() or close() of the client while the dial is out).
import net from "node:net";
import tls from "node:tls";
import { ClientClosedError, ConnectionError } from "../errors.js";
import type { ResolvedOptions } from "../options.js";

/**
 * OpenSSL's verification failures (UNABLE_TO_VERIFY_LEAF_SIGNATURE,
 * SELF_SIGNED_CERT_IN_CHAIN, CERT_HAS_EXPIRED, ...), Node's host name check
 * (ERR_TLS_CERT_ALTNAME_INVALID), and the server refusing our certificate
 * (an ERR_SSL_..._ALERT_..._CERTIFICATE_... alert). Network errors during the
 * TLS handshake (ECONNRESET, timeouts) are not: those are worth retrying.
 */
export function isCertificateError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code !== "string") return false;
  return /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY|DECRYPT)|HOSTNAME|INVALID_CA|PATH_LENGTH_EXCEEDED|INVALID_PURPOSE/.test(code);
}

/**
 * Dial `options.host:port`. Rejects with a ConnectionError on failure or after
 * timeoutMs (0: no limit), and with ClientClosedError as soon as `signal`
 * aborts: the socket is destroyed and the timer cleared, so nothing of the
 * dial keeps the process alive.
 */
export function dial(options: ResolvedOptions, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
  if (signal?.aborted === true) return Promise.reject(new ClientClosedError());
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
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = (): void => {
      cleanup();
      socket.destroy();
      reject(new ClientClosedError());
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
      if (options.tls && isCertificateError(err)) {
        // Retrying cannot fix a certificate that does not verify (wrong CA,
        // wrong host name, expired): fatal, like a wrong password.
        const code = (err as NodeJS.ErrnoException).code ?? "";
        reject(new ConnectionError(`TLS certificate check failed for ${where} (${code}): ${err.message}`, "handshake-failed", false, { cause: err }));
        return;
      }
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
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
