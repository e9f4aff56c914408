/**
 * Adapter from a `ws` WebSocket to the MessageSocket a Connection drives, and the wiring of
 * its events. Type-only import of `ws`: no runtime dependency here.
 *
 * Sharp edges:
 * - An 'error' listener is always installed (an unhandled 'error' event would crash Node).
 * - Messages arrive as Buffers (ws's default binaryType); fragmented or ArrayBuffer forms
 *   are normalised to one Uint8Array.
 */
import type { RawData, WebSocket } from 'ws';
import type { Connection, MessageSocket } from './connection.js';

/** WebSocket payload bytes each way (for audit events). */
export interface Traffic {
  bytesIn: number;
  bytesOut: number;
}

/** Options of every send (ws copies them). */
const BINARY = { binary: true, compress: false } as const;

/**
 * The MessageSocket of `ws`: a class, so that the listener builds one object per connection
 * (its methods on the prototype) rather than seven closures (eighth session of issue 10:
 * every unauthenticated connection a flood opens builds one).
 */
class WsMessageSocket implements MessageSocket {
  constructor(
    private readonly ws: WebSocket,
    private readonly traffic: Traffic | undefined,
  ) {}

  /** ws calls `done` once the socket wrote the frame (or, masking, after copying it). */
  readonly releasesOnDone = true;

  send(data: Uint8Array, done: (err?: Error) => void): void {
    if (this.traffic) this.traffic.bytesOut += data.length;
    this.ws.send(data, BINARY, done);
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  ping(): void {
    this.ws.ping();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }
}

export function wsMessageSocket(ws: WebSocket, traffic?: Traffic): MessageSocket {
  return new WsMessageSocket(ws, traffic);
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/** Route the socket's events into `connection`. */
export function attachWebSocket(ws: WebSocket, connection: Connection, traffic?: Traffic): void {
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const bytes = toBytes(data);
    if (traffic) traffic.bytesIn += bytes.length;
    connection.receive(bytes, isBinary);
  });
  ws.on('pong', () => connection.heard('pong'));
  ws.on('ping', () => connection.heard('ping'));
  ws.on('error', (err: Error) => connection.socketError(err));
  ws.on('close', (code: number) => connection.socketClosed(code));
}
