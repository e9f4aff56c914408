/**
 * WebSocket-level behaviour of the transports, driven by raw `ws` peers where the test
 * needs a misbehaving one: binary-only frames, subprotocol, handshake timeout, pending
 * handshake limit, keepalive timeout, backpressure, close codes, attaching to an existing
 * http.Server.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import {
  BadSignatureError,
  ClosedError,
  ConnectionError,
  HandshakeTimeoutError,
  KeepAliveTimeoutError,
  MessageTooLargeError,
  PeerAlertError,
  ServerBusyError,
  UnexpectedMessageError,
  UntrustedIssuerError,
} from '../../src/errors.js';
import type { PqmcpError } from '../../src/errors.js';
import { CloseCode, PqmcpClientTransport, SUBPROTOCOL, closeCodeFor, listen } from '../../src/transport/index.js';
import type { PqmcpServer, PqmcpServerTransport } from '../../src/transport/index.js';
import { errorForPeerClose } from '../../src/transport/close-codes.js';
import { HostileClient, HostileServer } from '../adversarial/socket-harness.js';
import { attackerAs } from '../adversarial/socket-fixtures.js';
import { agent, trustFor } from '../helpers/identities.js';
import { makeCertificates, opensslVersion } from '../../benchmarks/lib/certs.js';
import { Cleanup, SERVER_ID, connectClient, featureServer, startFeatureServer, waitFor } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const noStats = () => ({ sessions: 0, handlerCalls: 0, cancelled: 0, peers: [], slowStarted: new Promise<void>(() => {}), markSlowStarted: () => {} });

/** A raw ws client offering the pqmcp subprotocol; resolves once open. */
async function rawClient(url: string, options: { autoPong?: boolean; protocols?: string[] } = {}): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(url, options.protocols ?? [SUBPROTOCOL], { autoPong: options.autoPong ?? true });
  ws.on('error', () => {});
  cleanup.add(() => ws.terminate());
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('close', () => reject(new Error('closed before open')));
  });
  return { ws, closed };
}

async function listener(options: Parameters<typeof listen>[0] extends infer O ? Partial<O> : never = {}): Promise<{ server: PqmcpServer; errors: PqmcpError[] }> {
  const server = await listen({ identity: agent(SERVER_ID), trust: trustFor(), backend: 'native', ...options });
  cleanup.add(() => server.close());
  const errors: PqmcpError[] = [];
  server.on('clientError', (e) => void errors.push(e));
  return { server, errors };
}

function rawTransport(url: string, options: Partial<ConstructorParameters<typeof PqmcpClientTransport>[1]> = {}): PqmcpClientTransport {
  const transport = new PqmcpClientTransport(url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID, ...options });
  cleanup.add(() => transport.close());
  return transport;
}

describe('frames and subprotocol', () => {
  it('a text frame is a protocol error: close code 4000 and a typed error', async () => {
    const { server, errors } = await listener();
    const { ws, closed } = await rawClient(server.url);
    ws.send('{"jsonrpc":"2.0","method":"ping","id":1}');
    expect(await closed).toBe(CloseCode.protocolError);
    await waitFor(() => errors.length === 1, 5_000, 'clientError');
    expect(errors[0]).toBeInstanceOf(UnexpectedMessageError);
  });

  it('a text frame inside an established session ends it on both sides', async () => {
    const { server } = await listener();
    const serverErrors: Error[] = [];
    server.on('session', (transport) => {
      void featureServer(noStats())
        .connect(transport)
        .then(() => {
          const prev = transport.onerror;
          transport.onerror = (e) => {
            serverErrors.push(e);
            prev?.(e);
          };
        });
    });
    const { transport } = await connectClient(cleanup, server.url, { backend: 'native' });
    const clientErrors: Error[] = [];
    const prevErr = transport.onerror;
    transport.onerror = (e) => {
      clientErrors.push(e);
      prevErr?.(e);
    };
    (transport as unknown as { ws: WebSocket }).ws.send('not binary');
    await waitFor(() => serverErrors.length > 0 && clientErrors.length > 0, 5_000, 'errors on both sides');
    expect(serverErrors[0]).toBeInstanceOf(UnexpectedMessageError);
    expect(clientErrors[0]).toBeInstanceOf(PeerAlertError);
  });

  it('a client transport that receives a text frame fails with a typed error', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => SUBPROTOCOL });
    cleanup.add(() => new Promise((r) => wss.close(() => r(undefined))));
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      ws.once('message', () => ws.send('text!'));
    });
    const port = (wss.address() as { port: number }).port;
    const transport = rawTransport(`ws://127.0.0.1:${port}/`);
    const errors: Error[] = [];
    let closed = false;
    transport.onerror = (e) => void errors.push(e);
    transport.onclose = () => void (closed = true);
    await transport.start();
    await waitFor(() => closed, 5_000, 'client close');
    expect(errors[0]).toBeInstanceOf(UnexpectedMessageError);
    await expect(transport.handshake).rejects.toBeInstanceOf(UnexpectedMessageError);
  });

  it('an upgrade without the pqmcp.v1 subprotocol gets HTTP 400; a wrong path 404', async () => {
    const { server } = await listener({ path: '/mcp' });
    const status = (url: string, protocols: string[]) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url, protocols);
        ws.on('error', () => {});
        ws.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on('open', () => {
          resolve(101);
          ws.terminate();
        });
      });
    expect(await status(server.url, ['other'])).toBe(400);
    expect(await status(server.url.replace('/mcp', '/elsewhere'), [SUBPROTOCOL])).toBe(404);
    expect(await status(server.url, [SUBPROTOCOL])).toBe(101);
  });

  it('a plain HTTP request gets 426 Upgrade Required', async () => {
    const { server } = await listener();
    const res = await fetch(server.url.replace('ws://', 'http://'));
    expect(res.status).toBe(426);
    await res.text();
  });
});

describe('limits', () => {
  it('handshake timeout: a client that sends nothing is closed with 4004', async () => {
    const { server, errors } = await listener({ handshakeTimeoutMs: 200 });
    const { closed } = await rawClient(server.url);
    expect(await closed).toBe(CloseCode.handshakeTimeout);
    await waitFor(() => errors.length === 1, 5_000, 'clientError');
    expect(errors[0]).toBeInstanceOf(HandshakeTimeoutError);
    await waitFor(() => server.pendingHandshakes === 0, 5_000, 'pending handshake released');
  });

  it('handshake timeout on the client: connect() rejects with HandshakeTimeoutError', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => SUBPROTOCOL });
    cleanup.add(() => new Promise((r) => wss.close(() => r(undefined))));
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (ws) => void ws.on('error', () => {}));
    const port = (wss.address() as { port: number }).port;
    const transport = rawTransport(`ws://127.0.0.1:${port}/`, { handshakeTimeoutMs: 200 });
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const client = new Client({ name: 't', version: '1' });
    const t0 = Date.now();
    await expect(client.connect(transport)).rejects.toBeInstanceOf(HandshakeTimeoutError);
    expect(Date.now() - t0).toBeLessThan(10_000); // the 200 ms timeout, not the test's 60 s
  });

  it('maxPendingHandshakes: a newcomer evicts the oldest silent handshake (4006, ServerBusyError) and the table never exceeds the cap', async () => {
    const { server, errors } = await listener({ maxPendingHandshakes: 2, handshakeTimeoutMs: 30_000, firstFlightTimeoutMs: 30_000 });
    server.on('session', (transport) => void featureServer(noStats()).connect(transport));
    const a = await rawClient(server.url);
    const b = await rawClient(server.url);
    await waitFor(() => server.pendingHandshakes === 2, 5_000, 'two pending handshakes');
    const c = await rawClient(server.url);
    // The oldest (a) made room; b and c are still pending.
    expect(await a.closed).toBe(CloseCode.serverBusy);
    expect(server.pendingHandshakes).toBe(2);
    expect(errors.some((e) => e instanceof ServerBusyError)).toBe(true);

    // An honest client is admitted as well (evicting b), and completes.
    const ok = await connectClient(cleanup, server.url, { backend: 'native' });
    expect(ok.transport.peer?.agentId).toBe(SERVER_ID);
    expect(await b.closed).toBe(CloseCode.serverBusy);
    c.ws.terminate();
    await waitFor(() => server.pendingHandshakes === 0, 5_000, 'pending handshakes released');
  });

  it('maxPayload: a WebSocket message above it is refused (1009) with a typed error', async () => {
    const { server, errors } = await listener({ maxPayload: 256 * 1024 });
    const { ws, closed } = await rawClient(server.url);
    ws.send(new Uint8Array(256 * 1024 + 1));
    expect(await closed).toBe(1009);
    await waitFor(() => errors.length === 1, 5_000, 'clientError');
    expect(errors[0]).toBeInstanceOf(ConnectionError);
  });

  it('maxMessageSize: an oversized send() rejects with MessageTooLargeError and the session lives on', async () => {
    const { url } = await startFeatureServer(cleanup, { backend: 'native' });
    const { client, transport } = await connectClient(cleanup, url, { backend: 'native', maxMessageSize: 1024 });
    await expect(transport.send({ jsonrpc: '2.0', method: 'notifications/x', params: { pad: 'z'.repeat(2048) } })).rejects.toBeInstanceOf(MessageTooLargeError);
    const echo = await client.callTool({ name: 'echo', arguments: { text: 'still here' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'still here' }]);
  });
});

describe('keepalive', () => {
  it('client: no pong within keepAliveTimeoutMs after the handshake -> onerror(KeepAliveTimeoutError) then onclose', async () => {
    // A server that completes the handshake, then reads nothing more (so answers no ping).
    const hostile = await HostileServer.start(attackerAs(agent(SERVER_ID)), { stopReadingAfterHandshake: true }, cleanup);
    const transport = rawTransport(hostile.url, { keepAliveMs: 50, keepAliveTimeoutMs: 100 });
    const events: string[] = [];
    const errors: Error[] = [];
    transport.onerror = (e) => {
      events.push('error');
      errors.push(e);
    };
    transport.onclose = () => void events.push('close');
    await transport.start();
    await waitFor(() => events.includes('close'), 5_000, 'keepalive close');
    expect(events).toEqual(['error', 'close']);
    expect(errors[0]).toBeInstanceOf(KeepAliveTimeoutError);
  });

  it('server: a peer silent after its handshake is dropped; a live one is kept', async () => {
    // The keepalive starts when the handshake completes (the handshake timeout bounds what
    // comes before): a client busy with its own synchronous handshake crypto, or waiting for
    // the server's in its queue, is never pinged meanwhile.
    const { server } = await listener({ keepAliveMs: 200, keepAliveTimeoutMs: 2_000 });
    // Established sessions report on the transport, not as 'clientError'.
    const errors: unknown[] = [];
    server.on('session', (transport) => {
      void featureServer(noStats())
        .connect(transport)
        .then(() => {
          const onerror = transport.onerror;
          transport.onerror = (e) => {
            errors.push(e);
            onerror?.(e);
          };
        });
    });
    const silent = await HostileClient.connect(server.url, attackerAs(), { stopReadingAfterHandshake: true }, cleanup);
    await silent.handshake; // it completed its handshake (its own socket is paused: it never sees the close)
    const live = await connectClient(cleanup, server.url, { backend: 'native', keepAliveMs: 0 });
    await waitFor(() => errors.some((e) => e instanceof KeepAliveTimeoutError), 10_000, 'keepalive error');
    await waitFor(() => server.sessions.size === 1, 5_000, 'the silent session to go');
    await new Promise((r) => setTimeout(r, 1_000)); // several more ping rounds
    const echo = await live.client.callTool({ name: 'echo', arguments: { text: 'alive' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'alive' }]);
  });
});

describe('backpressure', () => {
  it('a peer that stops reading: send() stays pending, buffered bytes stay bounded, and it resumes on drain', async () => {
    const highWaterMark = 1024 * 1024;
    const { server } = await listener({ highWaterMark });
    let serverTransport: PqmcpServerTransport | undefined;
    server.on('session', (t) => {
      serverTransport = t;
      void t.start();
    });
    const transport = rawTransport(server.url);
    let received = 0;
    transport.onmessage = () => void received++;
    await transport.start();
    // Queued until the handshake completes; it settles once the server has spoken (below).
    const hello = transport.send({ jsonrpc: '2.0', method: 'notifications/hello' });
    await waitFor(() => serverTransport !== undefined, 5_000, 'server session');
    const ws = (transport as unknown as { ws: WebSocket }).ws;
    ws.pause(); // The client stops reading from its socket.

    const message: JSONRPCMessage = { jsonrpc: '2.0', method: 'notifications/blob', params: { data: 'b'.repeat(1024 * 1024) } };
    const messageBytes = JSON.stringify(message).length;
    let pending: Promise<void> | undefined;
    let sent = 0;
    let maxBuffered = 0;
    for (let i = 0; i < 400 && !pending; i++) {
      const p = serverTransport!.send(message);
      sent++;
      maxBuffered = Math.max(maxBuffered, serverTransport!.bufferedAmount);
      const settled = await Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);
      if (!settled) pending = p;
    }
    expect(pending, 'send() should block once the peer stops reading').toBeDefined();
    // Bounded: at most the high-water mark plus one message (plus record overhead).
    expect(maxBuffered).toBeLessThanOrEqual(highWaterMark + messageBytes + 64 * 1024);
    let done = false;
    void pending!.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(done).toBe(false);

    ws.resume();
    await pending;
    await hello;
    await waitFor(() => received === sent, 20_000, 'all messages delivered');
  });
});

describe('receive side', () => {
  it('a flood of small messages is delivered completely and in order; reading pauses while many wait', async () => {
    const { server } = await listener();
    let serverTransport: PqmcpServerTransport | undefined;
    server.on('session', (t) => {
      serverTransport = t;
      void t.start();
    });
    // The server's 3000 notifications leave in one turn, as multi-message records of at most
    // 1024 messages (about 58 KB each): one such record already holds more undelivered bytes
    // than this client's highWaterMark, so reading pauses on bytes even when the records
    // arrive one socket read at a time (the 1024-message bound needs two in one read).
    const transport = rawTransport(server.url, { highWaterMark: 32 * 1024 });
    const seen: number[] = [];
    transport.onmessage = (m) => void seen.push(Number((m as { params?: { n?: number } }).params?.n));
    await transport.start();
    void transport.send({ jsonrpc: '2.0', method: 'notifications/hello' });
    await waitFor(() => serverTransport !== undefined, 5_000, 'server session');
    const ws = (transport as unknown as { ws: WebSocket }).ws;
    let pauses = 0;
    const pause = ws.pause.bind(ws);
    ws.pause = () => {
      pauses++;
      pause();
    };
    const count = 3000;
    await Promise.all(Array.from({ length: count }, (_, n) => serverTransport!.send({ jsonrpc: '2.0', method: 'notifications/n', params: { n } })));
    await waitFor(() => seen.length === count, 20_000, 'all messages');
    expect(seen).toEqual(Array.from({ length: count }, (_, n) => n));
    expect(pauses).toBeGreaterThan(0);
  });
});

describe('close codes', () => {
  it('map error codes to coarse 4xxx codes, and 4006 back to ServerBusyError', () => {
    expect(closeCodeFor(new UnexpectedMessageError('x'))).toBe(4000);
    expect(closeCodeFor(new BadSignatureError())).toBe(4002);
    expect(closeCodeFor(new UntrustedIssuerError('issuer://x'))).toBe(4002);
    expect(closeCodeFor(new MessageTooLargeError(2, 1))).toBe(4003);
    expect(closeCodeFor(new HandshakeTimeoutError(1))).toBe(4004);
    expect(closeCodeFor(new KeepAliveTimeoutError(1))).toBe(4005);
    expect(closeCodeFor(new ServerBusyError())).toBe(4006);
    expect(closeCodeFor(new PeerAlertError(40))).toBe(4007);
    expect(closeCodeFor(new ClosedError())).toBe(4008);
    expect(errorForPeerClose(4006)).toBeInstanceOf(ServerBusyError);
    expect(errorForPeerClose(4002)).toBeInstanceOf(ConnectionError);
    expect(errorForPeerClose(1006)).toBeUndefined();
  });
});

describe('attached to an existing http.Server', () => {
  it('serves pqmcp at a path and leaves other requests to the application', async () => {
    const http: Server = createServer((_req, res) => res.end('app says hi'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    cleanup.add(() => new Promise((r) => http.close(() => r(undefined))));
    const { server } = await listener({ server: http, path: '/mcp' });
    server.on('session', (transport) => void featureServer(noStats()).connect(transport));
    expect(server.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const { client } = await connectClient(cleanup, server.url, { backend: 'native' });
    expect((await client.callTool({ name: 'echo', arguments: { text: 'attached' } })).content).toEqual([{ type: 'text', text: 'attached' }]);
    const res = await fetch(server.url.replace('ws://', 'http://'));
    expect(await res.text()).toBe('app says hi');
    await client.close();
    await server.close();
    expect(http.listening).toBe(true);
  });
});

describe('attached to an existing https.Server (wss://)', () => {
  const openssl = opensslVersion();
  if (!openssl) console.warn('[skip] wss:// test: the openssl command line tool is not available to make a certificate');

  it.skipIf(!openssl)('runs the pqmcp handshake inside TLS; the client takes the TLS trust options through webSocketOptions', async () => {
    const certs = makeCertificates();
    const https = createHttpsServer({ key: certs.serverKey, cert: certs.serverCert }, (_req, res) => res.end('app says hi'));
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', () => r()));
    cleanup.add(() => new Promise((r) => https.close(() => r(undefined))));
    const { server } = await listener({ server: https, path: '/mcp' });
    const peers: string[] = [];
    server.on('session', (transport, peer) => {
      peers.push(peer.agentId);
      void featureServer(noStats()).connect(transport);
    });
    expect(server.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/mcp$/);
    // Without the CA the TLS layer refuses before any pqmcp byte: a clear connection error.
    const untrusted = rawTransport(server.url);
    await expect(untrusted.start()).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
    const { client, transport } = await connectClient(cleanup, server.url, { backend: 'native', webSocketOptions: { ca: certs.ca } });
    expect(transport.peer?.agentId).toBe(SERVER_ID);
    expect(peers).toEqual(['agent://pqmcp-test/client']);
    expect((await client.callTool({ name: 'echo', arguments: { text: 'inside TLS' } })).content).toEqual([{ type: 'text', text: 'inside TLS' }]);
    await client.close();
    await server.close();
  });
});
