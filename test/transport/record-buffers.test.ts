/**
 * RecordBuffers (src/transport/record-buffers.ts): large records are sealed into reused
 * buffers, given back only whole, once, and never handed out twice; and over a real `ws`
 * socket a stream of large messages arrives intact while the writer reuses its buffers.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { BUFFER_SIZE, IDLE_MS, MAX_FREE, POOLED_RECORD, RecordBuffers, recordBuffers } from '../../src/transport/record-buffers.js';
import { Connection } from '../../src/transport/connection.js';
import { attachWebSocket, wsMessageSocket } from '../../src/transport/ws-socket.js';
import { localIdentity } from '../../src/transport/options.js';
import { Session } from '../../src/session/session.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import type { ConnectionOptions } from '../../src/transport/connection.js';
import { agent, trustFor } from '../helpers/identities.js';
import { PqmcpError } from '../../src/errors.js';
import { waitFor } from '../helpers/mcp.js';

describe('RecordBuffers', () => {
  afterEach(() => vi.useRealTimers());

  it('serves only large records, as views of one buffer size', () => {
    const pool = new RecordBuffers();
    expect(pool.take(POOLED_RECORD - 1)).toBeUndefined();
    expect(pool.take(BUFFER_SIZE + 1)).toBeUndefined();
    const a = pool.take(POOLED_RECORD)!;
    const b = pool.take(BUFFER_SIZE)!;
    expect([a.length, b.length]).toEqual([POOLED_RECORD, BUFFER_SIZE]);
    expect([a.byteOffset, a.buffer.byteLength, b.buffer.byteLength]).toEqual([0, BUFFER_SIZE, BUFFER_SIZE]);
    expect(a.buffer).not.toBe(b.buffer);
  });

  it('reuses a buffer only once it is given back whole, and only once', () => {
    const pool = new RecordBuffers();
    const a = pool.take(40_000)!;
    // Parts of it (socket messages cut from it), a copy, a second release: all ignored.
    pool.release(a.subarray(0, 20_000));
    pool.release(a.subarray(1));
    pool.release(new Uint8Array(a));
    pool.release(new Uint8Array(BUFFER_SIZE));
    expect(pool.freeCount).toBe(0);
    const inUse = pool.take(40_000)!;
    expect(inUse.buffer).not.toBe(a.buffer); // a is still in use
    pool.release(a);
    pool.release(a);
    expect(pool.freeCount).toBe(1);
    const again = pool.take(50_000)!;
    expect(again.buffer).toBe(a.buffer);
    const fresh = pool.take(50_000)!; // the one free buffer is in use: not handed out twice
    expect(fresh.buffer).not.toBe(a.buffer);
    expect(fresh.buffer).not.toBe(inUse.buffer);
    // A release with the length of the record the buffer carried before is ignored too.
    pool.release(new Uint8Array(again.buffer, 0, 40_000));
    expect(pool.freeCount).toBe(0);
  });

  it('keeps at most MAX_FREE buffers, and none once nothing was taken for IDLE_MS', () => {
    vi.useFakeTimers();
    const pool = new RecordBuffers();
    const taken = Array.from({ length: MAX_FREE + 5 }, () => pool.take(BUFFER_SIZE)!);
    for (const t of taken) pool.release(t);
    expect(pool.freeCount).toBe(MAX_FREE);
    vi.advanceTimersByTime(IDLE_MS); // something was taken during this interval: kept
    expect(pool.freeCount).toBe(MAX_FREE);
    pool.release(pool.take(BUFFER_SIZE)!);
    vi.advanceTimersByTime(IDLE_MS);
    expect(pool.freeCount).toBe(MAX_FREE);
    vi.advanceTimersByTime(IDLE_MS); // a whole interval without a take(): dropped
    expect(pool.freeCount).toBe(0);
  });
});

describe('large records over a real ws socket', () => {
  const backend = createNativeBackend();
  const options: ConnectionOptions = { handshakeTimeoutMs: 10_000, keepAliveMs: 0, keepAliveTimeoutMs: 1_000, highWaterMark: 1 << 20, closeTimeoutMs: 1_000, maxWriteBatch: 256 * 1024, deliveryWaitsForDrain: false };

  it('only a socket that releasesOnDone gets its records from the shared buffers', () => {
    const session = () => Session.client({ backend, identity: localIdentity(agent('agent://pqmcp-test/client')), trust: trustFor() });
    const pipe = { send: () => {}, bufferedAmount: 0, close: () => {}, terminate: () => {} }; // hands `data` itself on, say
    const plain = new Connection(pipe, session(), options);
    expect(plain.session.recordBuffers).toBeUndefined();
    const ws = new Connection({ ...pipe, releasesOnDone: true }, session(), options);
    expect(ws.session.recordBuffers).toBe(recordBuffers);
    for (const c of [plain, ws]) c.abort(new PqmcpError('ERR_CLOSED', 'test over'));
  });

  it('streams distinct 64 KiB and 200 KiB messages intact both ways while the writers reuse record buffers, with writes queued behind a paused reader', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const serverSide = new Promise<Connection>((resolve) =>
      wss.once('connection', (ws) => {
        const c = new Connection(wsMessageSocket(ws), Session.server({ backend, identity: localIdentity(agent('agent://pqmcp-test/server')), trust: trustFor() }), options);
        attachWebSocket(ws, c);
        resolve(c);
      }),
    );
    const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { perMessageDeflate: false });
    await new Promise<void>((r) => ws.once('open', () => r()));
    const client = new Connection(wsMessageSocket(ws), Session.client({ backend, identity: localIdentity(agent('agent://pqmcp-test/client')), trust: trustFor() }), options);
    attachWebSocket(ws, client);
    const server = await serverSide;
    const opened = new Promise<void>((r) => (client.onhandshake = () => r()));
    client.start();
    await opened;
    // Every message differs from the one before in every record, so a buffer reused too early shows.
    const message = (i: number, n: number) => Uint8Array.from({ length: n }, (_, k) => (k * 7 + i * 13) & 0xff);
    const sizes = Array.from({ length: 90 }, (_, i) => (i % 3 === 2 ? 200 * 1024 : 64 * 1024));
    // Compared as they arrive (Buffer.equals: toEqual on 200 KiB arrays is slow), by index.
    const expected = sizes.map((n, i) => Buffer.from(message(i, n)));
    const atServer: boolean[] = [];
    const atClient: boolean[] = [];
    server.onmessage = (d) => void atServer.push(expected[atServer.length]!.equals(d));
    client.onmessage = (d) => void atClient.push(expected[atClient.length]!.equals(d));
    let reused = 0;
    const take = recordBuffers.take.bind(recordBuffers);
    const spy = vi.spyOn(recordBuffers, 'take').mockImplementation((n) => {
      const free = recordBuffers.freeCount;
      const out = take(n);
      if (out && recordBuffers.freeCount < free) reused++;
      return out;
    });
    try {
      // The client stops reading until the server's writes queue up behind a full socket:
      // those records sit in libuv's queue, so a buffer reused before its write callback
      // would go out changed (and fail the client's tag check).
      client.pause();
      const sending = Promise.all(sizes.map((n, i) => server.send(message(i, n))));
      await waitFor(() => (server as unknown as { socket: { bufferedAmount: number } }).socket.bufferedAmount > 1 << 20, 10_000, 'writes queued behind the socket');
      client.resume();
      await Promise.all([sending, (async () => {
        for (const [i, n] of sizes.entries()) await client.send(message(i, n));
      })()]);
      await waitFor(() => atServer.length === sizes.length && atClient.length === sizes.length, 20_000, `all messages (${atServer.length}, ${atClient.length}; errors ${String(server.error)} ${String(client.error)})`);
    } finally {
      spy.mockRestore();
    }
    expect(atServer).toEqual(sizes.map(() => true));
    expect(atClient).toEqual(sizes.map(() => true));
    expect(reused).toBeGreaterThan(sizes.length); // of 300 large records sealed
    await client.close();
    await server.closed;
    wss.close();
  });
});
