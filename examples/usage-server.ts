/**
 * docs/usage.md: the notes MCP server over pqmcp, a fresh McpServer per verified session.
 *
 *   node --import tsx examples/usage-server.ts [keys-dir] [port]
 */
import { join } from 'node:path';
import { loadIdentity, loadTrustStore, selectBackend, serveMcp } from 'pqmcp';
import { createNotesServer } from './usage-authorize.js';

const [dir = 'keys', port = '8443'] = process.argv.slice(2);
const backend = selectBackend(); // PQMCP_BACKEND (auto, noble or native); auto unless set

// tools.key.json with tools.cred.json beside it, and trust.json (usage-keys.ts or the pqmcp CLI).
const identity = await loadIdentity(join(dir, 'tools.key.json'), { backend });
const trust = await loadTrustStore(join(dir, 'trust.json'));

const server = await serveMcp(
  { identity, trust, backend, host: '127.0.0.1', port: Number(port) },
  (peer) => {
    // Runs only after the client's credential, signature and Finished have verified.
    console.log(`session: ${peer.agentId} [${peer.scopes.join(', ')}] issued by ${peer.issuer}`);
    return createNotesServer();
  },
);
server.on('clientError', (error, info) => console.log(`refused ${info.remoteAddress}: ${error.code} ${error.message}`));
console.log(`listening on ${server.url} (backend ${server.backendName})`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void server.close().then(() => console.log('closed')));
}
