/**
 * docs/usage.md: MCP SDK 2.x over pqmcp in both protocol eras, in one process (identities
 * made in memory). 2025-11-25: serveMcp, the agent at ctx.http.authInfo. 2026-07-28: the
 * SDK's serveStdio entry on each pqmcp session, the agent from the session factory.
 *
 *   node --import tsx examples/sdk2-eras.ts
 */
import { Client } from '@modelcontextprotocol/client';
import { McpServer } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { PqmcpClientTransport, TrustStore, createAgentIdentity, createIssuer, generateIdentitySeed, identityFromSeed, issueCredential, listen, selectBackend, serveMcp } from 'pqmcp';

const backend = selectBackend();
const ca = createIssuer(backend, { id: 'issuer://example.com/ca' });
const trust = new TrustStore({ issuers: [{ id: ca.id, publicKey: ca.publicKey }] });
function agentIdentity(agentId: string, usage: 'client' | 'server', scopes: string[]) {
  const keyPair = identityFromSeed(backend, generateIdentitySeed(backend));
  return createAgentIdentity({ keyPair, credential: issueCredential(backend, ca, { agentId, publicKey: keyPair.publicKey, usage, scopes }) });
}
const tools = agentIdentity('agent://example.com/tools', 'server', ['mcp:serve']);
const planner = agentIdentity('agent://example.com/planner', 'client', ['notes:read']);

/** One McpServer; `caller` names the verified agent where the SDK does not deliver it. */
function notesServer(caller?: string): McpServer {
  const mcp = new McpServer({ name: 'notes', version: '1.0.0' });
  mcp.registerTool('whoami', { description: 'the verified caller' }, async (ctx) => {
    const who = ctx.http?.authInfo ? `${ctx.http.authInfo.clientId} (ctx.http.authInfo)` : `${caller} (session factory)`;
    return { content: [{ type: 'text', text: who }] };
  });
  return mcp;
}

async function call(url: string, era: '2025-11-25' | '2026-07-28'): Promise<void> {
  const client = new Client({ name: 'planner', version: '1.0.0' }, era === '2026-07-28' ? { versionNegotiation: { mode: { pin: era } } } : {});
  await client.connect(new PqmcpClientTransport(url, { identity: planner, trust, backend, expectedServerId: 'agent://example.com/tools' }));
  const result = await client.callTool({ name: 'whoami' });
  const first = result.content[0];
  console.log(`${client.getNegotiatedProtocolVersion()}: ${first?.type === 'text' ? first.text : ''}`);
  await client.close();
}

// 2025-11-25: a fresh McpServer per session, connected to it (the SDK's hand-wired way).
const legacy = await serveMcp({ identity: tools, trust, backend }, () => notesServer());
await call(legacy.url, '2025-11-25');
await legacy.close();

// 2026-07-28 (and 2025 clients too): the SDK's entry for a long-lived connection, per session.
const modern = await listen({ identity: tools, trust, backend });
modern.on('session', (session, peer) => void serveStdio(() => notesServer(peer.agentId), { transport: session }));
await call(modern.url, '2026-07-28');
await modern.close();
