/**
 * Resumption through the real transports: an SDK client over PqmcpClientTransport with a
 * ticket store, against serveMcp with tickets, on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import type { AuditEvent } from '../../src/audit/index.js';
import type { PqmcpError } from '../../src/errors.js';
import { MemoryTicketStore, TicketKeys } from '../../src/resumption/index.js';
import { ticketStoreKey } from '../../src/transport/index.js';
import type { PqmcpServerTransport } from '../../src/transport/index.js';
import { Cleanup, SERVER_ID, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import { agent, fixtureCrypto, makeAgent, makeIssuer, testIssuer, trustFor } from '../helpers/identities.js';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { auditMetrics } from '../../src/audit/index.js';

class Reader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const backend = createNativeBackend();

async function resumableServer(keys = TicketKeys.generate(backend)) {
  const audit: AuditEvent[] = [];
  const started = await startFeatureServer(cleanup, { tickets: { keys }, onAuditEvent: (e) => void audit.push(e) });
  const transports: PqmcpServerTransport[] = [];
  const refused: PqmcpError[] = [];
  started.server.on('session', (t) => void transports.push(t));
  started.server.on('ticketRefused', (e) => void refused.push(e));
  /** The server's session.open events: resumed, and why no ticket was sent (audit trail, issue #15). */
  const opened = () => audit.flatMap((e) => (e.type === 'session.open' ? [{ resumed: e.resumed, ticketsWithheld: e.ticketsWithheld }] : []));
  return { ...started, transports, refused, opened };
}

describe('resumption over WebSocket', () => {
  it('a returning SDK client resumes: same verified peers, flagged resumed, tools work', async () => {
    const { url, stats, transports, refused, opened } = await resumableServer();
    const tickets = new MemoryTicketStore();
    const key = ticketStoreKey(new URL(url), SERVER_ID);
    const clientAudit: AuditEvent[] = [];

    const first = await connectClient(cleanup, url, { tickets });
    expect(first.transport.resumed).toBe(false);
    await waitFor(() => tickets.count(key) === 1, 5_000, 'a ticket');
    await first.client.close();

    const second = await connectClient(cleanup, url, { tickets, onAuditEvent: (e) => void clientAudit.push(e) });
    expect(tickets.count(key)).toBeGreaterThanOrEqual(0);
    const result = await second.client.callTool({ name: 'echo', arguments: { text: 'again' } });
    expect(JSON.stringify(result)).toContain('again');
    expect(second.transport.resumed).toBe(true);
    expect(second.transport.peer?.agentId).toBe(SERVER_ID);
    await waitFor(() => transports.length === 2, 5_000, 'two sessions');
    expect(transports[0]!.resumed).toBe(false);
    expect(transports[1]!.resumed).toBe(true);
    expect(transports[1]!.peer.agentId).toBe('agent://pqmcp-test/client');
    expect(transports[1]!.peer.scopes).toEqual(stats.peers[0]!.scopes);
    expect(refused).toEqual([]);
    // The audit trail tells the resumption apart, on both sides.
    expect(opened()).toEqual([{ resumed: false, ticketsWithheld: undefined }, { resumed: true, ticketsWithheld: undefined }]);
    expect(clientAudit.filter((e) => e.type === 'session.open').map((e) => e.type === 'session.open' && e.resumed)).toEqual([true]);
    // The resumed session handed out a fresh ticket (the used one is gone).
    await waitFor(() => tickets.count(key) === 1, 5_000, 'a fresh ticket');
  });

  it("a client whose credential makes its ticket too long for a resuming ClientHello gets none (the server transport's handshakeResult says why) and works; a normal client still gets its ticket and resumes", async () => {
    const { url, transports, refused, opened } = await resumableServer();
    const key = ticketStoreKey(new URL(url), SERVER_ID);
    // Attributes of 2,000 bytes: a credential of about 7.5 KB; its ticket (378 + the endpoint +
    // 8192 bytes, protocol.md 15.6) alone is longer than a ClientHello record.
    const attributes = { a: 'a'.repeat(1000), b: 'b'.repeat(1000) };
    const big = makeAgent(fixtureCrypto(), testIssuer(), 'agent://pqmcp-test/big-client', { scopes: ['tools:call', 'resources:read'], attributes }).identity;
    const bigTickets = new MemoryTicketStore();
    const first = await connectClient(cleanup, url, { tickets: bigTickets, identity: big });
    const result = await first.client.callTool({ name: 'echo', arguments: { text: 'big' } });
    expect(JSON.stringify(result)).toContain('big');
    await waitFor(() => transports.length === 1, 5_000, 'the session');
    expect(transports[0]!.handshakeResult.ticketsWithheld).toBe('client-hello');
    // A ticket is sent right after the handshake, before any answer: a round trip later, none came.
    expect(bigTickets.count(key)).toBe(0);

    const tickets = new MemoryTicketStore();
    const normal = await connectClient(cleanup, url, { tickets });
    await waitFor(() => tickets.count(key) === 1, 5_000, 'a ticket');
    await waitFor(() => transports.length === 2, 5_000, 'the session');
    expect(transports[1]!.handshakeResult.ticketsWithheld).toBeUndefined();
    await normal.client.close();
    const again = await connectClient(cleanup, url, { tickets });
    expect(again.transport.resumed).toBe(true);
    expect(refused).toEqual([]);
    await waitFor(() => opened().length === 3, 5_000, 'three session.open events');
    expect(opened()).toEqual([{ resumed: false, ticketsWithheld: 'client-hello' }, { resumed: false, ticketsWithheld: undefined }, { resumed: true, ticketsWithheld: undefined }]);
  });

  it('rotated-out keys: the ticket is refused (reported), the client gets a full handshake', async () => {
    const { url, server, refused } = await resumableServer();
    const tickets = new MemoryTicketStore();
    const first = await connectClient(cleanup, url, { tickets });
    await waitFor(() => tickets.count(ticketStoreKey(new URL(url), SERVER_ID)) === 1, 5_000, 'a ticket');
    await first.client.close();
    server.setTicketKeys(TicketKeys.generate(backend));
    const second = await connectClient(cleanup, url, { tickets });
    expect(second.transport.resumed).toBe(false);
    await waitFor(() => refused.length === 1, 5_000, 'the refusal');
    expect(refused[0]!.code).toBe('ERR_TICKET_UNKNOWN_KEY');
  });

  it('servers sharing a ticket key file accept each other\'s tickets (same endpoint)', async () => {
    const keys = TicketKeys.generate(backend);
    const a = await resumableServer(keys);
    const b = await resumableServer(TicketKeys.fromJSON(JSON.stringify(keys)));
    const tickets = new MemoryTicketStore();
    // Behind a load balancer the client names the balancer's endpoint on every connection;
    // tickets bind that named endpoint (docs/protocol.md 15.4), not the server's own port.
    const endpoint = '//lb.example/';
    const first = await connectClient(cleanup, a.url, { tickets, endpoint });
    const fromA = new URL(a.url);
    await waitFor(() => tickets.count(ticketStoreKey(fromA, SERVER_ID)) === 1, 5_000, 'a ticket');
    await first.client.close();
    // As behind a load balancer: the same URL (store key) reaches server b.
    const ticket = tickets.take(ticketStoreKey(fromA, SERVER_ID), Date.now())!;
    tickets.put(ticketStoreKey(new URL(b.url), SERVER_ID), ticket);
    const second = await connectClient(cleanup, b.url, { tickets, endpoint });
    expect(second.transport.resumed).toBe(true);
    expect(b.refused).toEqual([]);
  });

  it('two client identities sharing one store each resume with their own tickets (review 16, R16-10: a ticket taken for the other identity was dropped)', async () => {
    const { url } = await resumableServer();
    const tickets = new MemoryTicketStore();
    const key = ticketStoreKey(new URL(url), SERVER_ID);
    const bob = { identity: agent('agent://pqmcp-test/bob') };
    const alice1 = await connectClient(cleanup, url, { tickets });
    await waitFor(() => tickets.count(key) === 1, 5_000, "alice's ticket");
    await alice1.client.close();
    // Bob's connection finds only alice's ticket: it must leave it, not spend it.
    const bob1 = await connectClient(cleanup, url, { tickets, ...bob });
    expect(bob1.transport.resumed).toBe(false);
    await waitFor(() => tickets.count(key) === 2, 5_000, "bob's ticket beside alice's");
    await bob1.client.close();
    // Before: alice took bob's (newest) ticket, could not offer it and dropped it: full handshakes for both.
    const alice2 = await connectClient(cleanup, url, { tickets });
    expect(alice2.transport.resumed).toBe(true);
    await alice2.client.close();
    const bob2 = await connectClient(cleanup, url, { tickets, ...bob });
    expect(bob2.transport.resumed).toBe(true);
    expect(bob2.transport.peer?.agentId).toBe(SERVER_ID);
  });

  it('a refused ticket rides on the audit event of its connection (session.open, handshake.failure, the failureReports summary): auditMetrics counts each once, a forged-ticket flood included', async () => {
    const reader = new Reader();
    const provider = new MeterProvider({ readers: [reader] });
    cleanup.add(() => provider.shutdown());
    const record = auditMetrics(provider.getMeter('pqmcp'));
    const audit: AuditEvent[] = [];
    // One failure per source reported one by one; the rest go to the summary close() flushes.
    const { url, server } = await startFeatureServer(cleanup, { tickets: { keys: TicketKeys.generate(backend) }, failureReports: { perSource: 1, windowMs: 3_600_000 }, onAuditEvent: (e) => void (audit.push(e), record(e)) });
    const refused: string[] = [];
    server.on('ticketRefused', (e) => void refused.push(e.code));
    const key = ticketStoreKey(new URL(url), SERVER_ID);
    const tickets = new MemoryTicketStore();
    const first = await connectClient(cleanup, url, { tickets });
    await waitFor(() => tickets.count(key) === 1, 5_000, 'a ticket');
    await first.client.close();
    const real = tickets.take(key, Date.now())!;
    const forged = structuredClone(real);
    tickets.put(key, real);
    // Rotated-out keys: the trusted client's ticket is refused, its full handshake opens a session.
    server.setTicketKeys(TicketKeys.generate(backend));
    const second = await connectClient(cleanup, url, { tickets });
    expect(second.transport.resumed).toBe(false);
    // A stranger (untrusted issuer) offering a forged ticket, three times: each ticket refused, each full handshake refused.
    const stranger = makeAgent(fixtureCrypto(), makeIssuer(fixtureCrypto(), 'issuer://stranger'), 'agent://stranger/x').identity;
    for (let i = 0; i < 3; i++) {
      const store = new MemoryTicketStore();
      store.put(key, { ...structuredClone(forged), ticket: crypto.getRandomValues(new Uint8Array(forged.ticket.length)), clientCredentialHash: backend.sha256(stranger.credential.encoded) });
      await expect(connectClient(cleanup, url, { tickets: store, identity: stranger })).rejects.toThrow();
    }
    await waitFor(() => refused.length === 4 && audit.filter((e) => e.type === 'handshake.failure').length === 1, 5_000, 'four refusals');
    await server.close(); // flushes the failureReports summary
    expect(refused).toEqual(['ERR_TICKET_UNKNOWN_KEY', 'ERR_TICKET_UNKNOWN_KEY', 'ERR_TICKET_UNKNOWN_KEY', 'ERR_TICKET_UNKNOWN_KEY']);
    const opens = audit.flatMap((e) => (e.type === 'session.open' ? [e.ticketRefused] : []));
    expect(opens).toEqual([undefined, 'ERR_TICKET_UNKNOWN_KEY']);
    const failures = audit.flatMap((e) => (e.type === 'handshake.failure' ? [{ code: e.code, ticketRefused: e.ticketRefused }] : []));
    expect(failures).toEqual([{ code: 'ERR_UNTRUSTED_ISSUER', ticketRefused: 'ERR_TICKET_UNKNOWN_KEY' }]);
    const summaries = audit.flatMap((e) => (e.type === 'handshake.failure.summary' ? [{ count: e.count, codes: e.codes, ticketsRefused: e.ticketsRefused }] : []));
    expect(summaries).toEqual([{ count: 2, codes: { ERR_UNTRUSTED_ISSUER: 2 }, ticketsRefused: { ERR_TICKET_UNKNOWN_KEY: 2 } }]);
    const { resourceMetrics } = await reader.collect();
    const points = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).filter((m) => m.descriptor.name === 'pqmcp.tickets.refused').flatMap((m) => m.dataPoints.map((p) => [p.attributes, p.value]));
    expect(points).toEqual([[{ reason: 'ERR_TICKET_UNKNOWN_KEY' }, 4]]);
  });

  it('options are checked', () => {
    expect(() => new PqmcpClientTransport('ws://127.0.0.1:1/', { identity: agent('agent://x/y'), trust: trustFor(), allowAnyServer: true, tickets: {} as never })).toThrow(InvalidArgumentError);
  });
});
