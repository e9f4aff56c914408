/**
 * docs/usage.md: full control with listen() and its 'session' event, on a path of an
 * existing http.Server that keeps serving its own routes.
 *
 *   node --import tsx examples/usage-listen.ts [keys-dir] [port]
 */
import { createServer } from 'node:http';
import { join } from 'node:path';
import { listen, loadIdentity, loadTrustStore, selectBackend } from 'pqmcp';
import { createNotesServer } from './usage-authorize.js';

const [dir = 'keys', port = '8080'] = process.argv.slice(2);
const backend = selectBackend();
const identity = await loadIdentity(join(dir, 'tools.key.json'), { backend });
const trust = await loadTrustStore(join(dir, 'trust.json'));

const http = createServer((req, res) => {
  if (req.url === '/health') res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
  else res.writeHead(404).end();
});
await new Promise<void>((resolve) => http.listen(Number(port), '127.0.0.1', resolve));

const pqmcp = await listen({ identity, trust, backend, server: http, path: '/mcp' });
pqmcp.on('session', (transport, peer) => {
  // Only verified clients get here. Turn one away by identity, or connect any MCP server.
  if (!peer.scopes.includes('notes:read')) return void transport.close();
  const id = `${transport.sessionId.slice(0, 16)}...`;
  console.log(`session ${id} from ${peer.agentId} at ${transport.remoteAddress}`);
  void transport.closed.then(() => console.log(`session ${id} closed`));
  createNotesServer().connect(transport).catch(() => transport.close());
});
pqmcp.on('clientError', (error, info) => console.log(`refused ${info.remoteAddress}: ${error.code}`));
console.log(`health on http://127.0.0.1:${pqmcp.address().port}/health, MCP on ${pqmcp.url}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void pqmcp.close().then(() => http.close(() => console.log('closed'))));
}
