/**
 * The Node dialer: the client's WebSocket is a `ws` client socket.
 *
 * Sharp edges:
 * - An 'error' listener is installed before anything else and stays for the socket's life:
 *   an unhandled 'error' event would crash Node.
 * - Compression is always off and maxPayload always set, whatever `socketOptions` say.
 * - An upgrade answered HTTP 429 or 503 fails with ServerBusyError (the client may retry).
 * - The upgrade must be answered within `openTimeoutMs` (or `socketOptions.handshakeTimeout`)
 *   counted from the dial, a deadline of its own: `ws`'s handshakeTimeout is the socket's
 *   idle timeout, which a server (or anyone on the path) writing its answer (or its TLS
 *   handshake) a byte at a time restarts with every byte (review 16, R16-1).
 * - Other failures are a ConnectionError naming the URL without its user info or query, and
 *   what the usual mistakes mean (a wrong path's 404, a non-WebSocket server, TLS to ws).
 */
import { WebSocket } from 'ws';
import type { ClientOptions } from 'ws';
import { ClosedError, ConnectionError, ServerBusyError } from '../errors.js';
import { shownUrl, type Dialer, type DialRequest, type Dialing, type OpenedSocket } from './dialer.js';
import { attachWebSocket, wsMessageSocket } from './ws-socket.js';
import { MAX_TIMER_MS } from './timers.js';

const noop = (): void => {};

/** What a failed dial means, for the mistakes that cause it: a wrong path, a wrong server, TLS to a plain listener. */
function describeDialError(err: Error & { code?: string }, status: string | undefined): string {
  if (status === '404') return 'the server answered the WebSocket upgrade with HTTP 404: nothing listens at this path (check it against the listener\'s path, pqmcp serve --path)';
  if (status === '400') return 'the server answered the WebSocket upgrade with HTTP 400 (is it a pqmcp listener? a pqmcp upgrade must offer the pqmcp.v1 subprotocol)';
  if (status !== undefined) return `the server answered the WebSocket upgrade with HTTP ${status}: not a WebSocket endpoint (is this the pqmcp listener's address?)`;
  if (err.code === 'EPROTO' && /wrong version number|packet length too long|http request/i.test(err.message)) {
    return 'TLS handshake failed: the server does not speak TLS here (a pqmcp listener of its own is plain ws://; pqmcp encrypts inside the WebSocket)';
  }
  return err.message;
}

export const wsDialer: Dialer = (request: DialRequest): Dialing => {
  let aborted = false;
  let attached = false;
  const asked = (request.socketOptions as { handshakeTimeout?: unknown } | undefined)?.handshakeTimeout;
  // At most a timer's largest delay: Node runs a longer one after 1 ms (timers.ts).
  const deadlineMs = typeof asked === 'number' && asked > 0 ? Math.min(asked, MAX_TIMER_MS) : request.openTimeoutMs;
  const ws = new WebSocket(request.url, request.protocol, {
    handshakeTimeout: request.openTimeoutMs,
    ...(request.socketOptions as ClientOptions | undefined),
    ...(request.headers !== undefined ? { headers: request.headers } : {}),
    perMessageDeflate: false,
    maxPayload: request.maxPayload,
  });
  ws.on('error', noop);
  const opened = new Promise<OpenedSocket>((resolve, reject) => {
    // Whatever bytes arrive meanwhile: not an idle timer (the sharp edge above).
    const deadline = setTimeout(() => {
      cleanup();
      ws.terminate();
      reject(aborted ? new ClosedError('closed while connecting') : new ConnectionError(`cannot connect to ${shownUrl(request.url)}: the WebSocket upgrade did not complete within ${deadlineMs} ms`));
    }, deadlineMs);
    const onOpen = (): void => {
      cleanup();
      if (aborted) {
        ws.terminate();
        reject(new ClosedError('closed while connecting'));
      } else if (ws.protocol !== request.protocol) {
        ws.terminate();
        reject(new ConnectionError(`server did not accept the ${request.protocol} subprotocol`));
      } else {
        resolve({
          socket: wsMessageSocket(ws, request.traffic),
          raw: ws,
          attach: (connection) => {
            attached = true;
            attachWebSocket(ws, connection, request.traffic);
          },
        });
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      ws.terminate();
      if (aborted) return reject(new ClosedError('closed while connecting'));
      // A listener past its per-address connection rate (429) or draining (503): busy.
      const status = /^Unexpected server response: (\d+)$/.exec(err.message)?.[1];
      if (status === '429' || status === '503') return reject(new ServerBusyError(`server busy: it answered the upgrade with HTTP ${status}, try again later`));
      reject(new ConnectionError(`cannot connect to ${shownUrl(request.url)}: ${describeDialError(err, status)}`, { cause: err }));
    };
    const onClose = (): void => {
      cleanup();
      reject(new ClosedError('closed while connecting'));
    };
    const cleanup = (): void => {
      clearTimeout(deadline);
      ws.off('open', onOpen);
      ws.off('error', onError);
      ws.off('close', onClose);
    };
    ws.on('open', onOpen);
    ws.on('error', onError);
    ws.on('close', onClose);
  });
  return {
    opened,
    abort: () => {
      if (aborted || attached) return;
      aborted = true;
      ws.terminate();
    },
  };
};
