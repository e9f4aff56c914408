/**
 * docs/usage.md: the notes MCP server over pqmcp, a fresh McpServer per verified session.
 *
 *   node --import tsx examples/usage-server.ts [keys-dir] [port]
 */
import { serveMcp } from '../src/index.js';
import { createNotesServer } from './usage-authorize.js';
import { backend, loadIdentity, loadTrust } from './usage-identity.js';

const [dir = 'keys', port = '8443'] = process.argv.slice(2);

const server = await serveMcp(
  { identity: loadIdentity(dir, 'tools'), trust: loadTrust(dir), backend, host: '127.0.0.1', port: Number(port) },
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
