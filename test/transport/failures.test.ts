/**
 * Failures as an MCP application sees them: refused identities (typed errors, no handler
 * ever runs), each side closing, dropped TCP connections and a server process that dies
 * mid-request (pending requests fail fast, nothing hangs).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes.js';
import { Alert, PeerAlertError, PqmcpError, TruncationError, UnexpectedPeerError, UntrustedIssuerError } from '../../src/errors.js';
import { listen } from '../../src/transport/index.js';
import type { PqmcpServerTransport } from '../../src/transport/index.js';
import { agent, fixtureCrypto, makeAgent, makeIssuer, testIssuer, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, connectClient, featureServer, makeClient, startFeatureServer, waitFor } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const noStats = () => ({ sessions: 0, handlerCalls: 0, cancelled: 0, peers: [], slowStarted: new Promise<void>(() => {}), markSlowStarted: () => {} });

/** Records onerror/onclose of a transport in order, without replacing the SDK's handlers. */
function watch(transport: { onerror?: ((e: Error) => void) | undefined; onclose?: (() => void) | undefined }): { events: string[]; errors: Error[] } {
  const log = { events: [] as string[], errors: [] as Error[] };
  const onerror = transport.onerror;
  const onclose = transport.onclose;
  transport.onerror = (e) => {
    log.events.push('error');
    log.errors.push(e);
    onerror?.(e);
  };
  transport.onclose = () => {
    log.events.push('close');
    onclose?.();
  };
  return log;
}

describe('refused identities', () => {
  it('an untrusted client is refused before any MCP message reaches the server, with a typed error', async () => {
    const { server, url, stats } = await startFeatureServer(cleanup, { backend: 'native' });
    const refused: PqmcpError[] = [];
    server.on('clientError', (e) => void refused.push(e));
    const rogueIssuer = makeIssuer(fixtureCrypto(), 'issuer://rogue');
    const rogue = makeAgent(fixtureCrypto(), rogueIssuer, 'agent://rogue/client').identity;
    const { client, transport } = makeClient(url, { backend: 'native', identity: rogue });
    cleanup.add(() => client.close());
    const error = await client.connect(transport).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PeerAlertError);
    expect((error as PeerAlertError).peerAlert).toBe(Alert.unknownIssuer);
    await waitFor(() => refused.length === 1, 5_000, 'server clientError');
    expect(refused[0]).toBeInstanceOf(UntrustedIssuerError);
    expect(stats.sessions).toBe(0);
    expect(stats.handlerCalls).toBe(0);
    expect(server.sessions.size).toBe(0);
  });

  it('a client that does not trust the server fails connect() with UntrustedIssuerError', async () => {
    const { url, stats } = await startFeatureServer(cleanup, { backend: 'native' });
    const other = makeIssuer(fixtureCrypto(), 'issuer://someone-else');
    const { client, transport } = makeClient(url, { backend: 'native', trust: trustFor(other) });
    cleanup.add(() => client.close());
    await expect(client.connect(transport)).rejects.toBeInstanceOf(UntrustedIssuerError);
    await expect(transport.handshake).rejects.toMatchObject({ code: 'ERR_UNTRUSTED_ISSUER' });
    expect(stats.handlerCalls).toBe(0);
  });

  it('a server with another agent id fails connect() with UnexpectedPeerError', async () => {
    const { url } = await startFeatureServer(cleanup, { backend: 'native' });
    const { client, transport } = makeClient(url, { backend: 'native', expectedServerId: 'agent://pqmcp-test/someone-else' });
    cleanup.add(() => client.close());
    await expect(client.connect(transport)).rejects.toBeInstanceOf(UnexpectedPeerError);
    expect(transport.sessionId).toBeUndefined();
  });

  it('an expired client credential is refused with the credential_expired alert', async () => {
    const { url, stats } = await startFeatureServer(cleanup, { backend: 'native' });
    const now = Math.floor(Date.now() / 1000);
    const expired = makeAgent(fixtureCrypto(), testIssuer(), 'agent://pqmcp-test/expired', { notBefore: now - 7200, notAfter: now - 3600 }).identity;
    const { client, transport } = makeClient(url, { backend: 'native', identity: expired });
    cleanup.add(() => client.close());
    await expect(client.connect(transport)).rejects.toMatchObject({ code: 'ERR_PEER_ALERT', peerAlert: Alert.credentialExpired });
    expect(stats.handlerCalls).toBe(0);
  });
});

describe('closing', () => {
  async function session() {
    const server = await listen({ identity: agent(SERVER_ID), trust: trustFor(), backend: 'native' });
    cleanup.add(() => server.close());
    let serverTransport: PqmcpServerTransport | undefined;
    let serverLog: ReturnType<typeof watch> | undefined;
    server.on('session', (transport) => {
      serverTransport = transport;
      void featureServer(noStats())
        .connect(transport)
        .then(() => (serverLog = watch(transport)));
    });
    const sockets: Socket[] = [];
    server.httpServer.on('connection', (s: Socket) => void sockets.push(s));
    const c = await connectClient(cleanup, server.url, { backend: 'native' });
    const clientLog = watch(c.transport);
    await waitFor(() => serverLog !== undefined, 5_000, 'server session');
    return { server, c, clientLog, serverLog: serverLog!, serverTransport: serverTransport!, sockets };
  }

  it('client close() sends the authenticated close and fires onclose on both sides, no errors', async () => {
    const { c, clientLog, serverLog } = await session();
    await c.client.close();
    expect(clientLog.events).toEqual(['close']);
    await waitFor(() => serverLog.events.length > 0, 5_000, 'server onclose');
    expect(serverLog.events).toEqual(['close']);
  });

  it('server close() fires onclose on both sides and fails the pending request fast', async () => {
    const { c, clientLog, serverLog, serverTransport } = await session();
    const pending = c.client.callTool({ name: 'slow', arguments: { ms: 30_000 } });
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await serverTransport.close();
    await expect(pending).rejects.toThrow(/closed/i);
    expect(Date.now() - t0).toBeLessThan(10_000); // fast: not the 30 s the tool would take
    expect(serverLog.events).toEqual(['close']);
    await waitFor(() => clientLog.events.length > 0, 5_000, 'client onclose');
    expect(clientLog.events).toEqual(['close']);
  });

  it('listener close() closes every session cleanly', async () => {
    const { server, clientLog, serverLog } = await session();
    await server.close();
    expect(serverLog.events).toEqual(['close']);
    await waitFor(() => clientLog.events.length > 0, 5_000, 'client onclose');
    expect(clientLog.events).toEqual(['close']);
    expect(server.sessions.size).toBe(0);
  });

  it('a dropped TCP connection fires onerror (TruncationError) then onclose on both sides; pending requests fail fast', async () => {
    const { c, clientLog, serverLog, sockets } = await session();
    const pending = c.client.callTool({ name: 'slow', arguments: { ms: 30_000 } });
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    for (const s of sockets) s.destroy();
    await expect(pending).rejects.toThrow(/closed/i);
    expect(Date.now() - t0).toBeLessThan(10_000); // fast: not the 30 s the tool would take
    await waitFor(() => clientLog.events.length >= 2 && serverLog.events.length >= 2, 5_000, 'both sides closed');
    expect(clientLog.events).toEqual(['error', 'close']);
    expect(serverLog.events).toEqual(['error', 'close']);
    expect(clientLog.errors[0]).toBeInstanceOf(TruncationError);
    expect(serverLog.errors[0]).toBeInstanceOf(TruncationError);
  });

  it('a server transport closed before start() (the session factory threw) ends by the close handshake, not the close timer', async () => {
    // Close timers far longer than the test: only the peers' close_notify and close frames can end these.
    const server = await listen({ identity: agent(SERVER_ID), trust: trustFor(), backend: 'native', closeTimeoutMs: 120_000 });
    cleanup.add(() => server.close());
    const closedByServer: Promise<void>[] = [];
    server.on('session', (transport) => void closedByServer.push(transport.close()));
    for (let i = 0; i < 2; i++) {
      const { client, transport } = makeClient(server.url, { backend: 'native', busyRetry: false, closeTimeoutMs: 120_000 });
      const log = watch(transport);
      await expect(client.connect(transport)).rejects.toThrow(/closed/i);
      expect(log.events).toContain('close');
    }
    await Promise.all(closedByServer);
    expect(closedByServer).toHaveLength(2);
    expect(server.sessions.size).toBe(0);
  }, 20_000);

  it('close() before start and double close() are harmless; onclose fires once', async () => {
    const { url } = await startFeatureServer(cleanup, { backend: 'native' });
    const { transport } = makeClient(url, { backend: 'native' });
    let closes = 0;
    transport.onclose = () => void closes++;
    await transport.close();
    await transport.close();
    expect(closes).toBe(1);
    const second = makeClient(url, { backend: 'native' });
    let closes2 = 0;
    await second.client.connect(second.transport);
    second.transport.onclose = ((prev) => () => {
      closes2++;
      prev?.();
    })(second.transport.onclose);
    await Promise.all([second.client.close(), second.transport.close()]);
    await new Promise((r) => setTimeout(r, 20));
    expect(closes2).toBe(1);
  });
});

describe('server process dies mid-session', () => {
  it('the pending request rejects promptly and the client gets a typed error', async () => {
    const script = fileURLToPath(new URL('./fixtures/server-process.ts', import.meta.url));
    const issuer = testIssuer();
    const env = { ...process.env, PQMCP_TEST_ISSUER_SEED: toHex(issuer.keyPair.seed), PQMCP_TEST_ISSUER_ID: issuer.id };
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'], env });
    cleanup.add(() => child.kill('SIGKILL'));
    const url = await new Promise<string>((resolve, reject) => {
      let buffer = '';
      const timer = setTimeout(() => reject(new Error('child server did not start')), 30_000);
      child.stdout!.on('data', (d: Buffer) => {
        buffer += d.toString();
        const m = /LISTENING (\S+)/.exec(buffer);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', () => reject(new Error('child server exited early')));
    });
    const c = makeClient(url, { backend: 'native', identity: agent('agent://pqmcp-test/client') });
    c.transport.onerror = undefined;
    cleanup.add(() => c.client.close());
    const errors: Error[] = [];
    c.client.onerror = (e) => void errors.push(e);
    await c.client.connect(c.transport);
    const pending = c.client.callTool({ name: 'slow', arguments: { ms: 60_000 } });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    child.kill('SIGKILL');
    await expect(pending).rejects.toThrow(/closed/i);
    expect(Date.now() - t0).toBeLessThan(10_000); // fast: not the 60 s the tool would take
    expect(errors.some((e) => e instanceof TruncationError)).toBe(true);
  });
});
