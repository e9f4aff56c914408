/**
 * docs/usage.md: resumption tickets. The server shares ticket keys with its peers through a
 * file (pqmcp ticket-keys create|rotate); a client keeps one ticket store per process, and
 * its later connections resume without signatures.
 */
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { MemoryTicketStore, PqmcpClientTransport, TicketKeys, serveMcp } from 'pqmcp';
import type { AgentIdentity, PqmcpServer, SessionFactory, TrustStore } from 'pqmcp';

export async function ticketServer(identity: AgentIdentity, trust: TrustStore, factory: SessionFactory): Promise<PqmcpServer> {
  const keys = (): TicketKeys => TicketKeys.fromJSON(readFileSync('tickets.json', 'utf8'));
  const server = await serveMcp({ identity, trust, port: 8443, tickets: { keys: keys() } }, factory);
  server.on('ticketRefused', (error) => console.error(error.code)); // ERR_TICKET_EXPIRED, ERR_TICKET_REPLAYED, ...
  process.on('SIGHUP', () => server.setTicketKeys(keys())); // after pqmcp ticket-keys rotate
  return server;
}

// Client: one store per process, shared by its transports.
const tickets = new MemoryTicketStore();

export async function connectResuming(url: string, identity: AgentIdentity, trust: TrustStore): Promise<Client> {
  const transport = new PqmcpClientTransport(url, { identity, trust, expectedServerId: 'agent://acme/travel-tools', tickets });
  const client = new Client({ name: 'planner', version: '1.0.0' });
  await client.connect(transport);
  console.log(transport.resumed ? 'resumed' : 'full handshake'); // resumed from the second connection on
  return client;
}
