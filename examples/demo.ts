/**
 * pqmcp demo: a real MCP session over a mutually attested post-quantum channel.
 *
 *   npm run demo            (PQMCP_BACKEND=noble|native to choose the crypto backend)
 *
 * Made on the spot: an issuer, a server agent and a client agent with credentials. The
 * server is an SDK McpServer behind a pqmcp listener on 127.0.0.1; the client is an SDK
 * Client over PqmcpClientTransport. One tool call uses elicitation (server -> client ->
 * "user") and sampling (server -> client -> "model"), and reads the verified caller from
 * extra.authInfo. Prints the suite, backend, both verified identities, handshake time and
 * the results, then exits.
 */
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import {
  SUITE_NAMES,
  PqmcpClientTransport,
  TrustStore,
  createAgentIdentity,
  createIssuer,
  describeBackend,
  generateIdentitySeed,
  identityFromSeed,
  issueCredential,
  selectBackend,
  serveMcp,
  type AgentIdentity,
} from 'pqmcp';

const backend = selectBackend();

function makeAgent(issuer: ReturnType<typeof createIssuer>, agentId: string, usage: 'client' | 'server', scopes: string[], attributes: Record<string, string>): AgentIdentity {
  const keyPair = identityFromSeed(backend, generateIdentitySeed(backend));
  const credential = issueCredential(backend, issuer, { agentId, publicKey: keyPair.publicKey, usage, scopes, attributes, validForSeconds: 3600 });
  return createAgentIdentity({ keyPair, credential });
}

const issuer = createIssuer(backend, { id: 'issuer://demo.example/ca' });
const serverAgent = makeAgent(issuer, 'agent://demo.example/travel-tools', 'server', ['mcp:serve'], { owner: 'platform-team' });
const clientAgent = makeAgent(issuer, 'agent://demo.example/planner', 'client', ['tools:call', 'trips:book'], { model: 'demo-model-1', owner: 'alice' });
const trust = new TrustStore({ issuers: [{ id: issuer.id, publicKey: issuer.publicKey }] });

// --- server: a fresh McpServer per verified session -------------------------------------------
const listener = await serveMcp({ identity: serverAgent, trust, backend, host: '127.0.0.1', port: 0 }, () => {
  const mcp = new McpServer({ name: 'travel-tools', version: '1.0.0' });
  mcp.registerTool(
    'book_trip',
    {
      description: 'Books a trip after asking the user to confirm and the caller model to write a summary.',
      inputSchema: { destination: z.string() },
    },
    async ({ destination }, extra) => {
      const caller = extra.authInfo!;
      if (!caller.scopes.includes('trips:book')) {
        return { isError: true, content: [{ type: 'text', text: `${caller.clientId} may not book trips` }] };
      }
      // Elicitation: ask the user, through the client, to confirm.
      const answer = await mcp.server.elicitInput({
        message: `Book a trip to ${destination}?`,
        requestedSchema: { type: 'object', properties: { confirm: { type: 'boolean', title: 'Confirm booking' } }, required: ['confirm'] },
      });
      if (answer.action !== 'accept' || answer.content?.confirm !== true) {
        return { content: [{ type: 'text', text: 'Booking cancelled by the user.' }] };
      }
      // Sampling: ask the client's model for a one-line summary.
      const sample = await mcp.server.createMessage({
        messages: [{ role: 'user', content: { type: 'text', text: `Summarise a trip to ${destination} in one line.` } }],
        maxTokens: 60,
      });
      const summary = sample.content.type === 'text' ? sample.content.text : '(non-text summary)';
      return {
        content: [{ type: 'text', text: `Booked ${destination} for ${caller.clientId} (scopes: ${caller.scopes.join(', ')}). Summary: ${summary}` }],
      };
    },
  );
  return mcp;
});

// --- client: an SDK Client whose only change is the transport line ----------------------------
const client = new Client({ name: 'planner', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} } });
client.setRequestHandler(ElicitRequestSchema, async (req) => {
  console.log(`  [user]  asked: "${req.params.message}" -> yes`);
  return { action: 'accept', content: { confirm: true } };
});
client.setRequestHandler(CreateMessageRequestSchema, async () => {
  console.log('  [model] asked for a summary -> answered');
  return { role: 'assistant', model: 'demo-model-1', content: { type: 'text', text: 'Three days of canals, museums and stroopwafels.' } };
});

const transport = new PqmcpClientTransport(listener.url, { identity: clientAgent, trust, backend, expectedServerId: serverAgent.agentId });
const t0 = performance.now();
let handshakeMs = 0;
void transport.handshake.then(() => (handshakeMs = performance.now() - t0), () => {});
await client.connect(transport);
const connectMs = performance.now() - t0;
const result = await transport.handshake;

const short = (fp: string) => `${fp.slice(0, 16)}...`;
console.log('pqmcp demo: a mutually attested post-quantum MCP session');
console.log(`  suite      ${SUITE_NAMES[result.suite]}`);
console.log(`  backend    ${describeBackend(backend)} on Node ${process.version}`);
console.log(`  server     ${result.peer.agentId} (issuer ${result.peer.issuer}, key ${short(result.peer.fingerprint)}) verified by the client`);
const seen = [...listener.sessions][0];
const clientAsSeen = seen?.peer;
if (clientAsSeen) console.log(`  client     ${clientAsSeen.agentId} (issuer ${clientAsSeen.issuer}, scopes ${clientAsSeen.scopes.join(', ')}) verified by the server`);
console.log(`  handshake  ${handshakeMs.toFixed(1)} ms until the client verified the server; ${connectMs.toFixed(1)} ms to the MCP initialize result (sent with the last flight)`);
console.log(`  session    ${transport.sessionId?.slice(0, 16)}...`);

const tools = await client.listTools();
console.log(`  tools      ${tools.tools.map((t) => t.name).join(', ')}`);
console.log('calling book_trip({ destination: "Amsterdam" }):');
const call = await client.callTool({ name: 'book_trip', arguments: { destination: 'Amsterdam' } });
const text = (call.content as { type: string; text?: string }[]).map((c) => c.text ?? '').join('\n');
console.log(`  result     ${text}`);

await client.close();
await listener.close();
console.log('closed cleanly.');
