/**
 * Message hooks through real SDK clients and servers over real sockets: refusing, filtering,
 * answering locally, correlation of responses with requests, notes shared between hooks,
 * fail-closed hooks, and the pure pipeline's bounds.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TRACKED, MessagePipeline, errorResponse } from '../../src/transport/index.js';
import type { HookContext, JsonRpcMessage, MessageHook } from '../../src/transport/index.js';
import { MessageHookError, TooManyRequestBytesInFlightError, TooManyRequestsInFlightError } from '../../src/errors.js';
import type { PqmcpError } from '../../src/errors.js';
import type { VerifiedPeer } from '../../src/identity/trust.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { AuditEvent, RequestEvent } from '../../src/audit/index.js';
import { Cleanup, connectClient, startFeatureServer, startServer, waitFor } from '../helpers/mcp.js';
import { ManualClock } from '../helpers/clock.js';
import { CANCELLED_HOLD_MS, holdNow } from '../../src/transport/cancelled-hold.js';
import { systemClock } from '../../src/transport/clock.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const toolNames = (result: { tools: Array<{ name: string }> }): string[] => result.tools.map((t) => t.name).sort();

/** A small policy: refuses calls to `denied` tools, hides them from tools/list, notes its decision. */
function denyTools(denied: string[], seen: string[] = []): MessageHook {
  return {
    name: 'deny-tools',
    fromPeer(message, ctx) {
      if (message.method !== 'tools/call') return;
      const name = (message.params as { name?: string }).name ?? '';
      seen.push(`${ctx.peer.agentId} ${name}`);
      const allowed = !denied.includes(name);
      ctx.request!.notes['decision'] = allowed ? 'allow' : 'deny';
      if (!allowed) return { reply: errorResponse(message, -32001, `tool ${name} is not allowed for this agent`) };
    },
    toPeer(message, ctx) {
      if (ctx.request?.method !== 'tools/list' || message.result === undefined) return;
      const result = message.result as { tools: Array<{ name: string }> };
      return { replace: { ...message, result: { ...result, tools: result.tools.filter((t) => !denied.includes(t.name)) } } };
    },
  };
}

/** Records what passes, with the decision another hook noted on the request. */
function recorder(log: string[]): MessageHook {
  return {
    name: 'recorder',
    opened: (s) => void log.push(`opened ${s.role}`),
    fromPeer: (m, ctx) => void log.push(`in ${m.method ?? 'response'} ${ctx.bytes > 0}`),
    toPeer: (m, ctx) => {
      if (ctx.request !== undefined && m.method === undefined) log.push(`out ${ctx.request.method} ${m.error ? 'error' : 'ok'} ${String(ctx.request.notes['decision'] ?? '-')}`);
    },
    closed: (s) => void log.push(`closed ${s.role}`),
  };
}

describe('message hooks on the server (real SDK, real sockets)', () => {
  it('refuses a denied call before the MCP server sees it, filters tools/list, and an outer hook sees the decision', async () => {
    const log: string[] = [];
    const seen: string[] = [];
    const { url, stats } = await startFeatureServer(cleanup, { hooks: [recorder(log), denyTools(['add'], seen)] });
    const { client } = await connectClient(cleanup, url);

    expect(toolNames(await client.listTools())).not.toContain('add');
    expect(toolNames(await client.listTools())).toContain('echo');

    const before = stats.handlerCalls;
    await expect(client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).rejects.toThrow(/tool add is not allowed for this agent/);
    expect(stats.handlerCalls).toBe(before);
    const echoed = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
    expect(echoed.content).toEqual([{ type: 'text', text: 'hi' }]);
    expect(stats.handlerCalls).toBe(before + 1);

    expect(seen).toEqual(['agent://pqmcp-test/client add', 'agent://pqmcp-test/client echo']);
    expect(log).toContain('opened server');
    expect(log).toContain('out tools/call error deny');
    expect(log).toContain('out tools/call ok allow');
    expect(log).toContain('out tools/list ok -');
    await client.close();
    await waitFor(() => log.includes('closed server'), 5_000, 'closed hook');
  });

  it('refuses a server-to-client request (sampling) and answers the MCP server locally', async () => {
    const noSampling: MessageHook = {
      name: 'no-sampling',
      toPeer: (m) => (m.method === 'sampling/createMessage' ? { reply: errorResponse(m, -32001, 'sampling is not allowed') } : undefined),
    };
    const { url } = await startFeatureServer(cleanup, { hooks: [noSampling] });
    const connected = await connectClient(cleanup, url);
    const result = await connected.client.callTool({ name: 'sample', arguments: { prompt: 'x' } });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toMatch(/sampling is not allowed/);
    expect(connected.samplingRequests).toBe(0);
  });

  it('a hook that throws fails closed: the request is refused, onerror reports it, the session stays up', async () => {
    const errors: PqmcpError[] = [];
    const { url, stats, server } = await startFeatureServer(cleanup, {
      hooks: [{ name: 'broken', fromPeer: (m) => { if (m.method === 'tools/call') throw new Error('secret detail'); } }],
    });
    server.on('session', (t) => { t.onerror = (e) => void errors.push(e as PqmcpError); });
    const { client } = await connectClient(cleanup, url);
    const before = stats.handlerCalls;
    const failure = await client.callTool({ name: 'echo', arguments: { text: 'x' } }).then(() => undefined, (e: Error) => e);
    expect(failure?.message).toMatch(/request refused: internal error/);
    expect(failure?.message).not.toMatch(/secret detail/);
    expect(stats.handlerCalls).toBe(before);
    expect(errors.map((e) => e.code)).toContain('ERR_MESSAGE_HOOK');
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  });
});

describe('requests in flight past MAX_TRACKED (real SDK, real sockets; review 8 L1)', () => {
  it('the request past the bound is refused (-32005) and nothing is forgotten: an answer makes room, a cancellation once its handler may have ended (CANCELLED_HOLD_MS), and the audit records the first call as completed', async () => {
    const gates = new Map<number, () => void>();
    let started = 0;
    const factory = () => {
      const mcp = new McpServer({ name: 'gates', version: '1.0.0' });
      mcp.registerTool('wait', { inputSchema: { n: z.number() } }, async ({ n }, extra) => {
        started++;
        await new Promise<void>((resolve, reject) => {
          gates.set(n, resolve);
          extra.signal.addEventListener('abort', () => reject(new Error('cancelled')));
        });
        return { content: [{ type: 'text', text: `done ${n}` }] };
      });
      mcp.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
      return mcp;
    };
    const events: AuditEvent[] = [];
    const errors: string[] = [];
    const clock = new ManualClock();
    const server = await startServer(cleanup, factory, { onAuditEvent: (e) => void events.push(e), clock });
    server.on('session', (t) => {
      t.onerror = (e) => void errors.push((e as PqmcpError).code);
    });
    const { client } = await connectClient(cleanup, server.url);
    const aborts: AbortController[] = [];
    const calls: Array<Promise<unknown>> = [];
    const wait = (n: number): void => {
      const abort = new AbortController();
      aborts[n] = abort;
      calls[n] = client.callTool({ name: 'wait', arguments: { n } }, undefined, { signal: abort.signal, timeout: 120_000 }).then((r) => r, (e: unknown) => e);
    };
    const echo = (text: string) => client.callTool({ name: 'echo', arguments: { text } }).then((r) => r.content, (e: { code?: number; message?: string }) => ({ code: e.code, message: e.message }));
    for (let n = 0; n < MAX_TRACKED; n++) wait(n);
    await waitFor(() => started === MAX_TRACKED, 60_000, 'every wait call started');

    // Full: the next request is refused before any hook or handler; the session goes on.
    expect(await echo('x')).toMatchObject({ code: -32005, message: expect.stringMatching(/too many requests in flight \(4096\)/) });
    expect(errors).toEqual(['ERR_TOO_MANY_IN_FLIGHT']);
    // The first call, executed while the table was full, completes and is audited as such.
    gates.get(0)!();
    expect(await calls[0]).toMatchObject({ content: [{ type: 'text', text: 'done 0' }] });
    expect(await echo('y')).toEqual([{ type: 'text', text: 'y' }]);
    // Full again; the client cancels one call (notifications/cancelled). The SDK never
    // answers a cancelled call, and a handler may ignore its abort: it still counts (F3)
    // until CANCELLED_HOLD_MS have passed; then it makes room.
    wait(MAX_TRACKED);
    await waitFor(() => started === MAX_TRACKED + 1, 10_000, 'one more wait call');
    expect(await echo('z')).toMatchObject({ code: -32005 });
    aborts[1]!.abort('no longer needed');
    expect(await echo('v')).toMatchObject({ code: -32005 });
    clock.advance(CANCELLED_HOLD_MS);
    expect(await echo('w')).toEqual([{ type: 'text', text: 'w' }]);

    const requests = events.filter((e): e is RequestEvent => e.type === 'request');
    const first = requests.find((e) => e.method === 'tools/call' && e.name === 'wait' && e.outcome === 'ok');
    expect(first).toMatchObject({ direction: 'fromPeer', outcome: 'ok', requestHash: expect.stringMatching(/^[0-9a-f]{64}$/), responseHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(requests.filter((e) => e.outcome === 'cancelled')).toHaveLength(1);
    expect(requests.filter((e) => e.name === 'echo').map((e) => e.outcome)).toEqual(['ok', 'ok']);
    for (const abort of aborts) abort.abort('done');
    await Promise.all(calls);
  }, 180_000);

  it('on the system clock the hold ignores a step of Date.now: a cancelled call past half the budget still refuses the next big one when the wall clock jumps 61 s (R10-6)', async () => {
    let started = 0;
    const factory = () => {
      const mcp = new McpServer({ name: 'stuck', version: '1.0.0' });
      // Ignores its abort: the SDK never answers a cancelled call, so the hold alone ends the charge.
      mcp.registerTool('stuck', { inputSchema: { pad: z.string() } }, async () => (started++, new Promise<never>(() => undefined)));
      return mcp;
    };
    const server = await startServer(cleanup, factory, { maxRequestBytesInFlight: 1000 });
    const { client } = await connectClient(cleanup, server.url);
    const abort = new AbortController();
    const first = client.callTool({ name: 'stuck', arguments: { pad: 'x'.repeat(800) } }, undefined, { signal: abort.signal }).catch(() => undefined);
    await waitFor(() => started === 1, 10_000, 'the call started');
    abort.abort('no longer needed');
    await first;
    const big = () => client.callTool({ name: 'stuck', arguments: { pad: 'y'.repeat(600) } }, undefined, { timeout: 2_000 }).then(() => 'answered', (e: { code?: number }) => e.code);
    expect(await big()).toBe(-32005);
    const realDate = Date.now.bind(Date);
    const date = vi.spyOn(Date, 'now').mockImplementation(() => realDate() + CANCELLED_HOLD_MS + 1_000);
    try {
      expect(await big()).toBe(-32005);
      expect(started).toBe(1);
    } finally {
      date.mockRestore();
    }
  });

  it("a client's own request past the bound is not sent: the SDK's callTool rejects with TooManyRequestsInFlightError, and an answer makes room", async () => {
    const gates: Array<() => void> = [];
    let echoed = 0;
    const factory = () => {
      const mcp = new McpServer({ name: 'gates', version: '1.0.0' });
      mcp.registerTool('wait', { inputSchema: { n: z.number() } }, async ({ n }) => {
        await new Promise<void>((resolve) => (gates[n] = resolve));
        return { content: [{ type: 'text', text: `done ${n}` }] };
      });
      mcp.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => (echoed++, { content: [{ type: 'text', text }] }));
      return mcp;
    };
    // Hooks on the client only: the server (no hooks) has no bound of its own.
    const server = await startServer(cleanup, factory);
    const { client } = await connectClient(cleanup, server.url, { hooks: [{ name: 'watch' }] });
    const calls: Array<Promise<unknown>> = [];
    for (let n = 0; n < MAX_TRACKED; n++) calls.push(client.callTool({ name: 'wait', arguments: { n } }, undefined, { timeout: 120_000 }));
    await waitFor(() => gates.filter(Boolean).length === MAX_TRACKED, 60_000, 'every wait call started');
    const refused = await client.callTool({ name: 'echo', arguments: { text: 'x' } }).then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(TooManyRequestsInFlightError);
    expect(refused).toMatchObject({ code: 'ERR_TOO_MANY_IN_FLIGHT', side: 'local', limit: MAX_TRACKED });
    expect(echoed).toBe(0);
    gates[0]!();
    await calls[0];
    expect((await client.callTool({ name: 'echo', arguments: { text: 'y' } })).content).toEqual([{ type: 'text', text: 'y' }]);
    for (const open of gates) open();
    await Promise.all(calls);
  }, 180_000);
});

describe('message hooks on the client', () => {
  it('withholds a tool from the client and answers calls to it locally, without a round trip', async () => {
    const sent: string[] = [];
    const withhold: MessageHook = {
      name: 'withhold-echo',
      toPeer: (m) => {
        sent.push(m.method ?? 'response');
        if (m.method === 'tools/call' && (m.params as { name: string }).name === 'echo') return { reply: errorResponse(m, -32002, 'tool echo is withheld') };
      },
      fromPeer: (m, ctx) => {
        if (ctx.request?.method !== 'tools/list' || m.result === undefined) return;
        const result = m.result as { tools: Array<{ name: string }> };
        return { replace: { ...m, result: { ...result, tools: result.tools.filter((t) => t.name !== 'echo') } } };
      },
    };
    const { url, stats } = await startFeatureServer(cleanup);
    const { client } = await connectClient(cleanup, url, { hooks: [withhold] });
    expect(toolNames(await client.listTools())).not.toContain('echo');
    const before = stats.handlerCalls;
    await expect(client.callTool({ name: 'echo', arguments: { text: 'x' } })).rejects.toThrow(/tool echo is withheld/);
    expect(stats.handlerCalls).toBe(before);
    expect(sent).toContain('initialize');
    expect(sent.filter((m) => m === 'tools/call')).toHaveLength(1);
  });
});

describe('MessagePipeline (pure)', () => {
  const session = { role: 'server' as const, peer: { agentId: 'agent://x' } as VerifiedPeer, sessionId: 'ab', remoteAddress: undefined };
  const request = (id: number, method = 'tools/call'): JsonRpcMessage => ({ jsonrpc: '2.0', id, method, params: {} });

  const sinks = (written: JsonRpcMessage[], local: JsonRpcMessage[] = [], errors: PqmcpError[] = []) => ({
    toPeer: async (_d: Uint8Array, m: JsonRpcMessage) => void written.push(m),
    toLocal: (m: JsonRpcMessage) => void local.push(m),
    onerror: (e: PqmcpError) => void errors.push(e),
  });
  const cancel = (requestId: string | number): JsonRpcMessage => ({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'test' } });

  it('correlates responses with requests; a peer request past MAX_TRACKED in flight is refused before any hook, and nothing accepted is forgotten', async () => {
    const seen: Array<string | undefined> = [];
    let hooked = 0;
    const hook: MessageHook = { fromPeer: () => void hooked++, toPeer: (_m, ctx: HookContext) => void seen.push(ctx.request?.method) };
    const written: JsonRpcMessage[] = [];
    const local: JsonRpcMessage[] = [];
    const errors: PqmcpError[] = [];
    const pipeline = new MessagePipeline([hook], session, sinks(written, local, errors));
    for (let id = 0; id <= MAX_TRACKED; id++) pipeline.fromPeer(request(id, id === 1 ? 'tools/list' : 'tools/call'), 10);
    await Promise.resolve();
    // The one past the bound: answered straight to the peer, seen by no hook and no handler.
    expect(written).toEqual([{ jsonrpc: '2.0', id: MAX_TRACKED, error: { code: -32005, message: `pqmcp: too many requests in flight (${MAX_TRACKED}); retry once earlier requests have been answered`, data: { limit: MAX_TRACKED } } }]);
    expect(hooked).toBe(MAX_TRACKED);
    expect(local).toHaveLength(MAX_TRACKED);
    expect(errors.map((e) => e.code)).toEqual(['ERR_TOO_MANY_IN_FLIGHT']);
    expect(errors[0]).toBeInstanceOf(TooManyRequestsInFlightError);
    expect(errors[0]!.message).toMatch(/the peer sent request "4096" while 4096 of its requests were in flight/);
    // The first requests are still known when their answers come, however many followed.
    await pipeline.toPeer({ jsonrpc: '2.0', id: 0, result: {} });
    await pipeline.toPeer({ jsonrpc: '2.0', id: 1, result: {} });
    await pipeline.toPeer({ jsonrpc: '2.0', id: 1, result: {} });
    expect(seen).toEqual(['tools/call', 'tools/list', undefined]);
    // Answers made room: the next request is accepted.
    pipeline.fromPeer(request(MAX_TRACKED + 1), 10);
    expect(local).toHaveLength(MAX_TRACKED + 1);
    expect(pipeline.inFlight('fromPeer')).toBe(MAX_TRACKED - 1);
    pipeline.close();
    expect(pipeline.inFlight('fromPeer')).toBe(0);
  });

  it('a local request past MAX_TRACKED in flight is rejected with a typed error and not written; an answer makes room', async () => {
    const seen: string[] = [];
    const hook: MessageHook = { toPeer: (m) => void seen.push(String(m.id)) };
    const written: JsonRpcMessage[] = [];
    const pipeline = new MessagePipeline([hook], session, sinks(written));
    for (let id = 0; id < MAX_TRACKED; id++) await pipeline.toPeer(request(id, 'sampling/createMessage'));
    const refused = await pipeline.toPeer(request(MAX_TRACKED, 'sampling/createMessage')).then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(TooManyRequestsInFlightError);
    expect(refused).toMatchObject({ code: 'ERR_TOO_MANY_IN_FLIGHT', side: 'local', limit: MAX_TRACKED });
    expect(written).toHaveLength(MAX_TRACKED);
    expect(seen).toHaveLength(MAX_TRACKED);
    pipeline.fromPeer({ jsonrpc: '2.0', id: 3, result: {} }, 10);
    await pipeline.toPeer(request(MAX_TRACKED, 'sampling/createMessage'));
    expect(written.at(-1)!.id).toBe(MAX_TRACKED);
  });

  it('counts the bytes of the peer\'s requests in flight: past maxRequestBytes one is refused (-32005, before any hook), one is always admitted when none is in flight, and answers, drops, late answers to cancelled requests and the session end give bytes back (issue 10 item 3)', async () => {
    let hooked = 0;
    // Drops request 9 (so nothing answers it): its bytes must come back at once.
    const hook: MessageHook = { fromPeer: (m) => (hooked++, m.id === 9 ? { drop: true } : undefined) };
    const written: JsonRpcMessage[] = [];
    const local: JsonRpcMessage[] = [];
    const errors: PqmcpError[] = [];
    const pipeline = new MessagePipeline([hook], session, sinks(written, local, errors), { maxRequestBytes: 1000 });
    // Larger than the limit, but none is in flight: admitted (maxMessageSize bounds one request).
    pipeline.fromPeer(request(1), 1500);
    expect(pipeline.bytesInFlight('fromPeer')).toBe(1500);
    pipeline.fromPeer(request(2), 10);
    await Promise.resolve();
    expect(written).toEqual([{ jsonrpc: '2.0', id: 2, error: { code: -32005, message: 'pqmcp: too many request bytes in flight (limit 1000); retry once earlier requests have been answered', data: { limitBytes: 1000 } } }]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TooManyRequestBytesInFlightError);
    expect(errors[0]).toMatchObject({ code: 'ERR_TOO_MANY_BYTES_IN_FLIGHT', limit: 1000, inFlight: 1500, bytes: 10 });
    expect(hooked).toBe(1);
    // The answer gives the bytes back; then requests fit up to the limit exactly.
    await pipeline.toPeer({ jsonrpc: '2.0', id: 1, result: {} });
    expect(pipeline.bytesInFlight('fromPeer')).toBe(0);
    pipeline.fromPeer(request(3), 400);
    pipeline.fromPeer(request(4), 600);
    expect(pipeline.bytesInFlight('fromPeer')).toBe(1000);
    pipeline.fromPeer(request(5), 1);
    await Promise.resolve();
    expect(written.at(-1)).toMatchObject({ id: 5, error: { code: -32005 } });
    // A delivered cancellation ends its entry, but its bytes stay charged (its handler may
    // ignore the abort: F3) until a late answer passes (or CANCELLED_HOLD_MS).
    pipeline.fromPeer(cancel(3), 60);
    expect(pipeline.bytesInFlight('fromPeer')).toBe(600);
    expect(pipeline.cancelledHeld()).toEqual({ requests: 1, bytes: 400 });
    pipeline.fromPeer(request(7), 1);
    await Promise.resolve();
    expect(written.at(-1)).toMatchObject({ id: 7, error: { code: -32005 } });
    expect(errors.at(-1)).toMatchObject({ inFlight: 1000, bytes: 1 });
    await pipeline.toPeer({ jsonrpc: '2.0', id: 3, error: { code: -32800, message: 'cancelled' } });
    expect(pipeline.cancelledHeld()).toEqual({ requests: 0, bytes: 0 });
    // A request a hook drops gives its bytes back at once.
    pipeline.fromPeer(request(9), 300);
    expect(pipeline.bytesInFlight('fromPeer')).toBe(600);
    pipeline.fromPeer(request(6), 400);
    expect(pipeline.bytesInFlight('fromPeer')).toBe(1000);
    expect(local.filter((m) => m.id !== undefined).map((m) => m.id)).toEqual([1, 3, 4, 6]);
    // The local side's own requests are not limited by the peer's budget.
    await pipeline.toPeer(request(100, 'sampling/createMessage'));
    expect(pipeline.bytesInFlight('toPeer')).toBeGreaterThan(0);
    pipeline.close();
    expect(pipeline.bytesInFlight('fromPeer')).toBe(0);
    expect(pipeline.bytesInFlight('toPeer')).toBe(0);
  });

  it('a cancelled request stays charged (bytes and count) until its late answer or CANCELLED_HOLD_MS: cancel and resend cannot take the peer past either bound (F3)', async () => {
    let time = 0;
    const written: JsonRpcMessage[] = [];
    const local: JsonRpcMessage[] = [];
    const pipeline = new MessagePipeline([], session, sinks(written, local), { maxRequestBytes: 1000, now: () => time });
    const refused = (): Array<[unknown, unknown]> => written.map((m) => [m.id, m.error?.code]);
    // A lone request past the budget is admitted; cancelled, it still holds half the budget
    // (R10-5), so its resend is not admitted alone again (before: each resend was, without end).
    pipeline.fromPeer(request(1), 1500);
    pipeline.fromPeer(cancel(1), 60);
    expect(pipeline.inFlight('fromPeer')).toBe(0);
    expect(pipeline.cancelledHeld()).toEqual({ requests: 1, bytes: 500 });
    pipeline.fromPeer(request(2), 1500);
    pipeline.fromPeer(request(3), 501);
    time += CANCELLED_HOLD_MS - 1;
    pipeline.fromPeer(request(4), 501);
    await Promise.resolve();
    expect(refused()).toEqual([[2, -32005], [3, -32005], [4, -32005]]);
    time += 1;
    expect(pipeline.cancelledHeld()).toEqual({ requests: 0, bytes: 0 });
    pipeline.fromPeer(request(5), 1500);
    expect(local.filter((m) => m.id !== undefined).map((m) => m.id)).toEqual([1, 5]);
    // A late answer ends the charge at once (the local handler is done).
    pipeline.fromPeer(cancel(5), 60);
    pipeline.fromPeer(request(6), 501);
    await pipeline.toPeer({ jsonrpc: '2.0', id: 5, error: { code: -32800, message: 'cancelled' } });
    pipeline.fromPeer(request(7), 10);
    await Promise.resolve();
    expect(refused().slice(3)).toEqual([[6, -32005], [5, -32800]]);
    expect(local.at(-1)).toEqual(request(7));

    // R10-5: a held request past the budget does not lock the session out: the default
    // budget (16 MiB), a cancelled 20 MiB call held; a 1 KB request passes, and requests up
    // to half the budget beside it; a second 20 MiB call is refused until the hold ends.
    const MiB = 2 ** 20;
    const big: JsonRpcMessage[] = [];
    const bigLocal: JsonRpcMessage[] = [];
    const budget = new MessagePipeline([], session, sinks(big, bigLocal), { maxRequestBytes: 16 * MiB, now: () => time });
    budget.fromPeer(request(1), 20 * MiB);
    budget.fromPeer(cancel(1), 60);
    expect(budget.cancelledHeld()).toEqual({ requests: 1, bytes: 8 * MiB });
    budget.fromPeer(request(2), 1024);
    budget.fromPeer(request(3), 20 * MiB);
    budget.fromPeer(request(4), 8 * MiB - 1024);
    budget.fromPeer(request(5), 1);
    await Promise.resolve();
    expect(bigLocal.filter((m) => m.id !== undefined).map((m) => m.id)).toEqual([1, 2, 4]);
    expect(big.map((m) => [m.id, m.error?.code])).toEqual([[3, -32005], [5, -32005]]);
    await budget.toPeer({ jsonrpc: '2.0', id: 2, result: {} });
    await budget.toPeer({ jsonrpc: '2.0', id: 4, result: {} });
    budget.fromPeer(request(6), 20 * MiB);
    time += CANCELLED_HOLD_MS;
    budget.fromPeer(request(7), 20 * MiB);
    await Promise.resolve();
    expect(big.filter((m) => m.error?.code === -32005).map((m) => m.id)).toEqual([3, 5, 6]);
    expect(bigLocal.at(-1)).toEqual(request(7));

    // The count: MAX_TRACKED cancelled and never answered fill it until their hold ends.
    const counted: JsonRpcMessage[] = [];
    const errors: PqmcpError[] = [];
    const many = new MessagePipeline([], session, sinks(counted, [], errors), { maxRequestBytes: 16 * MiB, now: () => time });
    for (let id = 0; id < MAX_TRACKED; id++) {
      many.fromPeer(request(id), 10);
      many.fromPeer(cancel(id), 60);
    }
    many.fromPeer(request(MAX_TRACKED), 10);
    await Promise.resolve();
    expect(counted).toMatchObject([{ id: MAX_TRACKED, error: { code: -32005, data: { limit: MAX_TRACKED } } }]);
    expect(errors.map((e) => e.code)).toEqual(['ERR_TOO_MANY_IN_FLIGHT']);
    time += CANCELLED_HOLD_MS;
    many.fromPeer(request(MAX_TRACKED), 10);
    expect(many.inFlight('fromPeer')).toBe(1);

    // The local server ending the peer's listen stream (its own cancellation) holds nothing.
    const listen = new MessagePipeline([], session, sinks([]), { maxRequestBytes: 1000, now: () => time });
    listen.fromPeer(request(9, 'subscriptions/listen'), 40);
    await listen.toPeer(cancel(9));
    expect([listen.inFlight('fromPeer'), listen.cancelledHeld()]).toEqual([0, { requests: 0, bytes: 0 }]);
  });

  it("a hook's throw on an answer to a tracked request: the requester gets an internal error under its id at once (not a wait for its timeout), both ways; the hooks after it see that error, not the answer", async () => {
    const boom = (): never => {
      throw new Error('secret detail');
    };
    const seen: JsonRpcMessage[] = [];
    // fromPeer runs the hooks in order, toPeer in reverse: 'after' sees what 'broken' let through.
    const broken: MessageHook = { name: 'broken', fromPeer: (m) => (m.result !== undefined ? boom() : undefined), toPeer: (m) => (m.result !== undefined ? boom() : undefined) };
    const after: MessageHook = { name: 'after', fromPeer: (m) => void seen.push(m) };
    const before: MessageHook = { name: 'before', toPeer: (m) => void seen.push(m) };
    const written: JsonRpcMessage[] = [];
    const local: JsonRpcMessage[] = [];
    const errors: PqmcpError[] = [];
    const pipeline = new MessagePipeline([before, broken, after], session, sinks(written, local, errors));
    // Our request, the peer's answer: the local side gets an error for request 7.
    await pipeline.toPeer({ jsonrpc: '2.0', id: 7, method: 'tools/list' });
    pipeline.fromPeer({ jsonrpc: '2.0', id: 7, result: { tools: [] } }, 40);
    // The peer's request, our answer: the peer gets an error for request 8.
    pipeline.fromPeer(request(8), 10);
    await Promise.resolve();
    await pipeline.toPeer({ jsonrpc: '2.0', id: 8, result: { content: [] } });
    const internal = { code: -32603, message: 'pqmcp: the response was withheld: internal error' };
    expect(local.filter((m) => m.id === 7)).toEqual([{ jsonrpc: '2.0', id: 7, error: internal }]);
    expect(written.filter((m) => m.id === 8)).toEqual([{ jsonrpc: '2.0', id: 8, error: internal }]);
    expect(seen.filter((m) => m.method === undefined)).toEqual([
      { jsonrpc: '2.0', id: 7, error: internal },
      { jsonrpc: '2.0', id: 8, error: internal },
    ]);
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['ERR_MESSAGE_HOOK', 'message hook broken failed; the response was withheld and its request answered with an internal error'],
      ['ERR_MESSAGE_HOOK', 'message hook broken failed; the response was withheld and its request answered with an internal error'],
    ]);
    expect(errors.every((e) => (e.cause as Error).message === 'secret detail')).toBe(true);
    expect([pipeline.inFlight('fromPeer'), pipeline.inFlight('toPeer')]).toEqual([0, 0]);
  });

  it("a hook's throw is reported with what it did: a request refused, a notification dropped, opened() and closed() with no message involved (constant texts, the error only as the cause)", async () => {
    const boom = (): never => {
      throw new Error('secret detail');
    };
    const hook: MessageHook = { name: 'broken', opened: boom, fromPeer: boom, closed: boom };
    const written: JsonRpcMessage[] = [];
    const local: JsonRpcMessage[] = [];
    const errors: PqmcpError[] = [];
    const pipeline = new MessagePipeline([hook], session, sinks(written, local, errors));
    pipeline.fromPeer(request(1), 10);
    pipeline.fromPeer({ jsonrpc: '2.0', method: 'notifications/progress', params: {} }, 10);
    await Promise.resolve();
    pipeline.close();
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['ERR_MESSAGE_HOOK', 'message hook broken failed in opened() (the session start, no message involved); nothing was refused'],
      ['ERR_MESSAGE_HOOK', 'message hook broken failed; the message was refused'],
      ['ERR_MESSAGE_HOOK', 'message hook broken failed; the message was dropped'],
      ['ERR_MESSAGE_HOOK', 'message hook broken failed in closed() (the session end, no message involved); nothing was refused'],
    ]);
    expect(errors.every((e) => e instanceof MessageHookError && (e.cause as Error).message === 'secret detail')).toBe(true);
    expect(written.map((m) => [m.id, m.error?.code])).toEqual([[1, -32603]]);
    expect(local).toEqual([]);
  });

  it('the hold runs on a monotonic clock by default: a step of the system clock (Date.now) neither ends nor stretches it (R10-6)', async () => {
    const realDate = Date.now.bind(Date);
    const realPerf = performance.now.bind(performance);
    let dateStep = 0;
    let perfStep = 0;
    const date = vi.spyOn(Date, 'now').mockImplementation(() => realDate() + dateStep);
    const perf = vi.spyOn(performance, 'now').mockImplementation(() => realPerf() + perfStep);
    try {
      const written: JsonRpcMessage[] = [];
      const pipeline = new MessagePipeline([], session, sinks(written), { maxRequestBytes: 1000 });
      pipeline.fromPeer(request(1), 1500);
      pipeline.fromPeer(cancel(1), 60);
      // The system clock jumps a day ahead: the cancelled request is still held.
      dateStep = 86_400_000;
      expect(pipeline.cancelledHeld()).toEqual({ requests: 1, bytes: 500 });
      pipeline.fromPeer(request(2), 1500);
      await Promise.resolve();
      expect(written.map((m) => [m.id, m.error?.code])).toEqual([[2, -32005]]);
      // Stepped back a day: the hold still ends once CANCELLED_HOLD_MS have passed.
      dateStep = -86_400_000;
      perfStep = CANCELLED_HOLD_MS;
      expect(pipeline.cancelledHeld()).toEqual({ requests: 0, bytes: 0 });
      // The transports' time source: the injected clock's, else monotonic.
      const clock = new ManualClock(5);
      expect(holdNow(clock)()).toBe(5);
      const monotonic = holdNow(systemClock);
      const before = monotonic();
      dateStep = 86_400_000;
      expect(monotonic() - before).toBeLessThan(60_000);
    } finally {
      date.mockRestore();
      perf.mockRestore();
    }
  });

  it('a delivered cancellation ends its request in either direction (a dropped one does not); a late answer passes unmatched, and the id stays refused until it came', async () => {
    const cancels: Array<string | undefined> = [];
    const answers: Array<string | undefined> = [];
    const hooks: MessageHook[] = [
      {
        fromPeer: (m, ctx) => void (m.method === 'notifications/cancelled' && cancels.push(ctx.request?.method)),
        toPeer: (m, ctx) => void (m.method === undefined ? answers.push(ctx.request?.method) : m.method === 'notifications/cancelled' && cancels.push(ctx.request?.method)),
      },
      // Drops the cancellation of request 7: the server never learns, so 7 stays in flight.
      { fromPeer: (m) => ((m.params as { requestId?: unknown } | undefined)?.requestId === 7 ? { drop: true } : undefined) },
    ];
    const written: JsonRpcMessage[] = [];
    const local: JsonRpcMessage[] = [];
    const errors: PqmcpError[] = [];
    let time = 0;
    const pipeline = new MessagePipeline(hooks, session, sinks(written, local, errors), { now: () => time });
    for (let id = 0; id < MAX_TRACKED; id++) pipeline.fromPeer(request(id, id === 5 ? 'tools/list' : 'tools/call'), 10);
    pipeline.fromPeer(cancel(7), 60);
    expect(pipeline.inFlight('fromPeer')).toBe(MAX_TRACKED);
    pipeline.fromPeer(cancel(5), 60);
    expect(cancels).toEqual(['tools/call', 'tools/list']);
    expect(local.filter((m) => m.method === 'notifications/cancelled')).toHaveLength(1);
    expect(pipeline.inFlight('fromPeer')).toBe(MAX_TRACKED - 1);
    // No room yet: the cancelled request's handler may still run (F3); and its id may not be
    // reused while an answer to it may still come.
    pipeline.fromPeer(request(MAX_TRACKED), 10);
    pipeline.fromPeer(request(5, 'ping'), 10);
    await Promise.resolve();
    expect(written.map((m) => [m.id, m.error?.code])).toEqual([[MAX_TRACKED, -32005], [5, -32600]]);
    expect(errors.map((e) => e.code)).toEqual(['ERR_TOO_MANY_IN_FLIGHT', 'ERR_REQUEST_ID_REUSED']);
    // The server answers 5 anyway: it passes unmatched (and is delivered), the id is free
    // again, and its handler is done: room for one more.
    await pipeline.toPeer({ jsonrpc: '2.0', id: 5, result: { tools: [] } });
    expect(answers).toEqual([undefined]);
    expect(written).toHaveLength(3);
    pipeline.fromPeer(request(MAX_TRACKED), 10);
    expect(local.at(-1)).toEqual(request(MAX_TRACKED));
    // A cancellation never answered holds its place for CANCELLED_HOLD_MS.
    pipeline.fromPeer(cancel(MAX_TRACKED), 60);
    pipeline.fromPeer(request(5, 'ping'), 10);
    await Promise.resolve();
    expect(written.at(-1)).toMatchObject({ id: 5, error: { code: -32005 } });
    time += CANCELLED_HOLD_MS;
    pipeline.fromPeer(request(5, 'ping'), 10);
    expect(local.at(-1)).toEqual(request(5, 'ping'));
    // A cancellation the local side sends ends its own request when it is written.
    const mine = (id: string): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'sampling/createMessage', params: {} });
    await pipeline.toPeer(mine('s1'));
    await pipeline.toPeer(mine('s2'));
    expect(pipeline.inFlight('toPeer')).toBe(2);
    await pipeline.toPeer(cancel('s1'));
    expect(cancels.at(-1)).toBe('sampling/createMessage');
    expect(pipeline.inFlight('toPeer')).toBe(1);
    // A cancellation naming a request of the other direction, or none, frees nothing.
    pipeline.fromPeer(cancel('s2'), 60);
    pipeline.fromPeer(cancel('nope'), 60);
    expect(pipeline.inFlight('toPeer')).toBe(1);
    expect(pipeline.inFlight('fromPeer')).toBe(MAX_TRACKED);
  });

  it('a server ends a client\'s subscriptions/listen with a cancellation (MCP 2026-07-28); it cannot end other requests of the client that way', async () => {
    const seen: Array<string | undefined> = [];
    const hook: MessageHook = {
      fromPeer: (m, ctx) => void (m.method === 'notifications/cancelled' && seen.push(ctx.request?.method)),
      toPeer: (m, ctx) => void (m.method === 'notifications/cancelled' && seen.push(ctx.request?.method)),
    };
    // The client side: its listen stream (id 3) and a call (id 4) are in flight.
    const client = new MessagePipeline([hook], { ...session, role: 'client' }, sinks([]));
    await client.toPeer(request(3, 'subscriptions/listen'));
    await client.toPeer(request(4, 'tools/call'));
    client.fromPeer(cancel(4), 60);
    expect(client.inFlight('toPeer')).toBe(2);
    client.fromPeer(cancel(3), 60);
    expect(client.inFlight('toPeer')).toBe(1);
    // The server side: the client's listen stream (id 9), ended by the local server.
    const server = new MessagePipeline([hook], session, sinks([]));
    server.fromPeer(request(9, 'subscriptions/listen'), 40);
    server.fromPeer(request(10, 'tools/call'), 40);
    await server.toPeer(cancel(10));
    expect(server.inFlight('fromPeer')).toBe(2);
    await server.toPeer(cancel(9));
    expect(server.inFlight('fromPeer')).toBe(1);
    expect(seen).toEqual([undefined, 'subscriptions/listen', undefined, 'subscriptions/listen']);
  });

  it('a request a hook drops or answers itself leaves nothing in flight', async () => {
    const hooks: MessageHook[] = [{ fromPeer: (m) => (m.method === 'tools/call' ? { drop: true } : { reply: errorResponse(m, -32001, 'no') }) }];
    const written: JsonRpcMessage[] = [];
    const pipeline = new MessagePipeline(hooks, session, sinks(written));
    for (let id = 0; id < 2 * MAX_TRACKED + 2; id++) pipeline.fromPeer(request(id, id % 2 === 0 ? 'tools/call' : 'ping'), 10);
    await new Promise((r) => setTimeout(r, 0));
    expect(pipeline.inFlight('fromPeer')).toBe(0);
    expect(written).toHaveLength(MAX_TRACKED + 1);
    expect(written.every((m) => m.error?.code === -32001)).toBe(true);
  });

  it('drop answers nothing; replace changes what is delivered; hooks run outer to inner from the peer', () => {
    const order: string[] = [];
    const local: JsonRpcMessage[] = [];
    const hooks: MessageHook[] = [
      { fromPeer: (m) => void order.push(`outer ${m.method}`) },
      { fromPeer: (m) => (order.push(`inner ${m.method}`), m.method === 'notifications/a' ? { drop: true } : { replace: { ...m, method: 'notifications/c' } }) },
    ];
    const pipeline = new MessagePipeline(hooks, session, { toPeer: async () => undefined, toLocal: (m) => void local.push(m), onerror: () => undefined });
    pipeline.fromPeer({ jsonrpc: '2.0', method: 'notifications/a' }, 1);
    pipeline.fromPeer({ jsonrpc: '2.0', method: 'notifications/b' }, 1);
    expect(order).toEqual(['outer notifications/a', 'inner notifications/a', 'outer notifications/b', 'inner notifications/b']);
    expect(local.map((m) => m.method)).toEqual(['notifications/c']);
  });

  it("a hook's own notification (opened's channel) passes every hook to the peer; requests and ended sessions are refused", async () => {
    let channel: import('../../src/transport/index.js').HookChannel | undefined;
    const seen: string[] = [];
    const written: JsonRpcMessage[] = [];
    const hooks: MessageHook[] = [{ toPeer: (m) => void seen.push(`outer ${m.method}`) }, { opened: (_s, c) => void (channel = c), toPeer: (m) => void seen.push(`inner ${m.method}`) }];
    const pipeline = new MessagePipeline(hooks, session, { toPeer: async (_d, m) => void written.push(m), toLocal: () => undefined, onerror: () => undefined });
    await channel!.notify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    expect(seen).toEqual(['inner notifications/tools/list_changed', 'outer notifications/tools/list_changed']);
    expect(written.map((m) => m.method)).toEqual(['notifications/tools/list_changed']);
    await expect(channel!.notify({ jsonrpc: '2.0', id: 1, method: 'x' })).rejects.toThrow(/only send notifications/);
    pipeline.close();
    await channel!.notify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    expect(written).toHaveLength(1);
  });

  it('closed() runs once per hook even when called twice', () => {
    let closed = 0;
    const pipeline = new MessagePipeline([{ closed: () => void closed++ }], session, { toPeer: async () => undefined, toLocal: () => undefined, onerror: () => undefined });
    pipeline.close();
    pipeline.close();
    expect(closed).toBe(1);
  });
});
