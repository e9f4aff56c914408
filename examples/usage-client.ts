/**
 * docs/usage.md: an SDK Client over pqmcp. Compared with a stdio or Streamable HTTP client,
 * only the transport line differs.
 *
 *   node --import tsx examples/usage-client.ts [url] [keys-dir] [agent-name]
 */
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { PqmcpClientTransport, PqmcpError, loadIdentity, loadTrustStore, selectBackend } from 'pqmcp';

const [url = 'ws://127.0.0.1:8443/', dir = 'keys', name = 'planner'] = process.argv.slice(2);
const backend = selectBackend();

const client = new Client({ name: 'notes-client', version: '1.0.0' });
const transport = new PqmcpClientTransport(url, {
  identity: await loadIdentity(join(dir, `${name}.key.json`), { backend }), // + NAME.cred.json beside it
  trust: await loadTrustStore(join(dir, 'trust.json')),
  expectedServerId: 'agent://example.com/tools', // no other agent may answer, whoever vouches for it
  backend,
});
try {
  await client.connect(transport);
} catch (error) {
  // A refused handshake rejects connect() with a typed error (see "Errors" in docs/usage.md).
  console.error(error instanceof PqmcpError ? `connect failed: ${error.code}: ${error.message}` : error);
  process.exit(1);
}
console.log(`connected to ${transport.peer?.agentId} (session ${transport.sessionId?.slice(0, 16)}..., backend ${transport.backend})`);

const calls: Array<[string, Record<string, unknown>]> = [['whoami', {}], ['add_note', { text: `hello from ${name}` }], ['list_notes', {}]];
for (const [tool, args] of calls) {
  const result = await client.callTool({ name: tool, arguments: args });
  const text = (result.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n');
  console.log(`${tool}${result.isError ? ' (error)' : ''}:\n  ${text.replaceAll('\n', '\n  ')}`);
}
await client.close();
