// Open one TCP or TLS socket, bounded by a deadline.
import net from "node:net";
import tls from "node:tls";
import { ConnectionError } from "../errors.js";
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
  });
}
