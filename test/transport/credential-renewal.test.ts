/**
 * A listener's own credential renewed while it runs (PqmcpServer.setCredential), over real
 * sockets on 127.0.0.1 with real SDK peers: new handshakes present the renewed credential,
 * a live session keeps the one it was opened with and ends at that one's notAfter, and every
 * credential that must not be presented is refused with a typed error and changes nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { CredentialExpiredError, CredentialNotYetValidError, CredentialUsageError, DecodeError, InvalidArgumentError, PqmcpError, SessionExpiredError } from '../../src/errors.js';
import { createAgentIdentity, issueCredential } from '../../src/identity/index.js';
import { MemoryTicketStore, TicketKeys } from '../../src/resumption/index.js';
import { PqmcpClientTransport, serveMcp, ticketStoreKey } from '../../src/transport/index.js';
import type { ClientInfo, PqmcpServer, PqmcpServerTransport } from '../../src/transport/index.js';
import { fixtureCrypto, makeAgent, makeIssuer, testIssuer, trustFor } from '../helpers/identities.js';
import type { TestAgent } from '../helpers/identities.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { ManualClock } from '../helpers/clock.js';

const SERVER_ID = 'agent://pqmcp-test/renewing-server';
const CLIENT_ID = 'agent://pqmcp-test/renewal-client';
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const NOW = Math.floor(Date.now() / 1000);
/** The server's first credential: valid for one more hour. */
const first: TestAgent = makeAgent(fixtureCrypto(), testIssuer(), SERVER_ID, { usage: 'server', notBefore: NOW - 60, notAfter: NOW + 3600 });

/** The client, valid from two hours ago: the servers' clocks stand still from their start (one steps back an hour). */
const clientAgent = makeAgent(fixtureCrypto(), testIssuer(), CLIENT_ID, { usage: 'client', notBefore: NOW - 7200, notAfter: NOW + 86400 }).identity;

/** Another credential for the first one's key (a renewal unless the options say otherwise). */
function renewal(options: { agentId?: string; usage?: 'client' | 'server' | 'both'; notBefore?: number; notAfter?: number } = {}) {
  return issueCredential(fixtureCrypto(), testIssuer(), {
    agentId: options.agentId ?? SERVER_ID,
    publicKey: first.keyPair.publicKey,
    usage: options.usage ?? 'server',
    notBefore: options.notBefore ?? NOW - 60,
    notAfter: options.notAfter ?? NOW + 30 * 86400,
  });
}

interface Started {
  server: PqmcpServer;
  reported: { error: PqmcpError; info: ClientInfo }[];
  /** Server side of each session, in order. */
  transports: PqmcpServerTransport[];
  refusedTickets: PqmcpError[];
}

/** The endpoint the replicas serve and the client names when they share ticket keys (tickets bind it). */
const SHARED = '//tools.example/mcp';

async function start(clock: ManualClock, tickets?: TicketKeys, identity = first.identity): Promise<Started> {
  const transports: PqmcpServerTransport[] = [];
  const server = await serveMcp({ identity, trust: trustFor(), clock, clockSkewSeconds: 0, ...(tickets ? { tickets: { keys: tickets }, endpoints: ['/', SHARED] } : {}) }, (_peer, transport) => {
    transports.push(transport);
    const mcp = new McpServer({ name: 'renewal', version: '1.0.0' });
    mcp.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
    return mcp;
  });
  const reported: { error: PqmcpError; info: ClientInfo }[] = [];
  server.on('clientError', (error, info) => reported.push({ error, info }));
  const refusedTickets: PqmcpError[] = [];
  server.on('ticketRefused', (error) => refusedTickets.push(error));
  cleanup.add(() => server.close());
  return { server, reported, transports, refusedTickets };
}

async function connect(url: string, tickets?: MemoryTicketStore, endpoint?: string) {
  const transport = new PqmcpClientTransport(url, { identity: clientAgent, trust: trustFor(), expectedServerId: SERVER_ID, clockSkewSeconds: 0, ...(tickets ? { tickets } : {}), ...(endpoint ? { endpoint } : {}) });
  const client = new Client({ name: 'renewal-client', version: '1.0.0' });
  let closed = false;
  client.onclose = () => (closed = true);
  cleanup.add(() => client.close());
  await client.connect(transport);
  const echo = async (text: string) => (await client.callTool({ name: 'echo', arguments: { text } })).content;
  expect(await echo('hello')).toEqual([{ type: 'text', text: 'hello' }]);
  return { transport, client, echo, closed: () => closed };
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('PqmcpServer.setCredential', () => {
  it('new handshakes present the renewed credential; a live session keeps its own and ends at its notAfter', async () => {
    const clock = new ManualClock();
    const { server, reported } = await start(clock);
    const before = await connect(server.url);
    expect(before.transport.peer!.serial).toBe(hex(first.credential.serial));
    expect(before.transport.peer!.notAfter).toBe(NOW + 3600);

    const renewed = renewal();
    // A Node Buffer, as read from a file: its slice() would be a view, not a copy.
    const bytes = Buffer.from(renewed.encoded);
    server.setCredential(bytes);
    bytes.fill(0); // the caller's array, reused: what handshakes present is the listener's copy
    const after = await connect(server.url);
    expect(after.transport.peer!.serial).toBe(hex(renewed.serial));
    expect(after.transport.peer!.notAfter).toBe(renewed.notAfter);
    expect(after.transport.peer!.agentId).toBe(SERVER_ID);
    // The session opened before still works, under the credential its client verified.
    expect(await before.echo('still here')).toEqual([{ type: 'text', text: 'still here' }]);

    // Past the first credential's notAfter (the server's clock): the server ends the session
    // that presented it, as its own credential's end; the renewed session goes on.
    clock.advance((NOW + 3600) * 1000 + 1001 - clock.now());
    await waitFor(() => before.closed());
    const ends = reported.map((r) => r.error).filter((e): e is SessionExpiredError => e instanceof SessionExpiredError);
    expect(ends.map((e) => e.reason)).toEqual(['own-credential']);
    expect(after.closed()).toBe(false);
    expect(await after.echo('renewed')).toEqual([{ type: 'text', text: 'renewed' }]);
    expect(server.sessions.size).toBe(1);
  });

  it('a handshake under way when the credential is renewed finishes with the one it started with, and its session ends at that one', async () => {
    const clock = new ManualClock();
    const { server, reported } = await start(clock);
    const renewed = renewal();
    // Renew right after this connection's upgrade, while its handshake is under way.
    server.httpServer.on('upgrade', () => setImmediate(() => server.setCredential(renewed)));
    const during = await connect(server.url);
    expect(during.transport.peer!.serial).toBe(hex(first.credential.serial));
    const after = await connect(server.url);
    expect(after.transport.peer!.serial).toBe(hex(renewed.serial));
    clock.advance((NOW + 3600) * 1000 + 1001 - clock.now());
    await waitFor(() => during.closed());
    expect(reported.map((r) => (r.error as SessionExpiredError).reason)).toEqual(['own-credential']);
    expect(await after.echo('renewed')).toEqual([{ type: 'text', text: 'renewed' }]);
  });

  it('refuses what must not be presented, with a typed error, and changes nothing', async () => {
    const clock = new ManualClock();
    const { server } = await start(clock);
    const otherKey = makeAgent(fixtureCrypto(), testIssuer(), SERVER_ID, { usage: 'server' }).credential;
    const cases: [string, () => unknown, new (...args: never[]) => PqmcpError, RegExp?][] = [
      ['another key', () => server.setCredential(otherKey), InvalidArgumentError, /another key/],
      ['another agent id', () => server.setCredential(renewal({ agentId: 'agent://pqmcp-test/someone-else' })), InvalidArgumentError, /someone-else/],
      ['client usage', () => server.setCredential(renewal({ usage: 'client' })), CredentialUsageError],
      ['expired', () => server.setCredential(renewal({ notBefore: NOW - 7200, notAfter: NOW - 60 })), CredentialExpiredError],
      ['not yet valid', () => server.setCredential(renewal({ notBefore: NOW + 3600, notAfter: NOW + 7200 })), CredentialNotYetValidError],
      ['not a credential', () => server.setCredential(new Uint8Array([1, 2, 3])), DecodeError],
      ['not bytes', () => server.setCredential('credential' as unknown as Uint8Array), InvalidArgumentError],
    ];
    for (const [what, call, type, message] of cases) {
      let thrown: unknown;
      try {
        call();
      } catch (err) {
        thrown = err;
      }
      expect(thrown, what).toBeInstanceOf(type);
      if (message) expect((thrown as Error).message, what).toMatch(message);
    }
    // The listener still presents its first credential.
    const c = await connect(server.url);
    expect(c.transport.peer!.serial).toBe(hex(first.credential.serial));
  });

  it('takes a credential from another issuer (the clients decide whether they trust it)', async () => {
    const other = makeIssuer(fixtureCrypto(), 'issuer://pqmcp-test/other');
    const clock = new ManualClock();
    const { server } = await start(clock);
    const reissued = issueCredential(fixtureCrypto(), other, { agentId: SERVER_ID, publicKey: first.keyPair.publicKey, usage: 'both', notBefore: NOW - 60, notAfter: NOW + 86400 });
    server.setCredential(reissued);
    // A client trusting only the first issuer now refuses the server: the listener presented the new one.
    const transport = new PqmcpClientTransport(server.url, { identity: clientAgent, trust: trustFor(), expectedServerId: SERVER_ID });
    await expect(new Client({ name: 'c', version: '1' }).connect(transport)).rejects.toMatchObject({ code: 'ERR_UNTRUSTED_ISSUER' });
  });
});

/** A listener issuing tickets, and a client ticket store holding one from a first session (closed). */
async function withTicket(clock: ManualClock) {
  const started = await start(clock, TicketKeys.generate(fixtureCrypto()));
  const store = new MemoryTicketStore();
  const key = ticketStoreKey(new URL(started.server.url), SERVER_ID);
  const first = await connect(started.server.url, store);
  await waitFor(() => store.count(key) === 1);
  await first.client.close();
  return { ...started, store, key };
}

describe('PqmcpServer.setCredential with resumption tickets', () => {
  it('a ticket authenticated before the renewal does not resume (a full handshake shows the renewed credential); the tickets after it do', async () => {
    const clock = new ManualClock();
    const { server, refusedTickets, store, key } = await withTicket(clock);

    const renewed = renewal();
    server.setCredential(renewed);
    // The same second as the ticket's auth_time: the ticket names the credential, not a time.
    const refused = await connect(server.url, store);
    expect(refused.transport.resumed).toBe(false);
    expect(refused.transport.peer!.serial).toBe(hex(renewed.serial));
    expect(refusedTickets.map((e) => e.code)).toEqual(['ERR_TICKET_MISMATCH']);
    expect(refusedTickets[0]!.message).toMatch(/server credential/);
    await waitFor(() => store.count(key) === 1);
    await refused.client.close();

    const again = await connect(server.url, store);
    expect(again.transport.peer!.serial).toBe(hex(renewed.serial));
    expect(refusedTickets).toHaveLength(1);
    expect(again.transport.resumed).toBe(true);
  });

  it('a listener restarted with the renewed credential and the same ticket keys refuses tickets from before the renewal (review 19, R19-1)', async () => {
    const clock = new ManualClock();
    const keys = TicketKeys.generate(fixtureCrypto());
    const before = await start(clock, keys);
    const store = new MemoryTicketStore();
    const c = await connect(before.server.url, store, SHARED);
    const beforeKey = ticketStoreKey(new URL(before.server.url), SERVER_ID);
    await waitFor(() => store.count(beforeKey) === 1);
    await c.client.close();
    const ticket = store.take(beforeKey, clock.now())!;
    await before.server.close();

    // The restart: another listener, nothing remembered, the renewed credential, the same keys.
    const renewed = renewal();
    const after = await start(clock, keys, createAgentIdentity({ keyPair: first.keyPair, credential: renewed }));
    const restartedStore = new MemoryTicketStore();
    restartedStore.put(ticketStoreKey(new URL(after.server.url), SERVER_ID), ticket);
    const resumedOrNot = await connect(after.server.url, restartedStore, SHARED);
    expect(resumedOrNot.transport.resumed).toBe(false);
    expect(resumedOrNot.transport.peer!.serial).toBe(hex(renewed.serial));
    expect(after.refusedTickets.map((e) => [e.code, e.message])).toEqual([['ERR_TICKET_MISMATCH', expect.stringMatching(/server credential/)]]);
  });

  it('in a rolling renewal, listeners sharing ticket keys refuse each other\'s tickets both ways until both present one credential (review 19, R19-1)', async () => {
    const clock = new ManualClock();
    const keys = TicketKeys.generate(fixtureCrypto());
    const renewed = renewal();
    const old = await start(clock, keys);
    const fresh = await start(clock, keys, createAgentIdentity({ keyPair: first.keyPair, credential: renewed }));
    const ticketFrom = async (url: string) => {
      const store = new MemoryTicketStore();
      const c = await connect(url, store, SHARED);
      await waitFor(() => store.count(ticketStoreKey(new URL(url), SERVER_ID)) === 1);
      await c.client.close();
      return store.take(ticketStoreKey(new URL(url), SERVER_ID), clock.now())!;
    };
    const offer = async (url: string, ticket: Awaited<ReturnType<typeof ticketFrom>>) => {
      const store = new MemoryTicketStore();
      store.put(ticketStoreKey(new URL(url), SERVER_ID), ticket);
      return (await connect(url, store, SHARED)).transport;
    };
    const fromOld = await ticketFrom(old.server.url);
    const fromFresh = await ticketFrom(fresh.server.url);
    expect((await offer(fresh.server.url, fromOld)).resumed).toBe(false);
    expect((await offer(old.server.url, fromFresh)).resumed).toBe(false);
    expect(fresh.refusedTickets.map((e) => e.code)).toEqual(['ERR_TICKET_MISMATCH']);
    expect(old.refusedTickets.map((e) => e.code)).toEqual(['ERR_TICKET_MISMATCH']);

    // Once the old one is renewed too (the same credential), the tickets of either resume on the other.
    old.server.setCredential(renewed);
    const later = await ticketFrom(fresh.server.url);
    const t = await offer(old.server.url, later);
    expect(t.resumed).toBe(true);
    expect(t.peer!.serial).toBe(hex(renewed.serial));
  });

  it('a handshake under way when the credential is renewed gets no ticket (credential-renewed)', async () => {
    const { server, transports } = await start(new ManualClock(), TicketKeys.generate(fixtureCrypto()));
    const store = new MemoryTicketStore();
    const key = ticketStoreKey(new URL(server.url), SERVER_ID);
    const renewed = renewal();
    server.httpServer.once('upgrade', () => setImmediate(() => server.setCredential(renewed)));
    const during = await connect(server.url, store);
    expect(during.transport.peer!.serial).toBe(hex(first.credential.serial));
    expect(transports[0]!.handshakeResult.ticketsWithheld).toBe('credential-renewed');
    expect(store.count(key)).toBe(0);
    const after = await connect(server.url, store);
    expect(after.transport.resumed).toBe(false);
    expect(after.transport.peer!.serial).toBe(hex(renewed.serial));
    expect(transports[1]!.handshakeResult.ticketsWithheld).toBeUndefined();
  });
});
