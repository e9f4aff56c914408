/**
 * The Node dialer: the client's WebSocket is a `ws` client socket.
 *
 * Sharp edges:
 * - An 'error' listener is installed before anything else and stays for the socket's life:
 *   an unhandled 'error' event would crash Node.
 * - Compression is always off and maxPayload always set, whatever `socketOptions` say.
 * - An upgrade answered HTTP 429 or 503 fails with ServerBusyError (the client may retry).
 */
import { WebSocket } from 'ws';
import type { ClientOptions } from 'ws';
import { ClosedError, ConnectionError, ServerBusyError } from '../errors.js';
import type { Dialer, DialRequest, Dialing, OpenedSocket } from './dialer.js';
import { attachWebSocket, wsMessageSocket } from './ws-socket.js';

const noop = (): void => {};

export const wsDialer: Dialer = (request: DialRequest): Dialing => {
  let aborted = false;
  let attached = false;
  const ws = new WebSocket(request.url, request.protocol, {
    handshakeTimeout: request.openTimeoutMs,
    ...(request.socketOptions as ClientOptions | undefined),
    ...(request.headers !== undefined ? { headers: request.headers } : {}),
    perMessageDeflate: false,
    maxPayload: request.maxPayload,
  });
  ws.on('error', noop);
  const opened = new Promise<OpenedSocket>((resolve, reject) => {
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
      reject(new ConnectionError(`cannot connect to ${request.url.origin}: ${err.message}`, { cause: err }));
    };
    const onClose = (): void => {
      cleanup();
      reject(new ClosedError('closed while connecting'));
    };
    const cleanup = (): void => {
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
