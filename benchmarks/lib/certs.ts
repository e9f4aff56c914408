/**
 * Certificates for the wss baseline: an ECDSA P-256 CA, a server certificate for
 * 127.0.0.1 / localhost and a client certificate, made fresh at bench start with the
 * `openssl` command line tool (Node has no X.509 generator) in a temporary directory that
 * is removed at once. Only the PEM text is kept.
 *
 * Sharp edges:
 * - Needs `openssl` (any 1.1.1+/3.x) on PATH; without it `makeCertificates` throws a clear
 *   error and the runner reports the wss variants as unavailable.
 * - The keys are throwaway test keys, valid for two days, never written to the repository.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Certificates {
  ca: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
  /** `openssl version` of the tool that made them. */
  tool: string;
}

export function opensslVersion(): string | undefined {
  try {
    return execFileSync('openssl', ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function makeCertificates(): Certificates {
  const tool = opensslVersion();
  if (!tool) throw new Error('the openssl command line tool is not available: cannot make the wss certificates');
  const dir = mkdtempSync(join(tmpdir(), 'pqmcp-bench-certs-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const key = (name: string) => ssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
    key('ca');
    ssl('req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=pqmcp bench CA', '-out', 'ca.crt');
    const leaf = (name: string, subject: string, ext: string) => {
      key(name);
      ssl('req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`);
      writeFileSync(join(dir, `${name}.ext`), ext);
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
    };
    leaf('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n');
    leaf('client', '/CN=pqmcp-bench-client', 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n');
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');
    return { ca: read('ca.crt'), serverKey: read('server.key'), serverCert: read('server.crt'), clientKey: read('client.key'), clientCert: read('client.crt'), tool };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
