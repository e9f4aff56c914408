/**
 * Review 3 of the proxyProtocol front (proxy-front.ts): a connection it evicts (HTTP 503)
 * ends within a bounded time and does not come back, neither by trickling bytes (an idle
 * timeout alone is reset by every byte) nor by its PROXY header arriving after the
 * eviction; and the bytes after a header reach the HTTP parser exactly once, however the
 * header and what follows are split across reads.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { PqmcpError } from '../../src/errors.js';
import { SUBPROTOCOL } from '../../src/transport/index.js';
import type { PqmcpServer, PqmcpServerOptions } from '../../src/transport/index.js';
import { Cleanup, startFeatureServer, waitFor } from '../helpers/mcp.js';
import { v1Header, v2Header } from '../helpers/proxy-header.js';

/** A raw TCP connection that keeps its sending side open after the server's FIN, as an attacker's would. */
async function raw(server: PqmcpServer): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port: server.address().port, allowHalfOpen: true });
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  return s;
}

const isClosed = (s: Socket) => {
  const state = { closed: false, data: '' };
  s.on('data', (d: Buffer) => void (state.data += d.toString('latin1')));
  s.once('close', () => void (state.closed = true));
  return state;
};

describe('proxyProtocol: evicted connections (review 3)', { timeout: 30_000 }, () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());

  async function start(options: Partial<PqmcpServerOptions>): Promise<{ server: PqmcpServer; errors: PqmcpError[] }> {
    const { server } = await startFeatureServer(cleanup, { backend: 'native', proxyProtocol: true, trustedProxies: ['127.0.0.1'], ...options });
    const errors: PqmcpError[] = [];
    server.on('clientError', (error) => void errors.push(error));
    return { server, errors };
  }

  it('evicted after its header, a connection trickling an HTTP request a byte at a time is still cut within a bounded time', async () => {
    const { server, errors } = await start({ maxPendingPerSource: 1, firstFlightTimeoutMs: 500 });
    const first = await raw(server);
    const state = isClosed(first);
    first.write(v2Header({ src: '127.0.0.70' }));
    first.write('GET / HTTP/1.1\r\nX-Slow: ');
    await waitFor(() => server.pendingHandshakes === 1, 5_000, 'the first slot');
    const second = await raw(server);
    cleanup.add(() => void second.destroy());
    second.write(v2Header({ src: '127.0.0.70' }));
    await waitFor(() => errors.length === 1, 5_000, 'the eviction');
    expect(errors[0]!.code).toBe('ERR_SERVER_BUSY');
    // Trickle a header byte every 300 ms for 4 s: well past the 1 s grace and the 500 ms deadline.
    const trickle = setInterval(() => void (first.destroyed || first.write('a')), 300);
    cleanup.add(() => clearInterval(trickle));
    await waitFor(() => state.closed, 4_000, 'the evicted connection to be cut').finally(() => clearInterval(trickle));
    expect(state.data).toMatch(/^HTTP\/1\.1 503 /);
    first.destroy();
  });

  it('evicted before its header, a connection whose header arrives afterwards takes no slot and evicts nobody', async () => {
    const { server, errors } = await start({ maxPendingHandshakes: 2, proxyHeaderTimeoutMs: 10_000 });
    const sockets: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await raw(server);
      cleanup.add(() => void s.destroy());
      s.write(v2Header({ src: `127.0.0.${71 + i}` }).subarray(0, 10));
      sockets.push(s);
      await waitFor(() => server.pendingHandshakes === Math.min(i + 1, 2), 5_000, `slot ${i}`);
    }
    await waitFor(() => errors.length === 1, 5_000, 'the first evicted');
    // The evicted one's header completes now.
    sockets[0]!.write(v2Header({ src: '127.0.0.71' }).subarray(10));
    sockets[0]!.write('GET / HTTP/1.1\r\n');
    await new Promise((r) => setTimeout(r, 300));
    expect(errors.map((e) => e.code)).toEqual(['ERR_SERVER_BUSY']);
    expect(server.pendingHandshakes).toBe(2);
  });

  it('the bytes after the header reach the HTTP server exactly once, the header split anywhere', async () => {
    // (A plain request gets one 426 and the connection is closed since 2026-12-06: no
    // keep-alive on a pqmcp listener, so pipelining three is no longer the probe. An upgrade
    // request is: a byte lost leaves it unanswered, a byte doubled turns into a 400, or after
    // the 101 into a WebSocket frame the server refuses and reports.)
    const { server, errors } = await start({ firstFlightTimeoutMs: 10_000 });
    const upgrade =
      'GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`;
    const plain = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
    const cases: [Buffer, number[]][] = [
      [v2Header({ src: '127.0.0.80' }), [0, 1, 27, 28, 29]],
      [v1Header('127.0.0.81', '127.0.0.1'), [0, 5, 38, 39, 40, 50]],
    ];
    for (const [header, splits] of cases) {
      for (const split of splits) {
        for (const [request, status] of [[upgrade, '101'], [plain, '426']] as const) {
          const all = Buffer.concat([header, Buffer.from(request)]);
          const s = await raw(server);
          let got = '';
          s.on('data', (d: Buffer) => void (got += d.toString('latin1')));
          if (split === 0) s.write(all);
          else {
            s.write(all.subarray(0, split));
            await new Promise((r) => setTimeout(r, 30));
            s.write(all.subarray(split));
          }
          await waitFor(() => got.includes(`HTTP/1.1 ${status} `), 5_000, `the ${status} (split at ${split})`);
          await new Promise((r) => setTimeout(r, 50));
          expect((got.match(/HTTP\/1\.1 /g) ?? []).length, `split at ${split}`).toBe(1);
          expect(errors, `split at ${split}`).toEqual([]);
          s.destroy();
          // The WebSocket cut before its ClientHello is reported (truncated): not what we look for.
          if (status === '101') await waitFor(() => errors.length === 1, 5_000, 'the cut WebSocket').then(() => void errors.pop());
        }
      }
    }
    await waitFor(() => server.pendingHandshakes === 0, 5_000, 'no slot left');
  });
});
