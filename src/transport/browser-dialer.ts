/**
 * The dialer for runtimes with a standard `WebSocket` (browsers, Deno, Bun, workers): the
 * client's socket is `new WebSocket(url, 'pqmcp.v1')` with binary frames as ArrayBuffers.
 *
 * Sharp edges:
 * - Browsers cannot send pings, pause reading or bound an incoming message's size: the
 *   MessageSocket has no ping/pause/resume, so the client's own keepalive is off (the
 *   server's pings are answered by the browser) and the record layer's limits
 *   (`maxMessageSize`, record sizes) are what bound memory.
 * - `send`'s completion runs once the browser has queued the bytes; `bufferedAmount` is the
 *   browser's own, so backpressure still works.
 * - Headers and socket options cannot be set from a page (the browser sends its own Origin
 *   and cookies); both are ignored here.
 * - Browsers report a failed connection only as an 'error' event with no reason (by design,
 *   so a page cannot probe the network): the error says so.
 */
import { ClosedError, ConnectionError } from '../errors.js';
import type { Connection, MessageSocket } from './connection.js';
import type { Dialer, DialRequest, Dialing, OpenedSocket } from './dialer.js';

/** The part of the standard WebSocket API used here. */
interface StandardWebSocket {
  binaryType: string;
  readonly protocol: string;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

type WebSocketConstructor = new (url: string, protocols: string | string[]) => StandardWebSocket;

/** A dialer over the runtime's global `WebSocket` (or the constructor given). */
export function standardDialer(WebSocketImpl?: WebSocketConstructor): Dialer {
  return (request: DialRequest): Dialing => {
    const Impl = WebSocketImpl ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (Impl === undefined) {
      return { opened: Promise.reject(new ConnectionError('this runtime has no WebSocket')), abort: () => undefined };
    }
    let aborted = false;
    let attached = false;
    const ws = new Impl(request.url.href, request.protocol);
    ws.binaryType = 'arraybuffer';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const opened = new Promise<OpenedSocket>((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(timer);
        ws.onopen = ws.onerror = ws.onclose = null;
      };
      timer = setTimeout(() => {
        settle();
        ws.close();
        reject(new ConnectionError(`cannot connect to ${request.url.origin}: no answer within ${request.openTimeoutMs} ms`));
      }, request.openTimeoutMs);
      ws.onopen = () => {
        settle();
        if (aborted) {
          ws.close();
          reject(new ClosedError('closed while connecting'));
        } else if (ws.protocol !== request.protocol) {
          ws.close();
          reject(new ConnectionError(`server did not accept the ${request.protocol} subprotocol`));
        } else {
          resolve({
            socket: messageSocket(ws, request),
            raw: ws,
            attach: (connection) => {
              attached = true;
              attach(ws, connection, request);
            },
          });
        }
      };
      ws.onerror = () => {
        settle();
        ws.close();
        reject(aborted ? new ClosedError('closed while connecting') : new ConnectionError(`cannot connect to ${request.url.origin} (the browser does not say why)`));
      };
      ws.onclose = () => {
        settle();
        reject(new ClosedError('closed while connecting'));
      };
    });
    return {
      opened,
      abort: () => {
        if (aborted || attached) return;
        aborted = true;
        ws.close();
      },
    };
  };
}

function messageSocket(ws: StandardWebSocket, request: DialRequest): MessageSocket {
  return {
    send: (data, done) => {
      try {
        if (request.traffic) request.traffic.bytesOut += data.length;
        ws.send(data);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    close: (code, reason) => {
      try {
        ws.close(code, reason);
      } catch {
        ws.close(); // a code or reason the browser refuses: close plainly
      }
    },
    terminate: () => ws.close(),
  };
}

function attach(ws: StandardWebSocket, connection: Connection, request: DialRequest): void {
  ws.onmessage = (ev) => {
    const isBinary = ev.data instanceof ArrayBuffer;
    const bytes = isBinary ? new Uint8Array(ev.data as ArrayBuffer) : new TextEncoder().encode(String(ev.data));
    if (request.traffic) request.traffic.bytesIn += bytes.length;
    connection.receive(bytes, isBinary);
  };
  ws.onerror = () => connection.socketError(new ConnectionError('WebSocket error'));
  ws.onclose = (ev) => connection.socketClosed(ev.code);
}
