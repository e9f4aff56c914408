/**
 * The edge's refusals a listener reports on 'clientError' are classes the package exports
 * (docs/api.md, "Errors"): each is produced here by a real refusal over real sockets on
 * 127.0.0.x and checked with `instanceof` against the class imported from the package's
 * entry (src/index.ts), with the code and base class docs/api.md gives it.
 *
 * - AcceptRateError: a second raw TCP connect past an accept rate of 1 a second (burst 1).
 * - UpgradeTimeoutError: a TCP connection that sends no upgrade request within firstFlightTimeoutMs.
 * - FirstFlightTimeoutError: a WebSocket that sends no ClientHello within firstFlightTimeoutMs.
 */
import { connect, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { AcceptRateError, FirstFlightTimeoutError, HandshakeTimeoutError, ServerBusyError, SUBPROTOCOL, UpgradeTimeoutError } from '../../src/index.js';
import type { PqmcpServer } from '../../src/index.js';
import type { Edge } from '../../src/transport/edge.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { startWatched } from '../helpers/watched-server.js';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

async function raw(server: PqmcpServer, localAddress: string): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port: server.address().port, localAddress });
  s.on('error', () => {});
  cleanup.add(() => s.destroy());
  await new Promise<void>((r) => s.once('connect', () => r()));
  return s;
}

describe("the edge's refusals are exported from the package entry", { timeout: 20_000 }, () => {
  it('AcceptRateError: a TCP connection past acceptRatePerSource (ERR_SERVER_BUSY)', async () => {
    const p = await startWatched(cleanup, { acceptRatePerSource: 1, firstFlightTimeoutMs: 10_000 });
    // The rate on a clock the test holds (the edge's internal seam): the token never comes back.
    (p.server as unknown as { edge: Edge }).edge.testRateClock = () => 0;
    await raw(p.server, '127.0.0.161');
    await raw(p.server, '127.0.0.161');
    await waitFor(() => p.errors.length === 1, 5_000, 'one report');
    const { error, remoteAddress } = p.errors[0]!;
    expect(remoteAddress).toBe('127.0.0.161');
    expect(error).toBeInstanceOf(AcceptRateError);
    expect(error).toBeInstanceOf(ServerBusyError);
    expect(error.code).toBe('ERR_SERVER_BUSY');
    expect(error.message).toContain('acceptRatePerSource');
  });

  it('UpgradeTimeoutError: a TCP connection without an upgrade request in time (ERR_HANDSHAKE_TIMEOUT)', async () => {
    const p = await startWatched(cleanup, { firstFlightTimeoutMs: 300 });
    await raw(p.server, '127.0.0.162');
    await waitFor(() => p.errors.length === 1, 5_000, 'one report');
    const { error } = p.errors[0]!;
    expect(error).toBeInstanceOf(UpgradeTimeoutError);
    expect(error).toBeInstanceOf(HandshakeTimeoutError);
    expect(error).not.toBeInstanceOf(FirstFlightTimeoutError);
    expect(error.code).toBe('ERR_HANDSHAKE_TIMEOUT');
  });

  it('FirstFlightTimeoutError: a WebSocket that sends no ClientHello in time (ERR_HANDSHAKE_TIMEOUT)', async () => {
    const p = await startWatched(cleanup, { firstFlightTimeoutMs: 300 });
    const ws = new WebSocket(p.server.url, SUBPROTOCOL, { localAddress: '127.0.0.163' });
    ws.on('error', () => {});
    cleanup.add(() => ws.terminate());
    await new Promise<void>((r) => ws.once('open', () => r()));
    await waitFor(() => p.errors.length === 1, 5_000, 'one report');
    const { error } = p.errors[0]!;
    expect(error).toBeInstanceOf(FirstFlightTimeoutError);
    expect(error).toBeInstanceOf(HandshakeTimeoutError);
    expect(error).not.toBeInstanceOf(UpgradeTimeoutError);
    expect(error.code).toBe('ERR_HANDSHAKE_TIMEOUT');
    expect(error.message).toBe('no complete ClientHello within 300 ms');
  });
});
