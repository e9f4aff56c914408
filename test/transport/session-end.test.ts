/**
 * Sessions end with their credentials (issue 10, item 4), over real sockets on 127.0.0.1
 * with real SDK peers: the peer credential's notAfter (+ skew), with an injected clock and
 * with a real credential that expires about three seconds after issue; a trust-store change
 * (revocation added, issuer removed) on either side; the maximum session lifetime; and the
 * per-agent session cap. Each end carries a typed reason on both sides: the side that ends
 * it reports SessionExpiredError / SessionUntrustedError / SessionLimitError, the other
 * side PeerAlertError with the matching alert.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { Alert, PeerAlertError, PqmcpError, SessionExpiredError, SessionLimitError, SessionUntrustedError } from '../../src/errors.js';
import { PqmcpClientTransport, serveMcp } from '../../src/transport/index.js';
import type { ClientInfo, PqmcpServer, PqmcpServerOptions, PqmcpServerTransport } from '../../src/transport/index.js';
import type { PqmcpClientOptions } from '../../src/transport/client.js';
import type { TrustStore } from '../../src/identity/trust.js';
import { fixtureCrypto, makeAgent, testIssuer, trustFor, agent } from '../helpers/identities.js';
import type { AgentIdentity } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, waitFor } from '../helpers/mcp.js';
import { ManualClock } from '../helpers/clock.js';

const CLIENT_ID = 'agent://pqmcp-test/session-end-client';
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface Side {
  errors: PqmcpError[];
  closed: Promise<void>;
}

interface Started {
  server: PqmcpServer;
  trust: TrustStore;
  /** Errors the listener reported (clientError), with the peer when verified. */
  reported: { error: PqmcpError; info: ClientInfo }[];
  /** Server side of each session, in order. */
  sessions: (Side & { transport: PqmcpServerTransport })[];
}

async function start(options: Partial<PqmcpServerOptions> = {}): Promise<Started> {
  const trust = options.trust ?? trustFor();
  const started: Started = { server: undefined!, trust, reported: [], sessions: [] };
  started.server = await serveMcp({ identity: agent(SERVER_ID), trust, ...options }, (_peer, transport) => {
    const mcp = new McpServer({ name: 'session-end', version: '1.0.0' });
    mcp.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
    const side = { transport, errors: [] as PqmcpError[], closed: transport.closed };
    started.sessions.push(side);
    mcp.server.onerror = (e) => void (e instanceof PqmcpError && side.errors.push(e));
    return mcp;
  });
  started.server.on('clientError', (error, info) => started.reported.push({ error, info }));
  cleanup.add(() => started.server.close());
  return started;
}

async function connect(url: string, options: Partial<PqmcpClientOptions> & { identity?: AgentIdentity } = {}): Promise<Side & { client: Client; transport: PqmcpClientTransport }> {
  const transport = new PqmcpClientTransport(url, { identity: agent(CLIENT_ID), trust: trustFor(), expectedServerId: SERVER_ID, ...options });
  const client = new Client({ name: 'session-end-client', version: '1.0.0' });
  const errors: PqmcpError[] = [];
  let closedResolve!: () => void;
  const closed = new Promise<void>((r) => (closedResolve = r));
  client.onerror = (e) => void (e instanceof PqmcpError && errors.push(e));
  client.onclose = () => closedResolve();
  cleanup.add(() => client.close());
  await client.connect(transport);
  const echo = await client.callTool({ name: 'echo', arguments: { text: 'alive' } });
  expect(echo.content).toEqual([{ type: 'text', text: 'alive' }]);
  return { client, transport, errors, closed };
}

/** Both sides closed within `ms` (the bound is 1 s) of now. */
async function bothClosedWithin(ms: number, ...sides: Side[]): Promise<number> {
  const t0 = performance.now();
  await Promise.race([Promise.all(sides.map((s) => s.closed)), new Promise((_, reject) => setTimeout(() => reject(new Error(`not closed on both sides within ${ms} ms`)), ms))]);
  return performance.now() - t0;
}

const peerAlert = (errors: PqmcpError[]): number | undefined => errors.find((e): e is PeerAlertError => e instanceof PeerAlertError)?.peerAlert;

describe('a credential that expires ends the session on both sides', () => {
  it('injected clock: the client credential passes notAfter + skew, the server ends the session, the client hears credentialExpired', async () => {
    const now = Math.floor(Date.now() / 1000);
    const shortLived = makeAgent(fixtureCrypto(), testIssuer(), CLIENT_ID, { notBefore: now - 60, notAfter: now + 3600 }).identity;
    const serverClock = new ManualClock();
    const clientClock = new ManualClock(); // stays put: only the server's time moves
    const s = await start({ clock: serverClock, clockSkewSeconds: 30 });
    const c = await connect(s.server.url, { identity: shortLived, clock: clientClock, clockSkewSeconds: 30 });
    // At notAfter + skew the credential is still valid (the window is inclusive).
    serverClock.advance((now + 3600 + 30) * 1000 - serverClock.now());
    await new Promise((r) => setTimeout(r, 50));
    expect(s.sessions[0]!.transport.peer.agentId).toBe(CLIENT_ID);
    expect(s.reported).toEqual([]);
    // One second later it is not.
    serverClock.advance(1000);
    await bothClosedWithin(1000, c, s.sessions[0]!);
    const ended = s.reported.map((r) => r.error);
    expect(ended).toHaveLength(1);
    expect(ended[0]).toBeInstanceOf(SessionExpiredError);
    expect((ended[0] as SessionExpiredError).reason).toBe('peer-credential');
    expect(s.reported[0]!.info.peer?.agentId).toBe(CLIENT_ID);
    expect(peerAlert(c.errors)).toBe(Alert.credentialExpired);
    expect(s.server.sessions.size).toBe(0);
  });

  it('injected clock: the server credential expires, the client ends the session, the server hears credentialExpired', async () => {
    const clientClock = new ManualClock();
    const s = await start({ clock: new ManualClock() });
    const c = await connect(s.server.url, { clock: clientClock });
    const serverNotAfter = c.transport.peer!.notAfter;
    clientClock.advance((serverNotAfter + 60) * 1000 + 1 - clientClock.now());
    await bothClosedWithin(1000, c, s.sessions[0]!);
    const own = c.errors.find((e) => e instanceof SessionExpiredError) as SessionExpiredError | undefined;
    expect(own?.reason).toBe('peer-credential');
    expect(own?.code).toBe('ERR_SESSION_EXPIRED');
    expect(peerAlert(s.sessions[0]!.errors)).toBe(Alert.credentialExpired);
  });

  it('a real credential that expires about three seconds after issue: both sides close within 1 s of notAfter, each with a typed reason', async () => {
    const s = await start({ clockSkewSeconds: 0 });
    const notAfter = Math.floor(Date.now() / 1000) + 3;
    const shortLived = makeAgent(fixtureCrypto(), testIssuer(), CLIENT_ID, { notBefore: notAfter - 60, notAfter }).identity;
    const c = await connect(s.server.url, { identity: shortLived, clockSkewSeconds: 0 });
    await bothClosedWithin(4000, c, s.sessions[0]!);
    const late = Date.now() - notAfter * 1000;
    expect(late).toBeGreaterThan(0); // not before notAfter (inclusive window)...
    expect(late).toBeLessThan(1000); // ...and within 1 s of it
    // The server ends it (the peer's credential) and the client ends it (its own): whichever
    // alert crosses the other, each side holds a typed reason.
    expect(s.reported.map((r) => r.error.code)).toEqual(['ERR_SESSION_EXPIRED']);
    const clientReason = c.errors.find((e) => e.code === 'ERR_SESSION_EXPIRED' || (e instanceof PeerAlertError && e.peerAlert === Alert.credentialExpired));
    expect(clientReason).toBeDefined();
    await expect(c.client.callTool({ name: 'echo', arguments: { text: 'late' } })).rejects.toThrow();
  });
});

describe('a trust store change re-checks live sessions', () => {
  it('server side: revoking the client credential serial ends its session (credentialRevoked); another client stays', async () => {
    const s = await start();
    const other = makeAgent(fixtureCrypto(), testIssuer(), 'agent://pqmcp-test/other').identity;
    const a = await connect(s.server.url);
    const b = await connect(s.server.url, { identity: other });
    s.trust.revokeSerial({ issuer: testIssuer().id, serial: agent(CLIENT_ID).credential.serial });
    await bothClosedWithin(1000, a, s.sessions[0]!);
    const ended = s.reported.map((r) => r.error);
    expect(ended).toHaveLength(1);
    expect(ended[0]).toBeInstanceOf(SessionUntrustedError);
    expect((ended[0] as SessionUntrustedError).reasonError.code).toBe('ERR_CREDENTIAL_REVOKED');
    expect(peerAlert(a.errors)).toBe(Alert.credentialRevoked);
    // The other agent's session is untouched.
    const still = await b.client.callTool({ name: 'echo', arguments: { text: 'still here' } });
    expect(still.content).toEqual([{ type: 'text', text: 'still here' }]);
    expect(s.server.sessions.size).toBe(1);
  });

  it('client side: removing the issuer that vouched for the server ends the session (unknownIssuer to the server)', async () => {
    const s = await start();
    const clientTrust = trustFor();
    const c = await connect(s.server.url, { trust: clientTrust });
    expect(clientTrust.removeIssuer(testIssuer().id)).toBe(1);
    await bothClosedWithin(1000, c, s.sessions[0]!);
    const own = c.errors.find((e) => e instanceof SessionUntrustedError) as SessionUntrustedError | undefined;
    expect(own?.reasonError.code).toBe('ERR_UNTRUSTED_ISSUER');
    expect(peerAlert(s.sessions[0]!.errors)).toBe(Alert.unknownIssuer);
  });

  it('server side: constraining the issuer so that it no longer vouches for the client ends its session (alert 102); another client stays', async () => {
    const s = await start();
    const other = makeAgent(fixtureCrypto(), testIssuer(), 'agent://pqmcp-test/kept/other').identity;
    const a = await connect(s.server.url);
    const b = await connect(s.server.url, { identity: other });
    // The same issuer, now constrained to agent://pqmcp-test/kept/: the session-end client is outside.
    s.trust.addIssuer({ id: testIssuer().id, publicKey: testIssuer().publicKey, constraints: ['agent://pqmcp-test/kept/*'] });
    await bothClosedWithin(1000, a, s.sessions[0]!);
    const ended = s.reported.map((r) => r.error);
    expect(ended).toHaveLength(1);
    expect(ended[0]).toBeInstanceOf(SessionUntrustedError);
    expect((ended[0] as SessionUntrustedError).reasonError.code).toBe('ERR_NAME_CONSTRAINT');
    expect(peerAlert(a.errors)).toBe(Alert.nameConstraintViolation);
    const still = await b.client.callTool({ name: 'echo', arguments: { text: 'still here' } });
    expect(still.content).toEqual([{ type: 'text', text: 'still here' }]);
  });

  it('replaceWith (a reloaded trust file) that still trusts the peer leaves the session alone', async () => {
    const s = await start();
    const c = await connect(s.server.url);
    s.trust.replaceWith(trustFor());
    await new Promise((r) => setTimeout(r, 100));
    const still = await c.client.callTool({ name: 'echo', arguments: { text: 'kept' } });
    expect(still.content).toEqual([{ type: 'text', text: 'kept' }]);
    expect(s.reported).toEqual([]);
  });
});

describe('maximum session lifetime and sessions per agent', () => {
  it('maxSessionLifetimeMs (injected clock): the server ends the session, the client hears sessionLifetimeExceeded', async () => {
    const clock = new ManualClock();
    const s = await start({ clock, maxSessionLifetimeMs: 60_000 });
    const c = await connect(s.server.url);
    clock.advance(59_999);
    await new Promise((r) => setTimeout(r, 50));
    expect(s.server.sessions.size).toBe(1);
    clock.advance(1);
    await bothClosedWithin(1000, c, s.sessions[0]!);
    expect((s.reported[0]?.error as SessionExpiredError | undefined)?.reason).toBe('lifetime');
    expect(peerAlert(c.errors)).toBe(Alert.sessionLifetimeExceeded);
  });

  it('maxSessionsPerAgent: the third session of one agent is refused (tooManySessions), other agents and a freed slot are served', async () => {
    const s = await start({ maxSessionsPerAgent: 2 });
    const first = await connect(s.server.url);
    await connect(s.server.url);
    const refused = new PqmcpClientTransport(s.server.url, { identity: agent(CLIENT_ID), trust: trustFor(), expectedServerId: SERVER_ID });
    const client = new Client({ name: 'third', version: '1.0.0' });
    cleanup.add(() => client.close());
    const error = await client.connect(refused).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PeerAlertError);
    expect((error as PeerAlertError).peerAlert).toBe(Alert.tooManySessions);
    await waitFor(() => s.reported.length === 1, 2000, 'the refusal to be reported');
    expect(s.reported[0]!.error).toBeInstanceOf(SessionLimitError);
    expect(s.server.sessions.size).toBe(2);
    // Another agent is not affected.
    await connect(s.server.url, { identity: makeAgent(fixtureCrypto(), testIssuer(), 'agent://pqmcp-test/another').identity });
    // A freed slot can be used again.
    await first.client.close();
    await waitFor(() => s.server.sessions.size === 2, 2000, 'the first session to go');
    await connect(s.server.url);
    expect(s.server.sessions.size).toBe(3);
  });
});
