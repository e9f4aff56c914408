/**
 * Message hooks through real SDK clients and servers over real sockets: refusing, filtering,
 * answering locally, correlation of responses with requests, notes shared between hooks,
 * fail-closed hooks, and the pure pipeline's bounds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_TRACKED, MessagePipeline, errorResponse } from '../../src/transport/index.js';
import type { HookContext, JsonRpcMessage, MessageHook } from '../../src/transport/index.js';
import type { PqmcpError } from '../../src/errors.js';
import type { VerifiedPeer } from '../../src/identity/trust.js';
import { Cleanup, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';

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

  it('correlates responses with requests and forgets requests beyond MAX_TRACKED, oldest first', async () => {
    const seen: Array<string | undefined> = [];
    const hook: MessageHook = { toPeer: (_m, ctx: HookContext) => void seen.push(ctx.request?.method) };
    const written: JsonRpcMessage[] = [];
    const pipeline = new MessagePipeline([hook], session, { toPeer: async (_d, m) => void written.push(m), toLocal: () => undefined, onerror: () => undefined });
    for (let id = 0; id <= MAX_TRACKED; id++) pipeline.fromPeer(request(id, id === 1 ? 'tools/list' : 'tools/call'), 10);
    await pipeline.toPeer({ jsonrpc: '2.0', id: 0, result: {} });
    await pipeline.toPeer({ jsonrpc: '2.0', id: 1, result: {} });
    await pipeline.toPeer({ jsonrpc: '2.0', id: 1, result: {} });
    expect(seen).toEqual([undefined, 'tools/list', undefined]);
    expect(written).toHaveLength(3);
  });

  it('drop answers nothing; replace changes what is delivered; hooks run outer to inner from the peer', () => {
    const order: string[] = [];
    const local: JsonRpcMessage[] = [];
    const hooks: MessageHook[] = [
      { fromPeer: (m) => void order.push(`outer ${m.method}`) },
      { fromPeer: (m) => (order.push(`inner ${m.method}`), m.method === 'a' ? { drop: true } : { replace: { ...m, method: 'c' } }) },
    ];
    const pipeline = new MessagePipeline(hooks, session, { toPeer: async () => undefined, toLocal: (m) => void local.push(m), onerror: () => undefined });
    pipeline.fromPeer({ jsonrpc: '2.0', method: 'a' }, 1);
    pipeline.fromPeer({ jsonrpc: '2.0', method: 'b' }, 1);
    expect(order).toEqual(['outer a', 'inner a', 'outer b', 'inner b']);
    expect(local.map((m) => m.method)).toEqual(['c']);
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
