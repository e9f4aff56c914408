/**
 * The listener-wide bound on request bytes in flight (decision 8, part 2; request-budget.ts;
 * docs/threat-model.md): sessions of one or more agents whose tool calls wait fill the
 * listener's maxRequestBytesInFlightTotal; past it the heavy sessions are refused (-32005)
 * while a new session's request, and a session under its fair share, still get through; the
 * shared total returns to 0 when the calls are answered and the sessions close. Then the same
 * through `pqmcp serve --max-request-bytes-in-flight-total`. Real sockets on 127.0.0.1, the
 * real MCP SDK server; bounded in count and time.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import type { JsonRpcMessage } from '../../src/transport/index.js';
import type { PqmcpError } from '../../src/errors.js';
import { loadOwnIdentity } from '../../src/cli/files.js';
import { loadTrustStore } from '../../src/identity/files.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { Cleanup, startServer, waitFor } from '../helpers/mcp.js';
import { rawInitializedSession } from '../helpers/raw-session.js';
import type { RawSession } from '../helpers/raw-session.js';
import { LINE_SERVER, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from '../cli/helpers.js';
import type { Files } from '../cli/helpers.js';

const MiB = 1024 * 1024;
const BIG = 'x'.repeat(MiB);
const LIMIT = 6 * MiB;

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const call = (id: number, blob = BIG): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'hold', arguments: { blob } } });
const ping = (id: number): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'ping' });
const answerTo = (s: RawSession, id: number): JsonRpcMessage | undefined => s.answers.find((a) => a.id === id);
/** The listener's refusal as the peer sees it: no figures (R11-6: limit / share is how many sessions hold requests). */
const LISTENER_REFUSAL = { code: -32005, message: 'pqmcp: too many request bytes in flight on this server (over all sessions); retry once earlier requests have been answered', data: { scope: 'listener' } };
/** The session's share an operator's error names (its even part of its agent's: R11-7). */
const shareOf = (message: string): number => Number(/its share, (\d+) bytes/.exec(message)?.[1]);
/** Its agent's share. */
const agentShareOf = (message: string): number => Number(/of its agent's (\d+) /.exec(message)?.[1]);

/**
 * A real SDK server on a listener with the 6 MiB total whose `hold` tool waits, per session,
 * as slow tools do (and ignores its abort signal); the sessions' errors (onerror) collected.
 */
async function holdingServer() {
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
  return { gates, waiting, server, errors };
}

describe('maxRequestBytesInFlightTotal: one bound over all sessions of a listener, with a fair share', () => {
  it('sessions of two agents fill the total: past it the heavy agent\'s sessions are refused, a new agent\'s session gets through, and the total returns to 0 on answers and closes', { timeout: 60_000 }, async () => {
    const { gates, waiting, server, errors } = await holdingServer();
    const a1 = await rawInitializedSession(server.url, cleanup, 0, 'agent://pqmcp-test/alice');
    const a2 = await rawInitializedSession(server.url, cleanup, 0, 'agent://pqmcp-test/alice');
    const bob = await rawInitializedSession(server.url, cleanup, 0, 'agent://pqmcp-test/bob');

    // Each call is 1 MiB plus its envelope. a1's 4 fit under the 6 MiB total (its own bound is
    // the default 16 MiB), and so does a2's first; its second goes past 6 MiB, and past alice's
    // share, all of it while she is the one agent holding (R11-7: the share is per agent; the
    // code before ran it, within a2's per-session share of 6 MiB / 2 sessions).
    for (let id = 1; id <= 4; id++) await a1.transport.send(call(id));
    await waitFor(() => waiting(a1) === 4, 20_000, "a1's four calls running");
    for (let id = 1; id <= 4; id++) await a2.transport.send(call(id));
    await waitFor(() => waiting(a2) + a2.answers.length === 4, 20_000, "a2's calls running or refused");
    // Before the listener's bound: a2's 4 calls all ran.
    expect(waiting(a2)).toBe(1);
    expect(a2.answers.map((a) => [a.id, a.error])).toEqual([
      [2, LISTENER_REFUSAL],
      [3, LISTENER_REFUSAL],
      [4, LISTENER_REFUSAL],
    ]);
    const fiveCalls = server.requestBytesInFlight;
    expect(fiveCalls).toBeGreaterThan(5 * MiB);
    expect(fiveCalls).toBeLessThan(LIMIT);

    // bob (another agent, holding nothing) gets a 1 MiB call, which takes the total past 6 MiB,
    // and a ping, within his share (6 MiB / 2 agents); alice, past hers now, gets nothing on
    // either session, not even a ping.
    await bob.transport.send(call(1));
    await waitFor(() => waiting(bob) === 1, 20_000, "bob's call running");
    await bob.transport.send(ping(2));
    await a1.transport.send(ping(5));
    await a2.transport.send(ping(6));
    await waitFor(() => answerTo(bob, 2) !== undefined && answerTo(a1, 5) !== undefined && answerTo(a2, 6) !== undefined, 20_000, 'the pings answered');
    expect(answerTo(bob, 2)).toMatchObject({ result: {} });
    expect(answerTo(a1, 5)?.error).toEqual(LISTENER_REFUSAL);
    expect(answerTo(a2, 6)?.error).toEqual(LISTENER_REFUSAL);
    // The figures are the operator's: alice's share was the whole limit for a2's three (each of
    // her two sessions an even half of it), then half of it once bob held requests too.
    const refusals = errors.filter((e) => e.includes('maxRequestBytesInFlightTotal'));
    expect(refusals.map(agentShareOf)).toEqual([LIMIT, LIMIT, LIMIT, LIMIT / 2, LIMIT / 2]);
    expect(refusals.map(shareOf)).toEqual([LIMIT / 2, LIMIT / 2, LIMIT / 2, LIMIT / 4, LIMIT / 4]);
    expect(server.requestBytesInFlight).toBeGreaterThan(LIMIT);

    // Answers free the shared total: a1's calls answered, its ping passes again.
    for (const open of gates.get(a1.transport.sessionId!)!.splice(0)) open();
    await waitFor(() => [1, 2, 3, 4].every((id) => answerTo(a1, id)?.result !== undefined), 20_000, "a1's answers");
    await a1.transport.send(ping(7));
    await waitFor(() => answerTo(a1, 7) !== undefined, 20_000, "a1's ping");
    expect(answerTo(a1, 7)).toMatchObject({ result: {} });
    // bob cancels his call (its handler runs on: still charged), then leaves; a2 leaves with
    // its call unanswered: the sessions' ends free everything they held.
    await bob.transport.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, reason: 'test' } });
    await bob.transport.send(ping(3));
    await waitFor(() => answerTo(bob, 3) !== undefined, 20_000, "bob's ping after the cancel");
    // a2's call and bob's cancelled one (the five calls are the same size).
    expect(server.requestBytesInFlight).toBe((fiveCalls / 5) * 2);
    await bob.transport.close();
    await a2.transport.close();
    await waitFor(() => server.sessions.size === 1, 20_000, 'the two sessions closed on the server');
    expect(server.requestBytesInFlight).toBe(0);
    for (const list of gates.values()) for (const open of list.splice(0)) open();
  });

  it('one agent\'s eight sessions fill the total: another agent\'s one session still gets limit / 2 agents (not limit / 9 sessions), and her sessions, one holding nothing among them, get nothing while she is past her share (R11-7)', { timeout: 60_000 }, async () => {
    const { gates, waiting, server, errors } = await holdingServer();
    // Nine sessions of mallory's (opened first: past her share, even an initialize is refused).
    const mallory: RawSession[] = [];
    for (let i = 0; i < 9; i++) mallory.push(await rawInitializedSession(server.url, cleanup, 0, 'agent://pqmcp-test/mallory'));
    const bob = await rawInitializedSession(server.url, cleanup, 0, 'agent://pqmcp-test/bob');
    // mallory: one 700 KB call on each of eight sessions, 5.6 MB together, under the 6 MiB total.
    for (const s of mallory.slice(0, 8)) await s.transport.send(call(1, 'm'.repeat(700_000)));
    await waitFor(() => mallory.slice(0, 8).every((s) => waiting(s) === 1), 20_000, "mallory's calls running");
    // bob's 1 MiB calls take the total past 6 MiB: his share is 6 MiB / 2 agents, so two of
    // them and a ping fit (the previous code: 6 MiB / 9 sessions holding, 699,050 bytes,
    // refused his first call).
    await bob.transport.send(call(1));
    await bob.transport.send(call(2));
    await waitFor(() => waiting(bob) + bob.answers.length === 2, 20_000, "bob's calls running");
    await bob.transport.send(ping(3));
    await waitFor(() => answerTo(bob, 3) !== undefined, 20_000, "bob's ping");
    expect([waiting(bob), bob.answers]).toEqual([2, [{ jsonrpc: '2.0', id: 3, result: {} }]]);
    expect(server.requestBytesInFlight).toBeGreaterThan(LIMIT);
    // mallory is past her share (5.6 MB > 3 MiB): each of her sessions is refused a ping, the
    // ninth too, holding nothing (the previous code let that one in: 6 MiB / 10 sessions holding).
    for (const s of mallory) await s.transport.send(ping(2));
    await waitFor(() => mallory.every((s) => answerTo(s, 2) !== undefined), 20_000, "mallory's pings answered");
    for (const s of mallory) expect(answerTo(s, 2)?.error).toEqual(LISTENER_REFUSAL);
    const refusals = errors.filter((e) => e.includes('maxRequestBytesInFlightTotal'));
    expect(refusals.map(agentShareOf)).toEqual(Array(9).fill(LIMIT / 2));
    // Answers and closes bring the total back to 0.
    for (const list of gates.values()) for (const open of list.splice(0)) open();
    await waitFor(() => server.requestBytesInFlight === 0, 20_000, 'every call answered');
    await Promise.all([...mallory, bob].map((s) => s.transport.close()));
    await waitFor(() => server.sessions.size === 0, 20_000, 'the sessions closed on the server');
    expect(server.requestBytesInFlight).toBe(0);
  });
});

describe('pqmcp serve --max-request-bytes-in-flight-total', () => {
  const tmp = tempDir('inflight-total');
  let trust: string;
  let gw: Files;
  let alice: Files;
  let bob: Files;
  beforeAll(() => {
    const issuer = writeIssuer(tmp.dir, 'issuer://inflight-total', 'issuer');
    gw = writeAgent(tmp.dir, issuer, 'agent://inflight-total/gateway', 'gateway');
    alice = writeAgent(tmp.dir, issuer, 'agent://inflight-total/alice', 'alice');
    bob = writeAgent(tmp.dir, issuer, 'agent://inflight-total/bob', 'bob');
    trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
  });
  afterAll(() => {
    killAll();
    tmp.remove();
  });

  async function session(url: string, who: Files): Promise<RawSession> {
    const backend = createNativeBackend();
    const transport = new PqmcpClientTransport(url, { identity: await loadOwnIdentity(backend, who.key, undefined, false), trust: await loadTrustStore(trust), backend, expectedServerId: 'agent://inflight-total/gateway' });
    const answers: JsonRpcMessage[] = [];
    transport.onmessage = (m) => void answers.push(m as JsonRpcMessage);
    await transport.start();
    cleanup.add(() => transport.close());
    await transport.send({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: { sampling: {} }, clientInfo: { name: 'raw', version: '1' } } } as unknown as JsonRpcMessage);
    await waitFor(() => answers.some((a) => a.id === 0), 10_000, 'initialize');
    await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return { transport, answers };
  }

  it('sets the bound over all sessions (a session past its share is refused -32005, a new one within its share is not, an answer makes room); a bad value is a usage error', { timeout: 60_000 }, async () => {
    const { cli } = await import('../cli/helpers.js');
    const bad = await cli(['serve', '--listen', '127.0.0.1:0', '--identity', gw.key, '--trust', trust, '--max-request-bytes-in-flight-total', '1GiB', '--', 'node', LINE_SERVER]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--max-request-bytes-in-flight-total must be an integer >= 0 (bytes; 0 = no limit); got "1GiB"');
    const { gateway, url } = await startGateway(['--identity', gw.key, '--trust', trust, '--max-request-bytes-in-flight-total', '1000'], ['node', LINE_SERVER]);
    cleanup.add(() => gateway.stop('SIGKILL'));
    const tool = (id: number, name: string, args: Record<string, unknown>): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
    const a = await session(url, alice);
    const b = await session(url, bob);
    // alice's `ask` (~690 bytes) stays in flight until she answers the child's sampling request.
    await a.transport.send(tool(1, 'ask', { question: 'q'.repeat(600) }));
    await waitFor(() => a.answers.some((m) => m.method === 'sampling/createMessage'), 20_000, "alice's sampling request");
    // Past the 1000 bytes with her alone: her share is all of it, and 690 + 490 is more.
    await a.transport.send(tool(2, 'echo', { text: 'e'.repeat(400) }));
    await waitFor(() => answerTo(a, 2) !== undefined, 20_000, "alice's refusal");
    expect(answerTo(a, 2)?.error).toEqual(LISTENER_REFUSAL);
    expect(shareOf((await gateway.waitForStderr(/maxRequestBytesInFlightTotal[^\n]*/))[0])).toBe(1000);
    // bob, holding nothing: ~390 bytes take the total past 1000 but fit his share (1000 / 2).
    await b.transport.send(tool(1, 'ask', { question: 'q'.repeat(300) }));
    await waitFor(() => b.answers.some((m) => m.method === 'sampling/createMessage'), 20_000, "bob's sampling request");
    // alice holds more than her share now: even a small call is refused.
    await a.transport.send(tool(3, 'echo', { text: 'small' }));
    await waitFor(() => answerTo(a, 3) !== undefined, 20_000, "alice's second refusal");
    expect(answerTo(a, 3)?.error).toEqual(LISTENER_REFUSAL);
    // Her answer to the sampling request ends her call: the next one runs.
    const sampling = a.answers.find((m) => m.method === 'sampling/createMessage')!;
    await a.transport.send({ jsonrpc: '2.0', id: sampling.id!, result: { model: 'm', role: 'assistant', content: { type: 'text', text: 'yes' } } });
    await waitFor(() => answerTo(a, 1) !== undefined, 20_000, "alice's first call");
    await a.transport.send(tool(4, 'echo', { text: 'again' }));
    await waitFor(() => answerTo(a, 4) !== undefined, 20_000, "alice's call after the answer");
    expect(answerTo(a, 4)).toMatchObject({ result: { content: [{ type: 'text', text: 'echo: again' }] } });
  });
});
