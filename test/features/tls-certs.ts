// A throw-away PKI for the TLS tests, made with openssl in a temp dir: a CA,
// a server certificate it signed (for 127.0.0.1 and localhost), and a second,
// unrelated CA to play "the wrong CA". EC P-256 keys: generated in milliseconds.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: Buffer;
  wrongCa: Buffer;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 });
}

function makeCa(dir: string, name: string): void {
  openssl(
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-keyout", `${name}.key`, "-out", `${name}.crt`, "-subj", `/CN=respite ${name}`],
    dir,
  );
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "respite-tls-"));
  makeCa(dir, "ca");
  makeCa(dir, "wrong-ca");
  openssl(
    ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
    dir,
  );
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
      "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf"],
    dir,
  );
  return {
    dir,
    caFile: join(dir, "ca.crt"),
    certFile: join(dir, "server.crt"),
    keyFile: join(dir, "server.key"),
    ca: readFileSync(join(dir, "ca.crt")),
    wrongCa: readFileSync(join(dir, "wrong-ca.crt")),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
