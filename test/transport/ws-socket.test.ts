/**
 * src/transport/ws-socket.ts: ws ends its Receiver (a Writable) when the socket ends and
 * again when it closes, and ends a socket whose own end was sent already; each such end()
 * made Node build an ERR_STREAM_ALREADY_FINISHED it dropped (a stack trace, a flood's every
 * connection). Real listener, real ws peers on 127.0.0.1; Node's end() is watched for calls
 * on a Receiver or socket that has already ended (the raw peers' own, plain ws, not counted).
 */
import { Socket } from 'node:net';
import { Duplex, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { SUBPROTOCOL } from '../../src/transport/index.js';
import { Cleanup, connectClient, startFeatureServer } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Calls of Writable.prototype.end on a ws Receiver: all, and those on one already ending (a dropped error). */
const rawPeers = new WeakSet<object>();
/**
 * Calls of Node's Writable end() on ws's Receivers (Writable.prototype.end) and on sockets
 * (Duplex.prototype.end, which net.Socket's end calls): all, and those on one already
 * ending (Node builds an error there and drops it).
 */
function watchEnds(): { all: number; wasted: number } {
  const counts = { all: 0, wasted: 0 };
  for (const proto of [Writable.prototype, Duplex.prototype]) {
    const end = proto.end;
    proto.end = function (this: Writable, ...args: unknown[]) {
      if (!rawPeers.has(this) && (this.constructor.name === 'Receiver' || this instanceof Socket)) {
        counts.all++;
        if (this.writableEnded || this.destroyed) counts.wasted++;
      }
      return (end as (...a: unknown[]) => Writable).apply(this, args);
    } as typeof end;
    cleanup.add(() => void (proto.end = end));
  }
  return counts;
}

async function rawPeer(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, [SUBPROTOCOL]);
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      // The test's own peer is plain ws, not ours: not counted.
      const { _receiver, _socket } = ws as unknown as { _receiver: object; _socket: object };
      rawPeers.add(_receiver).add(_socket);
      resolve();
    });
    ws.once('close', () => reject(new Error('closed before open')));
  });
  return ws;
}

describe('ws-socket: the Receiver and the socket are ended once', () => {
  it('peers that close, terminate, time out or finish a session: no end() on an ended Receiver or socket, server or client side', async () => {
    const { server } = await startFeatureServer(cleanup, { firstFlightTimeoutMs: 500 });
    server.on('clientError', () => {});
    const counts = watchEnds();
    for (const how of ['close', 'terminate', 'timeout'] as const) {
      const ws = await rawPeer(server.url);
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      if (how === 'close') ws.close(1000);
      else if (how === 'terminate') ws.terminate();
      await closed;
    }
    // A full session (the client transport attaches its WebSocket the same way), closed by the client.
    const { client } = await connectClient(cleanup, server.url);
    await client.close();
    // The server's side of the last closes settles after the client's.
    await new Promise((r) => setTimeout(r, 200));
    // Each of the five WebSockets of ours (four on the server, the client transport's) ended its Receiver, and sockets were ended.
    expect(counts.all).toBeGreaterThanOrEqual(6);
    expect(counts.wasted).toBe(0);
  });
});
