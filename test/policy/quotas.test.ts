/**
 * Quotas through real SDK peers over real sockets: calls, bytes and concurrent sessions per
 * agent and per issuer; exhaustion answered with which quota and when to retry; recovery
 * when the window turns (an injected clock, no sleeping) or a session closes; the store's
 * windows; and configuration checks.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { MemoryQuotaStore, PolicyErrorCode, PolicyInvalidError, createQuotas, parseQuotaFile } from '../../src/policy/index.js';
import type { QuotaNote } from '../../src/policy/index.js';
import type { MessageHook } from '../../src/transport/index.js';
import { fixtureCrypto, makeAgent, testIssuer } from '../helpers/identities.js';
import { Cleanup, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const other = makeAgent(fixtureCrypto(), testIssuer(), 'agent://pqmcp-test/other', { scopes: ['tools:call'] }).identity;

async function refusal(p: Promise<unknown>): Promise<McpError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(McpError);
  return err as McpError;
}

describe('quotas through real SDK peers', () => {
  it('calls per agent: exhausted, answered with which quota and when to retry, recovered in the next window', async () => {
    let now = 1_200_000; // the start of a 60 s window (20 x 60 s)
    const quotas = createQuotas({ intervalMs: 60_000, perAgent: { calls: 4 } }, { now: () => now });
    const notes: unknown[] = [];
    const auditor: MessageHook = { toPeer: (m, ctx) => void (m.error && notes.push(ctx.request?.notes['quota'])) };
    const { url, stats } = await startFeatureServer(cleanup, { quotas, hooks: [auditor] });
    const { client } = await connectClient(cleanup, url); // initialize: call 1
    await client.callTool({ name: 'echo', arguments: { text: '2' } });
    await client.callTool({ name: 'echo', arguments: { text: '3' } });
    await client.callTool({ name: 'echo', arguments: { text: '4' } });
    now += 15_000;
    const before = stats.handlerCalls;
    const err = await refusal(client.callTool({ name: 'echo', arguments: { text: '5' } }));
    expect(err.code).toBe(PolicyErrorCode.quotaExceeded);
    expect(err.message).toBe('MCP error -32004: pqmcp: quota exceeded: calls per agent (4 per 60 s); retry after 45 s');
    expect(err.data).toEqual({ quota: 'calls', scope: 'agent', limit: 4, retryAfterMs: 45_000 });
    expect(notes).toEqual([{ quota: 'calls', scope: 'agent', limit: 4, retryAfterMs: 45_000 }] satisfies QuotaNote[]);
    expect(stats.handlerCalls).toBe(before);
    // Another agent of the same issuer has its own count.
    const second = await connectClient(cleanup, url, { identity: other });
    expect((await second.client.callTool({ name: 'echo', arguments: { text: 'mine' } })).content).toEqual([{ type: 'text', text: 'mine' }]);
    // The window turns: the first agent may call again, in the same session.
    now += 45_000;
    expect((await client.callTool({ name: 'echo', arguments: { text: 'again' } })).content).toEqual([{ type: 'text', text: 'again' }]);
  });

  it('calls per issuer: the sum over its agents', async () => {
    const now = 0;
    const quotas = createQuotas({ perIssuer: { calls: 3 } }, { now: () => now });
    const { url } = await startFeatureServer(cleanup, { quotas });
    const a = await connectClient(cleanup, url); // 1
    const b = await connectClient(cleanup, url, { identity: other }); // 2
    await a.client.callTool({ name: 'echo', arguments: { text: 'x' } }); // 3
    const err = await refusal(b.client.callTool({ name: 'echo', arguments: { text: 'x' } }));
    expect(err.message).toMatch(/quota exceeded: calls per issuer \(3 per 60 s\); retry after 60 s$/);
  });

  it('bytes per agent: a large exchange exhausts it; the next window restores it', async () => {
    let now = 0;
    const quotas = createQuotas({ intervalMs: 10_000, perAgent: { bytes: 20_000 } }, { now: () => now });
    const { url } = await startFeatureServer(cleanup, { quotas });
    const { client } = await connectClient(cleanup, url);
    await client.callTool({ name: 'big', arguments: { bytes: 25_000 } }); // allowed; its response is counted whatever its size
    const err = await refusal(client.callTool({ name: 'echo', arguments: { text: 'x' } }));
    expect(err.data).toMatchObject({ quota: 'bytes', scope: 'agent', limit: 20_000, retryAfterMs: 10_000 });
    now = 10_000;
    expect((await client.callTool({ name: 'echo', arguments: { text: 'x' } })).content).toEqual([{ type: 'text', text: 'x' }]);
  });

  it('concurrent sessions per agent: one over the limit is refused; a slot frees when a session closes', async () => {
    const quotas = createQuotas({ perAgent: { sessions: 1 } });
    const { url, server } = await startFeatureServer(cleanup, { quotas });
    const first = await connectClient(cleanup, url);
    const err = await refusal(connectClient(cleanup, url));
    expect(err.message).toMatch(/quota exceeded: concurrent sessions per agent \(1\); close another session, then reconnect$/);
    expect(err.data).toEqual({ quota: 'sessions', scope: 'agent', limit: 1 });
    // Another agent is not affected.
    await connectClient(cleanup, url, { identity: other });
    await first.client.close();
    await waitFor(() => server.sessions.size <= 2, 5_000, 'first session closed');
    const again = await connectClient(cleanup, url);
    expect((await again.client.callTool({ name: 'echo', arguments: { text: 'in' } })).content).toEqual([{ type: 'text', text: 'in' }]);
  });
});

describe('quota configuration and store', () => {
  it('checks limits and names every problem', () => {
    expect(() => createQuotas({ perAgent: { calls: -1 } })).toThrow(PolicyInvalidError);
    expect(() => createQuotas({ perAgent: { call: 1 } as never })).toThrow(/unknown limit "call"/);
    expect(() => parseQuotaFile('{"intervalSeconds": 0}', 'q.json')).toThrow(/intervalSeconds must be a number > 0/);
    expect(() => parseQuotaFile('{', 'q.json')).toThrow(/q\.json: not JSON/);
    expect(parseQuotaFile('{"intervalSeconds": 30, "perAgent": {"calls": 5}, "agents": {"agent://x": {"calls": 50}}}')).toMatchObject({
      intervalMs: 30_000,
      perAgent: { calls: 5 },
      agents: { 'agent://x': { calls: 50 } },
    });
  });

  it('MemoryQuotaStore: fixed windows aligned on the interval, levels never below zero', () => {
    const store = new MemoryQuotaStore();
    store.add('k', 3, 1000, 1500);
    expect(store.used('k', 1000, 1999)).toEqual({ used: 3, resetAt: 2000 });
    expect(store.used('k', 1000, 2000)).toEqual({ used: 0, resetAt: 3000 });
    expect(store.adjust('s', 1)).toBe(1);
    expect(store.adjust('s', -1)).toBe(0);
    expect(store.adjust('s', -1)).toBe(0);
  });
});
