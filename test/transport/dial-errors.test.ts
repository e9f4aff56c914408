/**
 * The client's connection errors for the usual mistakes (found by a first-time user of
 * `pqmcp connect`, session 8): a wrong path, a server that is not a WebSocket endpoint, and
 * wss:// to a plain listener each say what happened, with the URL's path (which the 404 is
 * about), and never the URL's user info or query; a forgotten `trust` is refused when the
 * transport is configured, not as an internal error at the handshake. Real servers on 127.0.0.1.
 */
import { createServer } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ConnectionError, InvalidArgumentError } from '../../src/errors.js';
import type { PqmcpError } from '../../src/errors.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import { PqmcpClientTransport as BrowserClientTransport } from '../../src/browser/index.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, startFeatureServer } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

async function dialError(url: string): Promise<PqmcpError> {
  const transport = new PqmcpClientTransport(url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID, busyRetry: false });
  cleanup.add(() => transport.close());
  const error = (await transport.start().then(
    () => undefined,
    (e: unknown) => e,
  )) as PqmcpError;
  expect(error).toBeInstanceOf(ConnectionError);
  expect(error.code).toBe('ERR_CONNECTION');
  return error;
}

describe('a missing or wrong trust option is refused when the transport is configured', () => {
  const expected = /^trust must be a TrustStore \(/;
  it('client: no trust, or a parsed trust file, is ERR_INVALID_ARGUMENT at construction (was: ERR_INTERNAL "internal error" at the handshake)', () => {
    const identity = agent('agent://pqmcp-test/client');
    for (const [trust, got] of [
      [undefined, 'undefined'],
      [JSON.parse(JSON.stringify(trustFor())) as unknown, 'another object'],
    ] as const) {
      let error: unknown;
      try {
        new PqmcpClientTransport('ws://127.0.0.1:9/', { identity, trust: trust as never, expectedServerId: SERVER_ID });
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
      expect((error as Error).message).toMatch(expected);
      expect((error as Error).message.endsWith(`got ${got}`)).toBe(true);
    }
  });

  it('server: listen() / serveMcp() without trust rejects before listening', async () => {
    await expect(startFeatureServer(cleanup, { backend: 'native', trust: undefined as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(expected) });
  });
});

describe('a URL with a fragment', () => {
  it('is refused when the transport is configured, ERR_INVALID_ARGUMENT (review 16, R16-7: ws threw a SyntaxError at the dial, start() rejected with ERR_INTERNAL "internal error")', async () => {
    const options = { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native' as const, expectedServerId: SERVER_ID, busyRetry: false as const };
    let error: unknown;
    try {
      const transport = new PqmcpClientTransport('ws://127.0.0.1:9/mcp#part', options);
      cleanup.add(() => transport.close());
      await transport.start();
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: 'url must not have a fragment (#...): a WebSocket URL has none' });
  });

  // URL.hash is '' for an empty fragment; the check looked only at it (review 17, R17-1).
  it('an empty fragment ("/mcp#") is refused too (review 17, R17-1: the Node client dialled it, and pqmcp/browser rejected start() with ERR_INTERNAL)', async () => {
    const options = { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), expectedServerId: SERVER_ID, busyRetry: false as const };
    expect(() => new PqmcpClientTransport('ws://127.0.0.1:9/mcp#', { ...options, backend: 'native' })).toThrow(/^url must not have a fragment/);
    expect(() => new PqmcpClientTransport(new URL('ws://127.0.0.1:9/?q#'), { ...options, backend: 'native' })).toThrow(InvalidArgumentError);
    // A '#' percent-encoded in the path or query is no fragment.
    expect(() => new PqmcpClientTransport('ws://127.0.0.1:9/a%23b?c=%23', { ...options, backend: 'native' })).not.toThrow();
  });

  // A standard WebSocket (browsers; Node 22+ has one) throws a SyntaxError for any fragment, an empty one included.
  it.runIf(typeof globalThis.WebSocket === 'function')('pqmcp/browser over the runtime\'s standard WebSocket refuses an empty fragment as typed (review 17, R17-1: SyntaxError, start() rejected with ERR_INTERNAL)', async () => {
    let error: unknown;
    try {
      const transport = new BrowserClientTransport('ws://127.0.0.1:9/mcp#', { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), expectedServerId: SERVER_ID, busyRetry: false });
      cleanup.add(() => transport.close());
      await transport.start();
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: 'url must not have a fragment (#...): a WebSocket URL has none' });
  });
});

describe('dial errors say what the mistake was', { timeout: 30_000 }, () => {
  it('a wrong path: HTTP 404, with the path, and where to look', async () => {
    const { server } = await startFeatureServer(cleanup, { backend: 'native', path: '/mcp' });
    const port = server.address().port;
    const error = await dialError(`ws://127.0.0.1:${port}/`);
    expect(error.message).toBe(
      `cannot connect to ws://127.0.0.1:${port}/: the server answered the WebSocket upgrade with HTTP 404: nothing listens at this path (check it against the listener's path, pqmcp serve --path)`,
    );
  });

  it('not a WebSocket endpoint: the HTTP status, and the question to ask', async () => {
    const http = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('metrics\n'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    cleanup.add(() => new Promise<void>((r) => http.close(() => r())));
    const port = (http.address() as { port: number }).port;
    const error = await dialError(`ws://user:hunter2@127.0.0.1:${port}/metrics?token=s3cret`);
    expect(error.message).toBe(`cannot connect to ws://127.0.0.1:${port}/metrics: the server answered the WebSocket upgrade with HTTP 200: not a WebSocket endpoint (is this the pqmcp listener's address?)`);
    expect(error.message).not.toMatch(/hunter2|s3cret|token/);
  });

  it('wss:// to a plain ws:// listener: says the server does not speak TLS', async () => {
    const { server } = await startFeatureServer(cleanup, { backend: 'native' });
    const error = await dialError(server.url.replace(/^ws:/, 'wss:'));
    expect(error.message).toMatch(/^cannot connect to wss:\/\/127\.0\.0\.1:\d+\/: TLS handshake failed: the server does not speak TLS here \(a pqmcp listener of its own is plain ws:\/\/; pqmcp encrypts inside the WebSocket\)$/);
  });

  it('webSocketOptions.handshakeTimeout sets the upgrade deadline; one past a timer\'s largest delay is taken as that delay, not as 1 ms', async () => {
    const { server } = await startFeatureServer(cleanup, { backend: 'native' });
    const transport = new PqmcpClientTransport(server.url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID, busyRetry: false, webSocketOptions: { handshakeTimeout: 2 ** 32 } });
    cleanup.add(() => transport.close());
    await transport.start();
    expect((await transport.handshake).peer.agentId).toBe(SERVER_ID);
  });

  it('a server that answers the upgrade a byte at a time is cut off at handshakeTimeoutMs, counted from the dial (review 16, R16-1: ws\'s timeout is an idle one, each byte restarted it)', async () => {
    const sockets: Socket[] = [];
    const slow = createTcpServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Slow: ');
        const drip = setInterval(() => socket.write('a'), 100);
        socket.on('close', () => clearInterval(drip));
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    cleanup.add(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), slow.close(() => r()))));
    const port = (slow.address() as { port: number }).port;
    const transport = new PqmcpClientTransport(`ws://127.0.0.1:${port}/mcp`, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID, busyRetry: false, handshakeTimeoutMs: 400 });
    cleanup.add(() => transport.close());
    const startedAt = Date.now();
    // Before: still dialing after 10x the timeout (a 16 KiB header at a byte per 9 s: ~40 hours at the default).
    const outcome = await Promise.race([transport.start().then(() => 'opened', (e: unknown) => e), new Promise((r) => setTimeout(() => r('still dialing'), 4000))]);
    expect(outcome).toBeInstanceOf(ConnectionError);
    expect((outcome as PqmcpError).message).toBe(`cannot connect to ws://127.0.0.1:${port}/mcp: the WebSocket upgrade did not complete within 400 ms`);
    expect(Date.now() - startedAt).toBeLessThan(2000);
    await new Promise((r) => setTimeout(r, 50));
    expect(sockets.every((s) => s.destroyed)).toBe(true);
  });
});
