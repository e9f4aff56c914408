/**
 * The HTTP error answers a listener writes on a raw socket instead of (or before) a
 * WebSocket upgrade: a refused upgrade (server.ts), a source past its connection rate
 * (refusals.ts), a connection evicted before its request (pre-upgrade.ts). One format:
 *
 *   HTTP/1.1 <status> <reason>\r\n
 *   Connection: close\r\n
 *   Content-Type: text/plain; charset=utf-8\r\n
 *   Retry-After: <seconds>\r\n            (only when given)
 *   <name>: <value>\r\n                   (any headers given: ours, constant)
 *   Content-Length: <bytes of body>\r\n
 *   \r\n
 *   <message>\n
 *
 * Sharp edges:
 * - The message is the whole body, one line; it must not hold CR or LF (it is ours, never
 *   a peer's). Content-Length counts its UTF-8 bytes, not its characters.
 * - `answerAndClose` destroys the socket once the answer is written ('finish'), whatever
 *   the peer does: past 'upgrade' (or before any request) Node's HTTP server no longer
 *   times such a socket out, so a half-close alone would let a peer that never closes its
 *   side keep it for ever. A caller that must give the peer time to read before the close
 *   (pre-upgrade.ts, while the HTTP server may still be parsing) writes `httpAnswer` itself.
 * - On a socket already destroyed, `answerAndClose` does nothing.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** The whole answer: status line, headers and one-line body (the connection closes after it). */
export function httpAnswer(status: number, message: string, retryAfterSeconds?: number, headers: Record<string, string> = {}): string {
  const body = `${message}\n`;
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    'Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
    (retryAfterSeconds !== undefined ? `Retry-After: ${retryAfterSeconds}\r\n` : '') +
    Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('') +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** Write `answer` (from `httpAnswer`), end the socket, and destroy it once written. */
export function answerAndClose(socket: Duplex, answer: string): void {
  if (socket.destroyed) return;
  socket.once('finish', () => socket.destroy());
  socket.end(answer);
}

/**
 * A raw socket's error listener (`socket.on('error', destroySocket)`): a function of the
 * module, not a closure, so it allocates nothing per connection and keeps nothing of the
 * upgrade (the request, its headers) reachable while a session lives.
 */
export function destroySocket(this: Duplex): void {
  this.destroy();
}
