/**
 * docs/usage.md: the notes MCP server behind a TCP load balancer that sends the PROXY
 * protocol (HAProxy send-proxy-v2, an AWS NLB, nginx stream proxy_protocol). Only the
 * balancer's own addresses may connect; each session sees the client address it names.
 *
 *   node --import tsx examples/usage-proxy.ts [keys-dir] [port] [balancer-address...]
 */
import { join } from 'node:path';
import { loadIdentity, loadTrustStore, selectBackend, serveMcp } from 'pqmcp';
import { createNotesServer } from './usage-authorize.js';

const [dir = 'keys', port = '8443', ...balancers] = process.argv.slice(2);
const backend = selectBackend();
const identity = await loadIdentity(join(dir, 'tools.key.json'), { backend });
const trust = await loadTrustStore(join(dir, 'trust.json'));

const server = await serveMcp(
  {
    identity, trust, backend,
    host: '127.0.0.1', port: Number(port),
    trustedProxies: balancers.length > 0 ? balancers : ['127.0.0.1'], // the balancer's addresses, nothing else
    proxyProtocol: true, // every connection must start with a PROXY header (v1 or v2) from one of them
  },
  (peer, transport) => {
    console.log(`session: ${peer.agentId} from ${transport.remoteAddress}`);
    return createNotesServer();
  },
);
// A direct connection (not from a balancer) is refused before anything is read.
server.on('clientError', (error, info) => console.log(`refused ${info.remoteAddress}: ${error.code}`));
console.log(`listening on ${server.url} (PROXY protocol from ${balancers.join(', ') || '127.0.0.1'})`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void server.close().then(() => console.log('closed')));
}
