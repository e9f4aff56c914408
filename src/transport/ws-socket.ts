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

/** The part of a Node Writable's state `endQuietly` reads. */
interface EndState {
  ending: boolean;
  errored: unknown;
  corked: number;
}
type Endable = { _writableState?: EndState; end?: unknown };

/**
 * `end()` of a Node Writable without the error it builds for nothing. ws ends its Receiver
 * (a Writable) when the socket ends and again when it closes, and ends the socket when its
 * peer's end arrives after its own; on a Writable already ending, Node's `end()` builds an
 * ERR_STREAM_ALREADY_FINISHED (or ERR_STREAM_DESTROYED), stack trace and all, and drops it
 * when no callback was passed: about 10 µs of the event loop each, a flood's every
 * connection (docs/benchmarks.md, "Floods", eleventh session). Only that case returns
 * early (no arguments, nothing corked: then Node's `end()` does nothing else); any other
 * call is the prototype's own `end()`.
 */
function endQuietly(this: { _writableState: EndState }, ...args: unknown[]): unknown {
  const state = this._writableState;
  if (args.length === 0 && state.corked === 0 && (state.ending || state.errored)) return this;
  return (Object.getPrototypeOf(this) as { end: (...a: unknown[]) => unknown }).end.apply(this, args);
}

/** ws's private Receiver and socket (ws 8): left alone if a version names or builds them otherwise. */
function quietEnds(ws: WebSocket): void {
  const { _receiver, _socket } = ws as unknown as { _receiver?: Endable; _socket?: Endable };
  for (const w of [_receiver, _socket]) if (w?._writableState && typeof w.end === 'function' && !Object.hasOwn(w, 'end')) w.end = endQuietly;
}

/** Route the socket's events into `connection`. */
export function attachWebSocket(ws: WebSocket, connection: Connection, traffic?: Traffic): void {
  quietEnds(ws);
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
