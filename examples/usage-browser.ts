/**
 * docs/usage.md: an MCP client in a web page (bundle it with any bundler; in an application
 * the import is 'pqmcp/browser'). The key, credential and trust files are the ones the CLI
 * writes, as text or parsed JSON, from wherever the application keeps them.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { PqmcpClientTransport, identityFromContents, trustStoreFromContents } from 'pqmcp/browser';

export async function connectFromPage(keyFileText: string, credentialFileText: string, trustFileText: string): Promise<Client> {
  const identity = identityFromContents(keyFileText, credentialFileText);
  const trust = trustStoreFromContents(trustFileText);
  const transport = new PqmcpClientTransport('wss://tools.example/mcp', { identity, trust, expectedServerId: 'agent://example/tools' });
  const client = new Client({ name: 'web-planner', version: '1.0.0' });
  await client.connect(transport);
  console.log(transport.peer?.agentId, transport.peer?.fingerprint); // the verified server
  return client;
}
