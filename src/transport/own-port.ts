/**
 * A listener's own port (listen() without `server`): a TCP front listens on host:port and
 * hands the connections the edge admits to an HTTP server of ours, which never listens
 * itself and answers anything but a WebSocket upgrade with 426. The PqmcpServer then
 * takes the upgrades from that HTTP server as it would from a caller's.
 *
 * Sharp edges:
 * - A connection refused at its accept (acceptRatePerSource) is answered and closed by the
 *   edge without ever reaching HTTP, so an accept flood costs no HTTP parser. With
 *   `proxyProtocol` the front reads the PROXY header first (proxy-front.ts).
 * - Every other connection holds an admission slot until its upgrade request
 *   (pre-upgrade.ts), so the 426 answer says Connection: close (no keep-alive to wait in).
 * - The front reads each connection's first request head itself (first-request.ts): only
 *   an upgrade request reaches the HTTP server, alone, and anything else is answered there
 *   (426, 431, 400), so pipelined plain requests cost no HTTP parsing (review 21, R21-1).
 *   The HTTP server's own 426 answer below is left for a head Node reads otherwise.
 * - The front's sockets get http.Server's own net options (HTTP_SOCKET_OPTIONS).
 * - A failed listen closes the edge and rejects with ConnectionError naming host:port.
 */
import { createServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { ConnectionError } from '../errors.js';
import type { Edge } from './edge.js';
import type { Report } from './pre-upgrade.js';
import { NOT_WEBSOCKET_MESSAGE, readFirstRequest } from './first-request.js';

/**
 * The TCP front of an own-port listener accepts its sockets as Node's HTTP server would
 * (http.Server's own net options): half-open allowed (the HTTP server handles the peer's
 * end), Nagle off.
 */
const HTTP_SOCKET_OPTIONS = { allowHalfOpen: true, noDelay: true } as const;

/** Listen on host:port: the TCP front (`listener`) and the HTTP server it feeds (`httpServer`). */
export async function listenOwnPort(edge: Edge, host: string, port: number, report: Report): Promise<{ httpServer: HttpServer; listener: NetServer }> {
  const own = createServer((req, res) => {
    // Evicted before this request (answered 503 and ending): nothing more to say.
    if (!req.socket.writable) return void req.socket.destroy();
    // Connection: close: a connection is accounted until its upgrade request or its close
    // (pre-upgrade.ts), so it gets no keep-alive to wait in.
    res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'close' });
    res.end(`${NOT_WEBSOCKET_MESSAGE}\n`);
  });
  // A TCP front listens; `own` (the HTTP server) only gets the connections the edge admits,
  // each holding an admission slot until its upgrade request (edge.ts). One refused at its
  // accept (accept rate) is answered and closed without ever reaching HTTP, so an accept
  // flood costs no HTTP parser. With proxyProtocol the front reads the PROXY header first.
  // The HTTP server gets only a connection whose first request is an upgrade, and that
  // request alone (first-request.ts): its parser never meets a pipeline of plain requests.
  const handOver = (socket: Socket): void => readFirstRequest(socket, (s) => own.emit('connection', s));
  const front: NetServer = edge.proxied
    ? createNetServer((socket) => edge.acceptProxied(socket, handOver, report))
    : createNetServer(HTTP_SOCKET_OPTIONS, (socket) => {
        if (edge.acceptDirect(socket, report)) handOver(socket);
      });
  await new Promise<void>((resolve, rejectListen) => {
    const onError = (err: Error): void => {
      void edge.close();
      rejectListen(new ConnectionError(`cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    };
    front.once('error', onError);
    front.listen(port, host, () => {
      front.off('error', onError);
      resolve();
    });
  });
  return { httpServer: own, listener: front };
}
