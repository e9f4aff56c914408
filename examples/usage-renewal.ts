/**
 * docs/usage.md: renew a running server's own credential. The issuer renews it for the same
 * key (pqmcp credential issue --agent tools.cred.json --usage server --force); SIGHUP makes
 * new handshakes present it, while open sessions keep theirs.
 */
import { loadIdentity } from 'pqmcp';
import type { PqmcpServer } from 'pqmcp';

export function renewOnSighup(server: PqmcpServer, keyPath = 'keys/tools.key.json'): void {
  process.on('SIGHUP', () => {
    loadIdentity(keyPath) // the same key, the renewed tools.cred.json beside it
      .then((renewed) => server.setCredential(renewed.credential))
      .catch((err: Error) => console.error(`credential not renewed: ${err.message}`)); // the previous one stays
  });
}
