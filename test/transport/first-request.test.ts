/**
 * The first request of an own-port connection is read by the TCP front (first-request.ts,
 * review 21): only an upgrade request reaches Node's HTTP server, alone. Raw sockets on
 * 127.0.0.x against a real listener, directly and behind a PROXY protocol front.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_HEAD_BYTES, isUpgradeHead, notHttpStart } from '../../src/transport/first-request.js';
import { SUBPROTOCOL } from '../../src/transport/options.js';
import type { PqmcpServer } from '../../src/transport/index.js';
import { Cleanup, connectClient, waitFor } from '../helpers/mcp.js';
import { startWatched } from '../helpers/watched-server.js';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
const UPGRADE = `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`;

/** Send `pieces` (each its own write, a turn of the event loop apart) and collect the answer until the server closes (or `until` holds). */
async function exchange(server: PqmcpServer, localAddress: string, pieces: (string | Buffer)[], until?: (answer: string) => boolean): Promise<string> {
  const socket: Socket = connect({ host: '127.0.0.1', port: server.address().port, localAddress });
  socket.on('error', () => {});
  const got: Buffer[] = [];
  const text = () => Buffer.concat(got).toString('latin1');
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (d: Buffer) => got.push(d));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  for (const piece of pieces) {
    socket.write(piece);
    await new Promise((r) => setImmediate(r));
  }
  if (until) {
    await waitFor(() => until(text()), 5_000, 'the answer');
    socket.destroy();
  }
  await closed;
  return text();
}

/** Node's HTTP server's 'request' events while `run` runs (its parser's requests). */
async function requestsDuring(server: PqmcpServer, run: () => Promise<void>): Promise<number> {
  let requests = 0;
  const count = (): void => void requests++;
  server.httpServer.on('request', count);
  try {
    await run();
  } finally {
    server.httpServer.off('request', count);
  }
  return requests;
}

const statuses = (answer: string): string[] => [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]!);

describe('the first request, read by the TCP front (review 21, R21-1)', () => {
  it('64 KiB of pipelined plain requests on one connection: one 426, and the HTTP server parses none of them (before: ~2,400 requests)', async () => {
    const { server } = await startWatched(cleanup);
    const pipeline = GET.repeat(Math.floor(65_536 / GET.length));
    let answer = '';
    const requests = await requestsDuring(server, async () => void (answer = await exchange(server, '127.0.0.171', [pipeline])));
    expect(statuses(answer)).toEqual(['426']);
    expect(answer).toMatch(/\r\nUpgrade: websocket\r\n/);
    expect(requests).toBe(0);
  });

  it('the same behind a PROXY protocol front: the header is read, then the first request', async () => {
    const { server } = await startWatched(cleanup, { proxyProtocol: true, trustedProxies: ['127.0.0.172'] });
    const pipeline = GET.repeat(Math.floor(65_536 / GET.length));
    let answer = '';
    const requests = await requestsDuring(server, async () => void (answer = await exchange(server, '127.0.0.172', [`PROXY TCP4 203.0.113.9 127.0.0.1 1000 443\r\n${pipeline}`])));
    expect(statuses(answer)).toEqual(['426']);
    expect(requests).toBe(0);
  });

  it('a plain request and an upgrade pipelined in one write: one 426 and the close, no 101 (review 21, R21-4)', async () => {
    const { server } = await startWatched(cleanup);
    const answer = await exchange(server, '127.0.0.173', [GET + UPGRADE]);
    expect(statuses(answer)).toEqual(['426']);
    expect(server.pendingHandshakes).toBe(0);
  });

  it('bytes after an upgrade request, before its answer (no WebSocket client sends them): 400 and the close', async () => {
    const { server } = await startWatched(cleanup);
    let answer = '';
    const requests = await requestsDuring(server, async () => void (answer = await exchange(server, '127.0.0.174', [UPGRADE + GET.repeat(100)])));
    expect(statuses(answer)).toEqual(['400']);
    expect(requests).toBe(0);
  });

  it(`a head past ${MAX_HEAD_BYTES} bytes without its blank line: 431 from the front (its own words) and the close, read no further`, async () => {
    const { server } = await startWatched(cleanup);
    let answer = '';
    const requests = await requestsDuring(server, async () => void (answer = await exchange(server, '127.0.0.175', [`GET / HTTP/1.1\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}`])));
    expect(statuses(answer)).toEqual(['431']);
    expect(answer).toMatch(/\r\n\r\nrequest head too large\n$/);
    expect(requests).toBe(0);
  });

  it('a connection reset after it was evicted (its 503 written) or answered is no unhandled error: the listener lives on (review 22, R22-1)', async () => {
    const { server } = await startWatched(cleanup, { maxPendingPerSource: 8 });
    const open = (): Promise<Socket> =>
      new Promise((resolve) => {
        const s = connect({ host: '127.0.0.1', port: server.address().port, localAddress: '127.0.0.177', allowHalfOpen: true });
        s.on('error', () => {});
        s.once('connect', () => resolve(s));
      });
    const evicted = await open();
    const busy = new Promise<string>((resolve) => evicted.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
    const others = [];
    for (let i = 0; i < 8; i++) others.push(await open());
    expect(statuses(await busy)).toEqual(['503']);
    // A byte read after the eviction, then a reset: before, the front had dropped its error listener.
    evicted.write('G');
    await new Promise((r) => setTimeout(r, 100));
    evicted.resetAndDestroy();
    // And resets racing the front's own answers (426, 431).
    const racing = [];
    for (let i = 0; i < 20; i++) {
      const s = await open();
      s.write(i % 2 === 0 ? GET : `GET / HTTP/1.1\r\nX: ${'a'.repeat(MAX_HEAD_BYTES + 10)}`);
      racing.push(new Promise<void>((resolve) => setImmediate(() => resolve(void s.resetAndDestroy()))));
    }
    await Promise.all(racing);
    await new Promise((r) => setTimeout(r, 300));
    for (const s of others) s.destroy();
    const { client } = await connectClient(cleanup, server.url);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  });

  it('an upgrade request trickled in pieces (its blank line split across writes) is upgraded, and a real client connects as before', async () => {
    const { server } = await startWatched(cleanup);
    const bytes = Buffer.from(UPGRADE);
    const pieces = [bytes.subarray(0, 20), ...Array.from(bytes.subarray(20)).map((b) => Buffer.of(b))];
    const answer = await exchange(server, '127.0.0.176', pieces, (a) => a.includes('\r\n\r\n'));
    expect(statuses(answer)).toEqual(['101']);
    const { client } = await connectClient(cleanup, server.url);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  });
});

describe('notHttpStart: bytes that cannot begin a request are answered at once', () => {
  it.each([
    ['a method and its space', 'GET ', false],
    ['a method still arriving', 'GE', false],
    ['nothing yet', '', false],
    ['a TLS ClientHello', '\x16\x03\x01\x02\x00', true],
    ['lower case', 'get / HTTP/1.1', true],
    ['a space first', ' GET', true],
    ['no space within 20 letters', 'A'.repeat(21), true],
  ])('%s', (_name, text, expected) => {
    expect(notHttpStart(Buffer.from(text, 'latin1'))).toBe(expected);
  });
});

describe('isUpgradeHead: what Node takes for an upgrade', () => {
  const head = (lines: string[]) => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`);
  it.each([
    ['the usual', ['GET / HTTP/1.1', 'Upgrade: websocket', 'Connection: Upgrade'], true],
    ['Connection tokens, any case', ['GET /mcp?x=1 HTTP/1.1', 'upgrade: websocket', 'connection: keep-alive, UPGRADE'], true],
    ['no Connection: upgrade', ['GET / HTTP/1.1', 'Upgrade: websocket', 'Connection: keep-alive'], false],
    ['no Upgrade', ['GET / HTTP/1.1', 'Connection: Upgrade'], false],
    ['an empty Upgrade', ['GET / HTTP/1.1', 'Upgrade: ', 'Connection: Upgrade'], false],
    ['POST', ['POST / HTTP/1.1', 'Upgrade: websocket', 'Connection: Upgrade'], false],
    ['HTTP/1.0', ['GET / HTTP/1.0', 'Upgrade: websocket', 'Connection: Upgrade'], false],
    ['a token that only contains it', ['GET / HTTP/1.1', 'Upgrade: websocket', 'Connection: upgraded'], false],
  ])('%s', (_name, lines, expected) => {
    expect(isUpgradeHead(head(lines))).toBe(expected);
  });
});
