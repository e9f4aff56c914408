/**
 * The listener's HTTP error answers (http-answer.ts), read by Node's own HTTP client over a
 * real socket on 127.0.0.1: status, headers and body parse as the listener means them,
 * Content-Length counts bytes, and answerAndClose closes the connection once written even
 * when the peer keeps its side open.
 */
import { get } from 'node:http';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { answerAndClose, httpAnswer } from '../../src/transport/http-answer.js';

let listener: Server | undefined;
afterEach(() => listener?.close());

/** A TCP listener that hands each accepted socket to `onSocket`; its port. */
async function listen(onSocket: (socket: Socket) => void): Promise<number> {
  listener = createServer(onSocket);
  await new Promise<void>((r) => listener!.listen(0, '127.0.0.1', r));
  return (listener.address() as AddressInfo).port;
}

/** GET / with Node's HTTP client: status, headers and body as it parsed them. */
function fetchAnswer(port: number): Promise<{ status: number | undefined; reason: string | undefined; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, reason: res.statusMessage, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

describe('httpAnswer / answerAndClose', () => {
  it('writes the status line, the headers and a one-line body that an HTTP client parses as meant', async () => {
    const port = await listen((s) => answerAndClose(s, httpAnswer(429, 'too many, slow down', 7)));
    const got = await fetchAnswer(port);
    expect(got).toMatchObject({ status: 429, reason: 'Too Many Requests', body: 'too many, slow down\n' });
    expect(got.headers).toMatchObject({ connection: 'close', 'content-type': 'text/plain; charset=utf-8', 'retry-after': '7', 'content-length': String('too many, slow down\n'.length) });
  });

  it('has no Retry-After unless given; Content-Length counts UTF-8 bytes, not characters', async () => {
    const text = httpAnswer(404, 'no endpoint at /é');
    expect(text).not.toContain('Retry-After');
    expect(text.startsWith('HTTP/1.1 404 Not Found\r\nConnection: close\r\n')).toBe(true);
    // 'no endpoint at /é\n': 18 characters, 19 bytes.
    expect(text).toContain('Content-Length: 19\r\n\r\n');
    const port = await listen((s) => answerAndClose(s, text));
    const got = await fetchAnswer(port);
    expect(got).toMatchObject({ status: 404, body: 'no endpoint at /é\n' });
    expect(got.headers['retry-after']).toBeUndefined();
  });

  it('closes the connection once written, though the peer never closes its side', async () => {
    let server: Socket | undefined;
    const port = await listen((s) => {
      server = s;
      answerAndClose(s, httpAnswer(503, 'busy', 1));
    });
    const client = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let text = '';
    client.on('data', (d: Buffer) => (text += d.toString('latin1')));
    // allowHalfOpen: the client keeps its side open after the server's FIN.
    await new Promise<void>((r) => client.once('end', () => r()));
    expect(text).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n[^]*Retry-After: 1\r\n[^]*\r\n\r\nbusy\n$/);
    await new Promise<void>((r) => (server!.destroyed ? r() : server!.once('close', () => r())));
    expect(server!.destroyed).toBe(true);
    client.destroy();
  });

  it('does nothing on a socket already destroyed', async () => {
    let server: Socket | undefined;
    const port = await listen((s) => (server = s));
    const client = connect({ host: '127.0.0.1', port });
    client.on('error', () => {});
    let text = '';
    client.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    await new Promise<void>((r) => client.once('connect', () => r()));
    while (server === undefined) await new Promise((r) => setTimeout(r, 5));
    server.destroy();
    answerAndClose(server, httpAnswer(400, 'bad'));
    await closed;
    expect(text).toBe('');
    expect(server.listenerCount('finish')).toBe(0);
  });
});
