/**
 * Review 3: an upgrade request the listener answers with an HTTP error (404 wrong path, 400
 * no pqmcp subprotocol, 503 draining) is closed for good once the answer is out. Past the
 * 'upgrade' event Node's HTTP server no longer times the socket out and no admission slot
 * holds it, so a half-close alone let a client that never closes its side keep the socket
 * (and server.close() waiting for it) for ever, directly or through a PROXY-protocol front.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { PqmcpServer } from '../../src/transport/index.js';
import { Cleanup, startFeatureServer, waitFor } from '../helpers/mcp.js';
import { v2Header } from '../helpers/proxy-header.js';

const UPGRADE = (path: string, protocol: string) =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`;

/** A client that keeps its sending side open after the server's FIN (as an attacker's would). */
async function halfOpen(server: PqmcpServer): Promise<{ socket: Socket; answer: () => string; gone: () => boolean }> {
  const socket = connect({ host: '127.0.0.1', port: server.address().port, allowHalfOpen: true });
  let answer = '';
  let gone = false;
  socket.on('data', (d: Buffer) => void (answer += d.toString('latin1')));
  socket.on('error', () => void (gone = true)); // EPIPE / ECONNRESET: the server's socket is closed
  socket.on('close', () => void (gone = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, answer: () => answer, gone: () => gone };
}

describe('a rejected upgrade is closed, not left half-open (review 3)', { timeout: 30_000 }, () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());

  for (const proxied of [false, true]) {
    it(`${proxied ? 'through a PROXY-protocol front' : 'directly'}: 404, 400 and 503 answers, then the server's socket is gone`, async () => {
      const { server } = await startFeatureServer(cleanup, { backend: 'native', path: '/mcp', ...(proxied ? { proxyProtocol: true, trustedProxies: ['127.0.0.1'] } : {}) });
      const cases: [string, string, RegExp][] = [
        ['/other', 'pqmcp', /^HTTP\/1\.1 404 /],
        ['/mcp', 'chat', /^HTTP\/1\.1 400 /],
      ];
      for (const [path, protocol, expected] of cases) {
        const c = await halfOpen(server);
        cleanup.add(() => void c.socket.destroy());
        if (proxied) c.socket.write(v2Header({ src: '127.0.0.91' }));
        c.socket.write(UPGRADE(path, protocol));
        await waitFor(() => expected.test(c.answer()), 5_000, `the ${expected} answer`);
        // Keep writing: a live server socket takes the bytes; a closed one answers RST.
        const poke = setInterval(() => void (c.gone() || c.socket.write('x')), 50);
        await waitFor(c.gone, 3_000, `the server to close after ${path}`).finally(() => clearInterval(poke));
      }
      expect(server.pendingHandshakes).toBe(0);
      server.drain();
      const c = await halfOpen(server);
      cleanup.add(() => void c.socket.destroy());
      if (proxied) c.socket.write(v2Header({ src: '127.0.0.92' }));
      c.socket.write(UPGRADE('/mcp', 'pqmcp'));
      await waitFor(() => /^HTTP\/1\.1 503 /.test(c.answer()), 5_000, 'the 503 answer');
      const poke = setInterval(() => void (c.gone() || c.socket.write('x')), 50);
      await waitFor(c.gone, 3_000, 'the server to close after draining').finally(() => clearInterval(poke));
    });
  }
});
