/**
 * The first request of a connection on a listener's own port, read by the TCP front before
 * Node's HTTP server sees a byte of it (review 21, R21-1): only a WebSocket upgrade request
 * is handed to the HTTP server; anything else is answered here and closed.
 *
 *   readFirstRequest(socket, (s) => httpServer.emit('connection', s));
 *
 * Why: Node's HTTP parser handles a whole read synchronously, every pipelined request in it
 * (a request and a response object each, and the 'request' handler), before a
 * `Connection: close` answer ends the connection: 64 KiB of `GET / HTTP/1.1\r\nHost: x\r\n\r\n`
 * cost ~75 ms of event loop on one connection, past every admission limit (they act per
 * connection). Read here, that connection costs one scan of at most 16 KiB.
 *
 * Sharp edges:
 * - An upgrade is what Node's parser takes for one: a `GET ... HTTP/1.1` request line, an
 *   `Upgrade` header and `upgrade` among the `Connection` tokens (isUpgradeHead). Only the
 *   head is handed over (pushed back, unshift): a WebSocket client sends nothing more before
 *   the server's 101 (RFC 6455 4.1), so bytes after the head in what was read are answered
 *   400 and closed, and the HTTP server parses one request at most.
 * - Anything else: a head that is not an upgrade is answered 426 (`Upgrade: websocket`),
 *   a head past 16 KiB (Node's default header limit) 431, bytes that cannot begin a request
 *   (no method: a TLS ClientHello, say) 400 at once, all closed once written
 *   (answerAndClose). Nothing of the peer's bytes is echoed.
 * - Found incrementally: each read is searched for the blank line with the 3 bytes before
 *   it, and the head is joined once, so a head trickled a byte at a time costs no quadratic
 *   copying. Time is bounded by the connection's pre-upgrade deadline (pre-upgrade.ts),
 *   which destroys it; a connection evicted meanwhile (its 503 written: not writable) is
 *   never read again.
 * - Until the hand-over a socket error destroys the socket (the HTTP server's own handler
 *   is not attached yet), and a socket not handed over keeps that listener until it is
 *   destroyed: answered, evicted or timed out, a reset on it is no unhandled 'error' (which
 *   ended the process, review 22, R22-1). A peer that ends its side before a whole head is
 *   destroyed.
 */
import type { Socket } from 'node:net';
import { SUBPROTOCOL } from './options.js';
import { answerAndClose, destroySocket, httpAnswer } from './http-answer.js';

/** The longest request head read (Node's default --max-http-header-size). */
export const MAX_HEAD_BYTES = 16 * 1024;

const BLANK_LINE = Buffer.from('\r\n\r\n');
/** What a request that is not an upgrade is told (here, or by the HTTP server behind: own-port.ts). */
export const NOT_WEBSOCKET_MESSAGE = `pqmcp endpoint: connect with a WebSocket (subprotocol ${SUBPROTOCOL})`;
const NOT_WEBSOCKET = httpAnswer(426, NOT_WEBSOCKET_MESSAGE, undefined, { Upgrade: 'websocket' });
const TOO_LARGE = httpAnswer(431, 'request head too large');
const EARLY_BYTES = httpAnswer(400, 'bytes after the upgrade request before its answer');
const NOT_HTTP = httpAnswer(400, 'not an HTTP request');
/** The longest method read before its space (HTTP's are at most 13 letters). */
const MAX_METHOD = 20;

/**
 * Whether the first bytes of a connection cannot begin an HTTP request (a method, upper-case
 * letters, then a space): a TLS ClientHello to this plain listener, say. Answered at once, as
 * Node's parser would (the TLS client then reports that the server does not speak TLS),
 * rather than waited on for a blank line that never comes.
 */
export function notHttpStart(start: Buffer): boolean {
  for (let i = 0; i < start.length && i <= MAX_METHOD; i++) {
    const b = start[i]!;
    if (b === 0x20) return i === 0;
    if (b < 0x41 || b > 0x5a) return true;
  }
  return start.length > MAX_METHOD;
}

/** A request head (through its blank line) that Node's HTTP parser takes for an upgrade. */
export function isUpgradeHead(head: Buffer): boolean {
  const lines = head.toString('latin1').split('\r\n');
  if (!/^GET [!-~]+ HTTP\/1\.1$/.test(lines[0]!)) return false;
  let upgrade = false;
  let connection = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).toLowerCase();
    if (name === 'upgrade') upgrade ||= line.slice(colon + 1).trim() !== '';
    else if (name === 'connection') connection ||= line.slice(colon + 1).split(',').some((token) => token.trim().toLowerCase() === 'upgrade');
  }
  return upgrade && connection;
}

/** Read `socket`'s first request head; hand the socket over (head pushed back) if it is an upgrade. */
export function readFirstRequest(socket: Socket, handOver: (socket: Socket) => void): void {
  const chunks: Buffer[] = [];
  let length = 0;
  /** The last 3 bytes read (fewer at first): where a blank line may have begun. */
  let tail: Buffer = Buffer.alloc(0);
  /** The first bytes, until the method's space has been seen (then undefined). */
  let start: Buffer | undefined = Buffer.alloc(0);
  // The error listener stays until the hand-over (the HTTP server then has its own): a
  // socket answered here, or evicted (its 503 written), lives on until its answer is written
  // or its linger ends, and a reset meanwhile must not be an unhandled 'error' that ends
  // the process (review 22, R22-1).
  const stop = (): void => {
    socket.off('readable', onReadable);
    socket.off('end', onEnd);
  };
  const onEnd = (): void => {
    stop();
    socket.destroy();
  };
  const onReadable = (): void => {
    for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) {
      // Evicted (its 503 written) or closed meanwhile: never read again.
      if (socket.writableEnded || socket.destroyed) return stop();
      if (start !== undefined) {
        start = Buffer.concat([start, chunk.subarray(0, MAX_METHOD + 1)]).subarray(0, MAX_METHOD + 1);
        if (notHttpStart(start)) {
          stop();
          answerAndClose(socket, NOT_HTTP);
          return;
        }
        if (start.includes(0x20)) start = undefined;
      }
      // The blank line may straddle earlier reads: search from the 3 bytes before this one.
      const back = tail.length;
      const window = back === 0 ? chunk : Buffer.concat([tail, chunk]);
      const found = window.indexOf(BLANK_LINE);
      tail = window.subarray(-3);
      chunks.push(chunk);
      length += chunk.length;
      if (found === -1) {
        if (length > MAX_HEAD_BYTES) {
          stop();
          answerAndClose(socket, TOO_LARGE);
          return;
        }
        continue;
      }
      stop();
      const headLength = length - chunk.length - back + found + BLANK_LINE.length;
      const received = chunks.length === 1 ? chunk : Buffer.concat(chunks, length);
      if (headLength > MAX_HEAD_BYTES) return answerAndClose(socket, TOO_LARGE);
      const head = received.subarray(0, headLength);
      if (!isUpgradeHead(head)) return answerAndClose(socket, NOT_WEBSOCKET);
      if (received.length > headLength) return answerAndClose(socket, EARLY_BYTES);
      socket.off('error', destroySocket);
      socket.unshift(head);
      handOver(socket);
      return;
    }
  };
  socket.on('error', destroySocket);
  socket.on('end', onEnd);
  socket.on('readable', onReadable);
}
