/**
 * Hostile peers on real sockets (127.0.0.1) against the real transports: text frames, any
 * WebSocket framing, slowloris (one byte a second) both ways, half-open peers, a TCP
 * half-close, WebSocket closes without the authenticated close, and a peer that never
 * answers our close_notify. Every case checks the exact typed error, the close code and
 * the alert the attacker received, and that the honest side let go of everything
 * (no pending handshake, no session, no TCP connection, no extra handle or timer).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Alert, HandshakeTimeoutError, PqmcpError, TruncationError } from '../../src/errors.js';
import { CloseCode, PqmcpClientTransport } from '../../src/transport/index.js';
import { InnerType } from '../../src/record/index.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { HostileClient, HostileServer, leaksSince, resources } from './socket-harness.js';
import { INITIALIZE, SERVER_ID, attackerAs, connections, honestServer, type ServerLog } from './socket-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** The listener is back to nothing: no pending handshake, no session, no connection. */
async function expectIdle(log: ServerLog): Promise<void> {
  await waitFor(() => log.server.pendingHandshakes === 0 && log.server.sessions.size === 0, 5_000, 'server idle');
  await expect.poll(() => connections(log), { timeout: 5_000 }).toBe(0);
}

function clientTransport(url: string, extra: Partial<ConstructorParameters<typeof PqmcpClientTransport>[1]> = {}): PqmcpClientTransport {
  const t = new PqmcpClientTransport(url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID, ...extra });
  cleanup.add(() => t.close());
  return t;
}

/** connect() an SDK client over `transport`; resolves with the rejection (or undefined), bounded. */
async function connectOutcome(transport: PqmcpClientTransport, timeoutMs = 15_000): Promise<unknown> {
  const client = new Client({ name: 'honest', version: '1' });
  cleanup.add(() => client.close());
  return Promise.race([
    client.connect(transport).then(
      () => undefined,
      (e: unknown) => e,
    ),
    new Promise((_, reject) => setTimeout(() => reject(new Error('connect() neither resolved nor rejected')), timeoutMs)),
  ]);
}

describe('frames', () => {
  it('a text frame instead of binary, client to server: unexpected_message, close 4000, nothing left', async () => {
    const before = resources();
    const log = await honestServer(cleanup);
    const h = await HostileClient.connect(log.url, attackerAs(), { text: true }, cleanup);
    expect((await h.closed).code).toBe(CloseCode.protocolError);
    expect(h.attacker.alerts).toEqual([Alert.unexpectedMessage]);
    await waitFor(() => log.clientErrors.length === 1, 5_000, 'clientError');
    expect(log.clientErrors[0]!.code).toBe('ERR_UNEXPECTED_MESSAGE');
    await expectIdle(log);
    await cleanup.run();
    expect(await leaksSince(before)).toEqual({});
  });

  it('a text frame from the server: the client transport fails with unexpected_message and alerts', async () => {
    const hostile = await HostileServer.start(attackerAs(agent(SERVER_ID)), { text: true }, cleanup);
    const error = await connectOutcome(clientTransport(hostile.url));
    expect(error).toBeInstanceOf(PqmcpError);
    expect((error as PqmcpError).code).toBe('ERR_UNEXPECTED_MESSAGE');
    await waitFor(() => hostile.drivers.length === 1, 5_000, 'connection');
    expect((await hostile.drivers[0]!.closed).code).toBe(CloseCode.protocolError);
    expect(hostile.drivers[0]!.attacker.alerts).toEqual([Alert.unexpectedMessage]);
  });

  it('one byte per WebSocket message, with empty messages between: the handshake and MCP work', async () => {
    const log = await honestServer(cleanup);
    const split = (s: Uint8Array) => Array.from(s, (b) => [new Uint8Array(0), Uint8Array.of(b)]).flat();
    const h = await HostileClient.connect(log.url, attackerAs(), { frames: split }, cleanup);
    await h.handshake;
    await h.write(h.attacker.sendApplication(INITIALIZE));
    await waitFor(() => h.attacker.messages.length === 1, 10_000, 'initialize response');
    expect(JSON.parse(new TextDecoder().decode(h.attacker.messages[0]))).toMatchObject({ jsonrpc: '2.0', id: 0, result: { serverInfo: { name: 'adversarial' } } });
    expect(log.clientErrors).toEqual([]);
  });
});

describe('slow and half-open peers', () => {
  it('slowloris client, one byte a second: handshake timeout (4004), handshake_failure alert, slot freed', async () => {
    const log = await honestServer(cleanup, { handshakeTimeoutMs: 2_500, firstFlightTimeoutMs: 10_000 });
    const t0 = Date.now();
    const h = await HostileClient.connect(log.url, attackerAs(), { frames: 'bytes', delayMs: 1_000 }, cleanup);
    expect((await h.closed).code).toBe(CloseCode.handshakeTimeout);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2_400);
    expect(Date.now() - t0).toBeLessThan(6_000);
    // The server had no keys yet (the ClientHello never completed): a plaintext alert.
    expect(h.attacker.alerts).toEqual([Alert.handshakeFailure]);
    await waitFor(() => log.clientErrors.length === 1, 5_000, 'clientError');
    expect(log.clientErrors[0]).toBeInstanceOf(HandshakeTimeoutError);
    await expectIdle(log);
  });

  it('slowloris client against the first-flight deadline: closed (4004) when the ClientHello is not complete in time, long before the handshake timeout', async () => {
    const log = await honestServer(cleanup, { handshakeTimeoutMs: 30_000, firstFlightTimeoutMs: 1_500 });
    const t0 = Date.now();
    const h = await HostileClient.connect(log.url, attackerAs(), { frames: 'bytes', delayMs: 200 }, cleanup);
    expect((await h.closed).code).toBe(CloseCode.handshakeTimeout);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(h.attacker.alerts).toEqual([Alert.handshakeFailure]);
    await waitFor(() => log.clientErrors.length === 1, 5_000, 'clientError');
    expect(log.clientErrors[0]).toBeInstanceOf(HandshakeTimeoutError);
    expect(log.clientErrors[0]!.message).toBe('no complete ClientHello within 1500 ms');
    await expectIdle(log);
  });

  it('slowloris server, one byte a second: the client’s connect() rejects with HandshakeTimeoutError', async () => {
    const hostile = await HostileServer.start(attackerAs(agent(SERVER_ID)), { frames: 'bytes', delayMs: 1_000 }, cleanup);
    const t0 = Date.now();
    const error = await connectOutcome(clientTransport(hostile.url, { handshakeTimeoutMs: 2_500 }));
    expect(error).toBeInstanceOf(HandshakeTimeoutError);
    expect(Date.now() - t0).toBeLessThan(6_000);
    await waitFor(() => hostile.drivers.length === 1, 5_000, 'connection');
    expect((await hostile.drivers[0]!.closed).code).toBe(CloseCode.handshakeTimeout);
    expect(hostile.drivers[0]!.attacker.alerts).toEqual([Alert.handshakeFailure]);
  });

  it('half-open: a client that stops after its ClientHello, socket open: timeout, alert under the server’s keys', async () => {
    const log = await honestServer(cleanup, { handshakeTimeoutMs: 500 });
    const h = await HostileClient.connect(log.url, attackerAs(), { silentAfterRecords: 1 }, cleanup);
    expect((await h.closed).code).toBe(CloseCode.handshakeTimeout);
    // The attacker processed the server's flight, so it can read the protected alert.
    expect(h.attacker.alerts).toEqual([Alert.handshakeFailure]);
    await waitFor(() => log.clientErrors.length === 1, 5_000, 'clientError');
    expect(log.clientErrors[0]!.code).toBe('ERR_HANDSHAKE_TIMEOUT');
    await expectIdle(log);
  });

  it('a TCP half-close (FIN) after the ClientHello: ERR_TRUNCATED, slot freed at once', async () => {
    const log = await honestServer(cleanup, { handshakeTimeoutMs: 30_000 });
    const h = await HostileClient.connect(log.url, attackerAs(), { silentAfterRecords: 1 }, cleanup);
    await waitFor(() => log.server.pendingHandshakes === 1, 5_000, 'pending handshake');
    h.tcp.end();
    await waitFor(() => log.clientErrors.length === 1, 5_000, 'clientError');
    const error = log.clientErrors[0]!;
    expect(error).toBeInstanceOf(TruncationError);
    expect([error.code, error.message]).toEqual(['ERR_TRUNCATED', 'connection ended during the handshake']);
    // One per dropped connection under a flood: built without a stack trace (stackless.ts).
    expect(error.stack).toBe('TruncationError: connection ended during the handshake');
    await expectIdle(log);
  });
});

describe('ends without the authenticated close', () => {
  async function established(log: ServerLog): Promise<HostileClient> {
    const h = await HostileClient.connect(log.url, attackerAs(), {}, cleanup);
    await h.handshake;
    await h.write(h.attacker.sendApplication(INITIALIZE));
    await waitFor(() => h.attacker.messages.length === 1 && log.sessions.length === 1, 10_000, 'session');
    return h;
  }

  it.each([
    ['a WebSocket close 1000 (unauthenticated)', (h: HostileClient) => h.ws.close(1000), 'ERR_TRUNCATED'],
    ['a WebSocket close 4002 (a forged pqmcp close code)', (h: HostileClient) => h.ws.close(4002), 'ERR_CONNECTION'],
    ['a TCP reset', (h: HostileClient) => h.tcp.destroy(), 'ERR_TRUNCATED'],
  ] as const)('%s: the server transport reports %s, then closes', async (_what, end, code) => {
    const log = await honestServer(cleanup);
    const h = await established(log);
    expect(log.transportEvents).toEqual([]);
    end(h);
    await waitFor(() => log.transportEvents.includes('close'), 5_000, 'server transport closed');
    expect(log.transportEvents).toEqual(['error', 'close']);
    expect(log.transportErrors[0]!.code).toBe(code);
    await expectIdle(log);
  });

  it('close() against a peer that never answers close_notify: bounded by closeTimeoutMs, then everything is released', async () => {
    const before = resources();
    const log = await honestServer(cleanup, { closeTimeoutMs: 300 });
    const h = await established(log);
    // The attacker stops reading: it never sees (or answers) the close_notify.
    h.tcp.pause();
    const t0 = Date.now();
    await log.sessions[0]!.close();
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(log.transportEvents).toEqual(['close']);
    await expectIdle(log);
    await cleanup.run();
    expect(await leaksSince(before)).toEqual({});
  });

  it('the attacker’s close_notify with no WebSocket close afterwards: the server answers and closes cleanly', async () => {
    const log = await honestServer(cleanup, { closeTimeoutMs: 500 });
    const h = await established(log);
    await h.write([h.attacker.seal(InnerType.alert, Uint8Array.of(0, Alert.closeNotify))]);
    await waitFor(() => log.transportEvents.includes('close'), 5_000, 'server closed');
    expect(log.transportEvents).toEqual(['close']);
    expect(h.attacker.alerts).toEqual([Alert.closeNotify]);
    expect((await h.closed).code).toBe(CloseCode.normal);
    await expectIdle(log);
  });
});
