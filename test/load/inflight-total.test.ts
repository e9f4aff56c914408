/**
 * The listener-wide bound on request bytes in flight (decision 8, part 2; request-budget.ts;
 * docs/threat-model.md): sessions of one or more agents whose tool calls wait fill the
 * listener's maxRequestBytesInFlightTotal; past it the heavy sessions are refused (-32005)
 * while a new session's request, and a session under its fair share, still get through; the
 * shared total returns to 0 when the calls are answered and the sessions close. Real
 * sockets on 127.0.0.1, the real MCP SDK server; bounded in count and time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { JsonRpcMessage } from '../../src/transport/index.js';
import type { PqmcpError } from '../../src/errors.js';
import { Cleanup, startServer, waitFor } from '../helpers/mcp.js';
import { rawInitializedSession } from '../helpers/raw-session.js';
import type { RawSession } from '../helpers/raw-session.js';

const MiB = 1024 * 1024;
const BIG = 'x'.repeat(MiB);
const LIMIT = 6 * MiB;

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const call = (id: number, blob = BIG): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'hold', arguments: { blob } } });
const ping = (id: number): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'ping' });
const answerTo = (s: RawSession, id: number): JsonRpcMessage | undefined => s.answers.find((a) => a.id === id);

describe('maxRequestBytesInFlightTotal: one bound over all sessions of a listener, with a fair share', () => {
  it('sessions of two agents fill the total: past it the heavy sessions are refused, a new session and one under its share get through, and the total returns to 0 on answers and closes', { timeout: 60_000 }, async () => {
    // Handlers that wait, per session, as slow tools do (and ignore their abort signal).
    const gates = new Map<string, Array<() => void>>();
    const waiting = (s: RawSession): number => gates.get(s.transport.sessionId!)?.length ?? 0;
    const server = await startServer(
      cleanup,
      () => {
        const mcp = new McpServer({ name: 'hold', version: '1' });
        mcp.registerTool('hold', { inputSchema: { blob: z.string() } }, async (_args, extra) => {
          const list = gates.get(extra.sessionId!) ?? [];
          gates.set(extra.sessionId!, list);
          return new Promise((resolve) => list.push(() => resolve({ content: [] })));
        });
        return mcp;
      },
      { maxRequestBytesInFlightTotal: LIMIT },
    );
    const errors: string[] = [];
    server.on('session', (t) => {
      t.onerror = (e) => void errors.push((e as PqmcpError).message);
    });
    const a1 = await rawInitializedSession(server.url, cleanup, 0, 'agent://pqmcp-test/alice');
    const a2 = await rawInitializedSession(server.url, cleanup, 0, 'agent://pqmcp-test/alice');
    const bob = await rawInitializedSession(server.url, cleanup, 0, 'agent://pqmcp-test/bob');

    // Each call is 1 MiB plus its envelope. a1's 4 fit under the 6 MiB total (its own bound is
    // the default 16 MiB); a2's first takes the total to 5 MiB, its second goes past 6 MiB
    // but stays within its share (6 MiB / 2 sessions holding), its third would not.
    for (let id = 1; id <= 4; id++) await a1.transport.send(call(id));
    await waitFor(() => waiting(a1) === 4, 20_000, "a1's four calls running");
    for (let id = 1; id <= 4; id++) await a2.transport.send(call(id));
    await waitFor(() => waiting(a2) + a2.answers.length === 4, 20_000, "a2's calls running or refused");
    // Before: nothing bounded the sessions together, a2's 4 calls all ran.
    expect(waiting(a2)).toBe(2);
    expect(a2.answers.map((a) => [a.id, a.error?.code, a.error?.data])).toEqual([
      [3, -32005, { totalLimitBytes: LIMIT, shareBytes: LIMIT / 2 }],
      [4, -32005, { totalLimitBytes: LIMIT, shareBytes: LIMIT / 2 }],
    ]);
    const sixCalls = server.requestBytesInFlight;
    expect(sixCalls).toBeGreaterThan(LIMIT);
    expect(sixCalls).toBeLessThan(LIMIT + MiB);

    // a1 holds past its share: even a ping is refused. bob (new, holding nothing) gets a
    // 1 MiB call and a ping within his share (6 MiB / 3), a1 still nothing.
    await a1.transport.send(ping(5));
    await bob.transport.send(call(1));
    await waitFor(() => waiting(bob) === 1, 20_000, "bob's call running");
    await bob.transport.send(ping(2));
    await a1.transport.send(ping(6));
    await waitFor(() => answerTo(bob, 2) !== undefined && answerTo(a1, 6) !== undefined, 20_000, 'the pings answered');
    expect(answerTo(bob, 2)).toMatchObject({ result: {} });
    for (const id of [5, 6]) expect(answerTo(a1, id)).toMatchObject({ error: { code: -32005, data: { totalLimitBytes: LIMIT, shareBytes: id === 5 ? LIMIT / 2 : LIMIT / 3 } } });
    expect(errors.filter((e) => e.includes('maxRequestBytesInFlightTotal'))).toHaveLength(4);
    expect(server.requestBytesInFlight).toBeGreaterThan(sixCalls + MiB);

    // Answers free the shared total: a1's calls answered, its ping passes again.
    for (const open of gates.get(a1.transport.sessionId!)!.splice(0)) open();
    await waitFor(() => [1, 2, 3, 4].every((id) => answerTo(a1, id)?.result !== undefined), 20_000, "a1's answers");
    await a1.transport.send(ping(7));
    await waitFor(() => answerTo(a1, 7) !== undefined, 20_000, "a1's ping");
    expect(answerTo(a1, 7)).toMatchObject({ result: {} });
    // bob cancels his call (its handler runs on: still charged), then leaves; a2 leaves with
    // its calls unanswered: the sessions' ends free everything they held.
    await bob.transport.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, reason: 'test' } });
    await bob.transport.send(ping(3));
    await waitFor(() => answerTo(bob, 3) !== undefined, 20_000, "bob's ping after the cancel");
    // a2's two calls and bob's cancelled one (the six calls are the same size).
    expect(server.requestBytesInFlight).toBe(sixCalls / 2);
    await bob.transport.close();
    await a2.transport.close();
    await waitFor(() => server.sessions.size === 1, 20_000, 'the two sessions closed on the server');
    expect(server.requestBytesInFlight).toBe(0);
    for (const list of gates.values()) for (const open of list.splice(0)) open();
  });
});
