/**
 * TCP connections before their WebSocket upgrade request, on a listener of its own port
 * without `proxyProtocol` (pre-upgrade.ts), over real sockets on 127.0.0.x: each holds an
 * admission slot of its source from its accept, so idle or slow raw connections from one
 * address are held to its per-source cap (the evicted ones answered 503) and cut at
 * `firstFlightTimeoutMs` (Node's own `headersTimeout` is 60 s, checked every 30 s), while
 * clients from other addresses get through. A trusted proxy's connections share one slot
 * pool under the global cap until their request names the client. Plain HTTP requests are
 * answered and closed; a listener attached to the caller's server leaves that phase to it.
 */
import { createServer } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { HandshakeTimeoutError, ServerBusyError, type PqmcpError } from '../../src/errors.js';
import { PreUpgrade } from '../../src/transport/pre-upgrade.js';
import { SUBPROTOCOL } from '../../src/transport/index.js';
import type { PqmcpServer, PqmcpServerOptions } from '../../src/transport/index.js';
import { Cleanup, connectClient, waitFor } from '../helpers/mcp.js';
import { startWatched, type WatchedServer as Started } from '../helpers/watched-server.js';

const UPGRADE = (extra = '') => `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n${extra}\r\n`;

async function raw(server: PqmcpServer, localAddress: string): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port: server.address().port, localAddress });
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  return s;
}

/** Everything the server sent, once it closed the connection. */
const closed = (s: Socket) =>
  new Promise<string>((resolve) => {
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.once('close', () => resolve(Buffer.concat(got).toString('latin1')));
  });

describe('before the upgrade request: every TCP connection holds a slot (real sockets)', { timeout: 30_000 }, () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());

  const start = (options: Partial<PqmcpServerOptions> = {}): Promise<Started> => startWatched(cleanup, options);

  it('idle raw connections from one address are held to its cap (the evicted answered 503) and cut at the deadline; another address connects 3 of 3', async () => {
    const p = await start({ maxPendingPerSource: 4, firstFlightTimeoutMs: 4_000 });
    const flood: Socket[] = [];
    const answers: Promise<string>[] = [];
    for (let i = 0; i < 20; i++) {
      const s = await raw(p.server, '127.0.0.70');
      answers.push(closed(s));
      flood.push(s);
    }
    await waitFor(() => p.errors.length === 16, 5_000, 'sixteen evictions');
    expect(p.errors.every((e) => e.error instanceof ServerBusyError && e.remoteAddress === '127.0.0.70')).toBe(true);
    expect(p.server.pendingHandshakes).toBe(4);
    // The oldest went first, each told in HTTP: 503, which the pqmcp client retries.
    for (const answer of answers.slice(0, 16)) expect(await answer).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n[^]*Retry-After: 1\r\n/);
    expect(flood.slice(16).every((s) => !s.destroyed)).toBe(true);
    expect(p.audit.filter((e) => e.type === 'handshake.failure')).toHaveLength(16);
    for (let i = 0; i < 3; i++) {
      const { client } = await connectClient(cleanup, p.server.url, { backend: 'native', busyRetry: false, webSocketOptions: { localAddress: '127.0.0.71' } });
      expect(await client.callTool({ name: 'echo', arguments: { text: `honest ${i}` } })).toMatchObject({ content: [{ text: `honest ${i}` }] });
      expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.71');
      await client.close();
    }
    // The four left are cut at the first-flight deadline, not at Node's headersTimeout (60 s).
    for (const answer of answers.slice(16)) expect(await answer).toBe('');
    expect(p.errors.slice(16).map((e) => [e.error.code, e.remoteAddress])).toEqual(Array(4).fill(['ERR_HANDSHAKE_TIMEOUT', '127.0.0.70']));
    expect(p.errors.filter((e) => e.remoteAddress !== '127.0.0.70')).toEqual([]);
    await waitFor(() => p.server.pendingHandshakes === 0, 5_000, 'no slot left');
  });

  it('a connection that sends nothing, or half a request, is closed at firstFlightTimeoutMs with a typed report', async () => {
    const p = await start({ firstFlightTimeoutMs: 300 });
    const silent = await raw(p.server, '127.0.0.72');
    const slow = await raw(p.server, '127.0.0.73');
    const answers = [closed(silent), closed(slow)];
    slow.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await waitFor(() => p.server.pendingHandshakes === 2, 5_000, 'two slots');
    expect(await Promise.all(answers)).toEqual(['', '']);
    await waitFor(() => p.errors.length === 2, 5_000, 'two reports');
    for (const address of ['127.0.0.72', '127.0.0.73']) {
      const e = p.errors.find((x) => x.remoteAddress === address)!;
      expect(e.error).toMatchObject({ code: 'ERR_HANDSHAKE_TIMEOUT', message: 'no WebSocket upgrade request within 300 ms of the TCP connection' });
    }
    expect(p.server.pendingHandshakes).toBe(0);
  });

  it('a plain HTTP request is answered 426 and the connection closed (no keep-alive to idle in); a closed one frees its slot quietly', async () => {
    const p = await start();
    const s = await raw(p.server, '127.0.0.74');
    const answer = closed(s);
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 426 Upgrade Required\r\n[^]*Connection: close\r\n/i);
    const bare = await raw(p.server, '127.0.0.75');
    await waitFor(() => p.server.pendingHandshakes === 1, 5_000, 'the slot');
    bare.destroy();
    await waitFor(() => p.server.pendingHandshakes === 0, 5_000, 'the slots released');
    expect(p.errors).toEqual([]);
  });

  it('a trusted proxy\'s connections share one pool under the global cap until the request names the client', async () => {
    // The "proxy" is 127.0.0.76: its 6 idle connections (say, nginx forwarding slowly)
    // would evict each other under a per-source cap of 2; they do not.
    const p = await start({ trustedProxies: ['127.0.0.76'], maxPendingPerSource: 2, maxPendingHandshakes: 16, firstFlightTimeoutMs: 4_000 });
    const viaProxy: Socket[] = [];
    for (let i = 0; i < 6; i++) viaProxy.push(await raw(p.server, '127.0.0.76'));
    await waitFor(() => p.server.pendingHandshakes === 6, 5_000, 'six shared slots');
    // A raw flood from an untrusted address is held to ITS cap and touches none of them.
    for (let i = 0; i < 8; i++) await raw(p.server, '127.0.0.77');
    await waitFor(() => p.errors.length === 6, 5_000, 'six evictions');
    expect(p.errors.every((e) => e.error instanceof ServerBusyError && e.remoteAddress === '127.0.0.77')).toBe(true);
    expect(viaProxy.every((s) => !s.destroyed)).toBe(true);
    // One of the proxy's connections sends its request: the slot moves to the client named.
    const answer = closed(viaProxy[0]!);
    viaProxy[0]!.write(UPGRADE('X-Forwarded-For: 127.0.0.78\r\n'));
    await waitFor(() => p.server.pendingHandshakes === 2 + 6, 5_000, 'the WebSocket slot');
    viaProxy[0]!.destroy();
    await answer;
    // A real client through the proxy's address: its session records the client.
    const { client } = await connectClient(cleanup, p.server.url, { backend: 'native', busyRetry: false, headers: { 'X-Forwarded-For': '127.0.0.79' }, webSocketOptions: { localAddress: '127.0.0.76' } });
    expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.79');
    await client.close();
    expect(viaProxy.slice(1).every((s) => !s.destroyed)).toBe(true);
    // Nothing reported for the proxy's address; the WebSocket we cut is reported for its client.
    expect(p.errors.filter((e) => e.remoteAddress !== '127.0.0.77').map((e) => [e.error.code, e.remoteAddress])).toEqual([['ERR_TRUNCATED', '127.0.0.78']]);
  });

  it('the global cap still holds for a trusted proxy: past it the oldest of its shared slots goes', async () => {
    const p = await start({ trustedProxies: ['127.0.0.80'], maxPendingHandshakes: 4, firstFlightTimeoutMs: 4_000 });
    const answers: Promise<string>[] = [];
    for (let i = 0; i < 6; i++) answers.push(closed(await raw(p.server, '127.0.0.80')));
    await waitFor(() => p.errors.length === 2, 5_000, 'two evictions');
    expect(p.server.pendingHandshakes).toBe(4);
    expect(p.errors.every((e) => e.error instanceof ServerBusyError && e.remoteAddress === '127.0.0.80')).toBe(true);
    for (const answer of answers.slice(0, 2)) expect(await answer).toMatch(/^HTTP\/1\.1 503 /);
  });

  it('attached to the caller\'s server: that phase is the server\'s own, nothing is accounted before the upgrade', async () => {
    const http = createServer((_req, res) => res.end('app\n'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    cleanup.add(() => new Promise<void>((r) => (http.closeAllConnections(), http.close(() => r()))));
    const p = await start({ server: http, host: undefined, port: undefined, path: '/mcp' });
    const s = await raw(p.server, '127.0.0.81');
    await new Promise((r) => setTimeout(r, 100));
    expect(p.server.pendingHandshakes).toBe(0);
    s.destroy();
    const { client } = await connectClient(cleanup, p.server.url, { backend: 'native', webSocketOptions: { localAddress: '127.0.0.82' } });
    expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.82');
    await client.close();
  });
});

describe('PreUpgrade.close (real sockets, its own TCP server)', { timeout: 15_000 }, () => {
  it('destroys the evicted connections still lingering after their 503, so the listener can close at once', async () => {
    // A holder that only records: the test evicts by calling the abort it was given.
    const aborts: ((error: PqmcpError) => void)[] = [];
    let released = 0;
    // A linger far longer than the test: only close() can end these connections in time.
    const pre = new PreUpgrade<number>(
      {
        hold: (_address, abort) => aborts.push(abort),
        release: () => void released++,
      },
      60_000,
    );
    const reports: PqmcpError[] = [];
    const tcp = createTcpServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {});
      pre.hold(socket, { address: socket.remoteAddress, deadlineMs: 60_000, timeout: () => new HandshakeTimeoutError(60_000) }, (error) => reports.push(error));
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    const port = (tcp.address() as { port: number }).port;
    // The peers keep their side open after the server's FIN (allowHalfOpen), as a slow or
    // hostile client would.
    const peers = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<Socket>((resolve) => {
            const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(s));
            s.on('error', () => {});
          }),
      ),
    );
    await waitFor(() => aborts.length === 3, 5_000, 'three connections held');
    const answers = peers.map(
      (s) =>
        new Promise<string>((resolve) => {
          let got = '';
          s.on('data', (d: Buffer) => (got += d.toString('latin1')));
          s.once('end', () => resolve(got));
        }),
    );
    for (const abort of aborts) abort(new ServerBusyError('evicted'));
    for (const answer of answers) expect(await answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(reports.map((e) => e.code)).toEqual(Array(3).fill('ERR_SERVER_BUSY'));
    expect(released).toBe(3);
    // The server's close waits for every accepted socket: before the fix the lingering
    // ones held it for lingerMs (60 s here).
    const closedServer = new Promise<void>((r) => tcp.close(() => r()));
    pre.close();
    await closedServer;
    for (const s of peers) s.destroy();
  });
});
