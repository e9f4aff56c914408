/**
 * Review2 F4c: records the server read but holds (its KeyUpdate ration is spent, so the
 * Session is stalled and reading paused) are not lost when the peer's socket closes
 * meanwhile. Before, the close ended the session at once: the held messages and the peer's
 * close_notify were discarded and the close read as truncation. Now what was read before the
 * close drains at the ration's pace (backlog.ts), then the connection ends: every message is
 * delivered and the close is clean. Real listener (native backend, SDK server) on
 * 127.0.0.1 and a byte-level attacker on a real WebSocket that resets its TCP connection.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { concat } from '../../src/bytes.js';
import { Alert, TruncationError } from '../../src/errors.js';
import { MAX_KEY_UPDATES_IN_A_ROW, type Session } from '../../src/session/session.js';
import { AFTER_CLOSE_DRAIN_MS } from '../../src/transport/backlog.js';
import type { PqmcpServerTransport } from '../../src/transport/server-transport.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { HostileClient } from '../adversarial/socket-harness.js';
import { INITIALIZE, INITIALIZED, attackerAs, honestServer, jsonrpc } from '../adversarial/socket-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const sessionOf = (t: PqmcpServerTransport): Session => (t as unknown as { connection: { session: Session } }).connection.session;

/** A byte-level attacker with a completed handshake and an answered initialize, and the server's side of its session. */
async function opened(log: Awaited<ReturnType<typeof honestServer>>): Promise<{ h: HostileClient; transport: PqmcpServerTransport }> {
  const h = await HostileClient.connect(log.url, attackerAs(), {}, cleanup);
  await h.handshake;
  await h.write(h.attacker.sendApplication(INITIALIZE));
  await waitFor(() => h.attacker.messages.length === 1, 10_000, 'initialize response');
  await waitFor(() => log.sessions.length === 1, 5_000, 'the session');
  return { h, transport: log.sessions[0]! };
}

/** The methods the server delivers to its MCP server from now on, in order. */
function methodsSeen(transport: PqmcpServerTransport): string[] {
  const seen: string[] = [];
  const deliver = transport.onmessage!;
  transport.onmessage = (m, extra) => {
    seen.push((m as { method?: string }).method ?? '?');
    deliver.call(transport, m, extra);
  };
  return seen;
}

describe('the peer closes its socket while the server holds records behind the KeyUpdate ration', () => {
  it('every message read before the close is delivered, at the ration\'s pace, and the close_notify among them makes it a clean close', { timeout: 30_000 }, async () => {
    const log = await honestServer(cleanup, { keyUpdateRate: 20 }); // burst 32, then one every 50 ms
    const { h, transport } = await opened(log);
    const session = sessionOf(transport);
    const seen = methodsSeen(transport);
    await h.write(h.attacker.sendApplication(INITIALIZED));
    await waitFor(() => seen.length === 1, 5_000, 'initialized');
    seen.length = 0;

    // 62 KeyUpdates (two runs of 31, each followed by a notification: never 33 in a row),
    // then five notifications and close_notify: all in one WebSocket message.
    const note = (name: string) => h.attacker.sendApplication(jsonrpc({ method: `notifications/pqmcp-test/${name}` }));
    const run = (name: string) => [...Array.from({ length: MAX_KEY_UPDATES_IN_A_ROW - 1 }, () => h.attacker.sendKeyUpdate(false)).flat(), ...note(name)];
    const after = ['a1', 'a2', 'a3', 'a4', 'a5'];
    await h.write([concat(...run('storm1'), ...run('storm2'), ...after.flatMap((n) => note(n)), ...h.attacker.sendAlert(Alert.closeNotify))]);

    // The burst of 32 is spent: the server holds the rest, unread. Now the TCP connection goes.
    await waitFor(() => session.keyUpdates >= 32 && session.stalled, 10_000, 'the server stalled by the ration');
    expect(session.keyUpdates).toBeLessThan(62);
    h.tcp.resetAndDestroy();

    await waitFor(() => log.transportEvents.includes('close'), 15_000, 'the server transport closed');
    expect(session.keyUpdates).toBe(62);
    expect(seen).toEqual(['notifications/pqmcp-test/storm1', 'notifications/pqmcp-test/storm2', ...after.map((n) => `notifications/pqmcp-test/${n}`)]);
    expect(log.transportErrors.filter((e) => e instanceof TruncationError)).toEqual([]);
    expect(log.transportEvents).toEqual(['close']);
    expect(session.state).toBe('closed');
  });

  it('the same for records held by the per-turn message cap: 5000 notifications and close_notify in one read, then a reset', { timeout: 30_000 }, async () => {
    const log = await honestServer(cleanup);
    const { h, transport } = await opened(log);
    let seen = 0;
    const deliver = transport.onmessage!;
    transport.onmessage = (m, extra) => {
      // The first of them is delivered from the server's first read: reset the connection now,
      // while 1024 a turn (MAX_MESSAGES_PER_TURN) leaves most of them held.
      if (seen++ === 0) h.tcp.resetAndDestroy();
      deliver.call(transport, m, extra);
    };
    const total = 5000;
    // Each notification its own record (the attacker seals one per call), all in one WebSocket message.
    const records = [...Array.from({ length: total }, () => h.attacker.sendApplication(jsonrpc({ method: 'notifications/pqmcp-test/n' }))).flat(), ...h.attacker.sendAlert(Alert.closeNotify)];
    await h.write([concat(...records)]);
    await waitFor(() => log.transportEvents.includes('close'), 15_000, 'the server transport closed');
    expect(seen).toBe(total);
    expect(log.transportErrors).toEqual([]);
    expect(log.transportEvents).toEqual(['close']);
  });

  it('without a close_notify, what was held is still delivered and the end reads as truncation', { timeout: 30_000 }, async () => {
    const log = await honestServer(cleanup, { keyUpdateRate: 20 });
    const { h, transport } = await opened(log);
    const session = sessionOf(transport);
    const seen = methodsSeen(transport);
    await h.write(h.attacker.sendApplication(INITIALIZED));
    await waitFor(() => seen.length === 1, 5_000, 'initialized');
    seen.length = 0;
    const note = (name: string) => h.attacker.sendApplication(jsonrpc({ method: `notifications/pqmcp-test/${name}` }));
    const run = (name: string) => [...Array.from({ length: MAX_KEY_UPDATES_IN_A_ROW - 1 }, () => h.attacker.sendKeyUpdate(false)).flat(), ...note(name)];
    await h.write([concat(...run('s1'), ...run('s2'), ...note('last'))]);
    await waitFor(() => session.keyUpdates >= 32 && session.stalled, 10_000, 'the server stalled by the ration');
    h.tcp.resetAndDestroy();
    await waitFor(() => log.transportEvents.includes('close'), 15_000, 'the server transport closed');
    expect(seen).toEqual(['notifications/pqmcp-test/s1', 'notifications/pqmcp-test/s2', 'notifications/pqmcp-test/last']);
    expect(log.transportErrors).toHaveLength(1);
    expect(log.transportErrors[0]).toBeInstanceOf(TruncationError);
    expect(log.transportEvents).toEqual(['error', 'close']);
  });

  it(`bounded in time: what cannot drain within AFTER_CLOSE_DRAIN_MS of the close is dropped, the end reads as truncation, and the connection is gone (review 3)`, { timeout: 40_000 }, async () => {
    // One KeyUpdate a second, one at a time: the 61 held would take a minute to drain.
    const log = await honestServer(cleanup, { keyUpdateRate: { rate: 1, burst: 1 } });
    const { h, transport } = await opened(log);
    const session = sessionOf(transport);
    const seen = methodsSeen(transport);
    const note = (name: string) => h.attacker.sendApplication(jsonrpc({ method: `notifications/pqmcp-test/${name}` }));
    await h.write([concat(...Array.from({ length: 31 }, () => h.attacker.sendKeyUpdate(false)).flat(), ...note('never'), ...h.attacker.sendAlert(Alert.closeNotify))]);
    await waitFor(() => session.stalled, 10_000, 'the server stalled by the ration');
    h.tcp.resetAndDestroy();
    await waitFor(() => log.transportEvents.includes('close'), AFTER_CLOSE_DRAIN_MS + 10_000, 'the server transport closed');
    // Ended by the deadline, not by draining: most KeyUpdates, the message and the close_notify were dropped.
    expect(session.keyUpdates).toBeLessThan(31);
    expect(seen).toEqual([]);
    expect(log.transportErrors.map((e) => e.constructor)).toEqual([TruncationError]);
    expect(session.state).toBe('failed');
  });
});
