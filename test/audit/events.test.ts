/**
 * Audit events from the library (`onAuditEvent` on the listener and on the client transport)
 * with real SDK clients and servers over real sockets: session open and close with the
 * handshake's facts, one request event per request (ok, tool error, protocol error, denial
 * by an inner hook that records a policy decision, unanswered), hashes instead of content,
 * handshake failures on both sides.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_TRACKED, MessagePipeline, errorResponse } from '../../src/transport/index.js';
import type { JsonRpcMessage, MessageHook } from '../../src/transport/index.js';
import type { VerifiedPeer } from '../../src/identity/trust.js';
import { requestAuditor } from '../../src/audit/index.js';
import type { AuditEvent, RequestEvent, SessionCloseEvent, SessionOpenEvent } from '../../src/audit/index.js';
import { makeAgent, fixtureCrypto, makeIssuer } from '../helpers/identities.js';
import { Cleanup, connectClient, makeClient, startFeatureServer, waitFor } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const sha = (value: unknown): string => createHash('sha256').update(JSON.stringify(value)).digest('hex');
const requests = (events: AuditEvent[]): RequestEvent[] => events.filter((e): e is RequestEvent => e.type === 'request');

/** A stand-in for the policy hook: denies one tool and records its decision where the auditor reads it. */
function denyTool(tool: string): MessageHook {
  return {
    name: 'test-policy',
    fromPeer(message, ctx) {
      if (message.method !== 'tools/call') return;
      const name = (message.params as { name?: string }).name;
      const deny = name === tool;
      ctx.request!.notes['policy'] = { decision: deny ? 'deny' : 'allow', policies: [deny ? 'forbid-secret' : 'permit-all'], reason: deny ? 'secret is off limits' : 'default' };
      if (deny) return { reply: errorResponse(message, -32001, 'denied by policy') };
    },
  };
}

describe('audit events (real SDK, real sockets)', () => {
  it('reports each session and each request on the server, hashes instead of content, the policy decision, and every outcome', async () => {
    const events: AuditEvent[] = [];
    const { url } = await startFeatureServer(cleanup, { onAuditEvent: (e) => events.push(e), hooks: [denyTool('add')] });
    const clientEvents: AuditEvent[] = [];
    const { client, transport } = await connectClient(cleanup, url, { onAuditEvent: (e) => clientEvents.push(e) });

    const echoed = await client.callTool({ name: 'echo', arguments: { text: 'a secret text' } });
    await expect(client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).rejects.toThrow(/denied by policy/);
    const failed = await client.callTool({ name: 'slow', arguments: { ms: 'not a number' } });
    expect(failed.isError).toBe(true);
    await expect(client.request({ method: 'no/such/method', params: {} }, (await import('@modelcontextprotocol/sdk/types.js')).ResultSchema)).rejects.toThrow();
    await client.close();
    await waitFor(() => events.some((e) => e.type === 'session.close'), 5_000, 'session.close');

    const open = events.find((e): e is SessionOpenEvent => e.type === 'session.open')!;
    expect(open).toMatchObject({ role: 'server', agentId: 'agent://pqmcp-test/client', issuer: 'issuer://pqmcp-test', sessionId: transport.sessionId, backend: 'native', endpoint: '/', remoteAddress: '127.0.0.1' });
    expect(open.suite).toMatch(/^PQMCP_/);
    expect(open.serial).toMatch(/^[0-9a-f]+$/);
    expect(open.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(open.handshakeMs).toBeGreaterThanOrEqual(0);
    expect(events[0]).toBe(open);

    const reqs = requests(events);
    const byMethod = (m: string, name?: string): RequestEvent => reqs.find((r) => r.method === m && (name === undefined || r.name === name))!;
    expect(byMethod('initialize')).toMatchObject({ outcome: 'ok', direction: 'fromPeer' });
    const echo = byMethod('tools/call', 'echo');
    expect(echo).toMatchObject({ outcome: 'ok', requestHash: expect.stringMatching(/^[0-9a-f]{64}$/), responseHash: expect.stringMatching(/^[0-9a-f]{64}$/), policy: { decision: 'allow', policies: ['permit-all'] } });
    // The hash is of the response exactly as sent: the SDK's JSON of { result, jsonrpc, id }.
    expect(echo.responseHash).toBe(sha({ result: echoed, jsonrpc: '2.0', id: 1 }));
    expect(echo.requestBytes).toBeGreaterThan(0);
    expect(echo.responseBytes).toBeGreaterThan(0);
    expect(JSON.stringify(events)).not.toContain('a secret text');
    expect(byMethod('tools/call', 'add')).toMatchObject({ outcome: 'denied', errorCode: -32001, errorMessage: 'denied by policy', policy: { decision: 'deny', policies: ['forbid-secret'], reason: 'secret is off limits' } });
    expect(byMethod('tools/call', 'add').responseHash).not.toBe(echo.responseHash);
    expect(byMethod('tools/call', 'slow')).toMatchObject({ outcome: 'error' });
    expect(byMethod('no/such/method')).toMatchObject({ outcome: 'error', errorCode: -32601 });

    const close = events.at(-1) as SessionCloseEvent;
    expect(close).toMatchObject({ type: 'session.close', end: 'peer', sessionId: open.sessionId });
    expect(close.bytesIn).toBeGreaterThan(echo.requestBytes);
    expect(close.bytesOut).toBeGreaterThan(echo.responseBytes);

    // The client's own trail: the same requests seen from the side that sent them.
    const mine = requests(clientEvents);
    expect(clientEvents[0]).toMatchObject({ type: 'session.open', role: 'client', agentId: 'agent://pqmcp-test/server', endpoint: url.replace(/\/$/, '') + '/' });
    expect(mine.find((r) => r.name === 'echo')).toMatchObject({ direction: 'toPeer', outcome: 'ok', requestHash: echo.requestHash, responseHash: echo.responseHash });
    expect(mine.find((r) => r.name === 'add')).toMatchObject({ outcome: 'error', errorCode: -32001 });
    expect(clientEvents.at(-1)).toMatchObject({ type: 'session.close', end: 'local' });
    expect((clientEvents.at(-1) as SessionCloseEvent).bytesOut).toBe(close.bytesIn);
  });

  it('records the decision of the real Cedar policy (pqmcp/policy) with the ids of the policies that made it', async () => {
    const { loadPolicy } = await import('../../src/policy/index.js');
    const policy = await loadPolicy({
      text: `@id("echo-for-all")
permit(principal, action == Action::"tools/call", resource == Tool::"echo");`,
    });
    const events: AuditEvent[] = [];
    const { url } = await startFeatureServer(cleanup, { onAuditEvent: (e) => events.push(e), policy });
    const { client } = await connectClient(cleanup, url);
    await client.callTool({ name: 'echo', arguments: { text: 'x' } });
    await expect(client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).rejects.toThrow();
    const reqs = requests(events);
    expect(reqs.find((r) => r.name === 'echo')).toMatchObject({ outcome: 'ok', policy: { decision: 'allow', policies: ['echo-for-all'] } });
    expect(reqs.find((r) => r.name === 'add')).toMatchObject({ outcome: 'denied', policy: { decision: 'deny', policies: [] } });
  });

  it('puts content in the events only when auditContent is set, and reports requests left unanswered', async () => {
    const events: AuditEvent[] = [];
    const { url, server } = await startFeatureServer(cleanup, { onAuditEvent: (e) => events.push(e), auditContent: true });
    const { client } = await connectClient(cleanup, url);
    await client.callTool({ name: 'echo', arguments: { text: 'visible' } });
    const slow = client.callTool({ name: 'slow', arguments: { ms: 5_000 } }).catch((e: Error) => e);
    await waitFor(() => requests(events).length >= 2 || events.length >= 4, 2_000, 'calls').catch(() => {});
    await new Promise((r) => setTimeout(r, 100));
    await server.close();
    await slow;
    await waitFor(() => events.some((e) => e.type === 'session.close'), 5_000, 'session.close');
    expect(requests(events).find((r) => r.name === 'echo')).toMatchObject({ arguments: { text: 'visible' }, result: { content: [{ type: 'text', text: 'visible' }] } });
    expect(requests(events).find((r) => r.name === 'slow')).toMatchObject({ outcome: 'unanswered', responseBytes: 0 });
    expect(events.at(-1)).toMatchObject({ type: 'session.close', end: 'local' });
  });

  it('takes no hashes with auditHashes: false (a sink that only counts), and still reports every request and its outcome', async () => {
    const hashed: AuditEvent[] = [];
    const bare: AuditEvent[] = [];
    const withHashes = await startFeatureServer(cleanup, { onAuditEvent: (e) => hashed.push(e) });
    const without = await startFeatureServer(cleanup, { onAuditEvent: (e) => bare.push(e), auditHashes: false, hooks: [denyTool('add')] });
    for (const [url, events] of [[withHashes.url, hashed], [without.url, bare]] as const) {
      const { client } = await connectClient(cleanup, url);
      await client.callTool({ name: 'echo', arguments: { text: 'x' } });
      await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }).catch(() => undefined);
      await waitFor(() => requests(events).length >= 3, 2_000, 'request events');
    }
    expect(requests(hashed).every((r) => /^[0-9a-f]{64}$/.test(r.requestHash ?? '') && /^[0-9a-f]{64}$/.test(r.responseHash ?? ''))).toBe(true);
    const reqs = requests(bare);
    expect(reqs.map((r) => [r.method, r.name, r.outcome])).toEqual([['initialize', undefined, 'ok'], ['tools/call', 'echo', 'ok'], ['tools/call', 'add', 'denied']]);
    for (const r of reqs) {
      expect(r).not.toHaveProperty('requestHash');
      expect(r).not.toHaveProperty('responseHash');
      expect(r.requestBytes).toBeGreaterThan(0);
      expect(r.responseBytes).toBeGreaterThan(0);
    }
  });

  it('reports handshake failures on both sides', async () => {
    const events: AuditEvent[] = [];
    const { url } = await startFeatureServer(cleanup, { onAuditEvent: (e) => events.push(e) });
    const stranger = makeAgent(fixtureCrypto(), makeIssuer(fixtureCrypto(), 'issuer://stranger'), 'agent://stranger/x').identity;
    const clientEvents: AuditEvent[] = [];
    const { client, transport } = makeClient(url, { identity: stranger, onAuditEvent: (e) => clientEvents.push(e) });
    await expect(client.connect(transport)).rejects.toThrow();
    await waitFor(() => events.length > 0 && clientEvents.length > 2, 5_000, 'failure events');
    expect(events).toEqual([expect.objectContaining({ type: 'handshake.failure', role: 'server', remoteAddress: '127.0.0.1', code: 'ERR_UNTRUSTED_ISSUER' })]);
    // 1-RTT: the client had verified the server (its side of the handshake completed) when
    // the server's refusal arrived, so its trail shows a session that ended in that alert.
    expect(clientEvents).toEqual([
      expect.objectContaining({ type: 'session.open', role: 'client', agentId: 'agent://pqmcp-test/server' }),
      expect.objectContaining({ type: 'request', method: 'initialize', outcome: 'unanswered' }),
      expect.objectContaining({ type: 'session.close', end: 'error', code: 'ERR_PEER_ALERT' }),
    ]);

    // A client that cannot reach the server at all: a handshake failure on its side.
    const unreachable: AuditEvent[] = [];
    const lost = makeClient('ws://127.0.0.1:1/', { onAuditEvent: (e) => unreachable.push(e) });
    await expect(lost.client.connect(lost.transport)).rejects.toThrow();
    expect(unreachable).toEqual([expect.objectContaining({ type: 'handshake.failure', role: 'client', code: 'ERR_CONNECTION' })]);
  });
});

describe('the request auditor at the pipeline bound (review 8 L1)', () => {
  const peer = { agentId: 'agent://x', issuer: 'issuer://pqmcp-test', fingerprint: 'ab', serial: '01' } as VerifiedPeer;
  const session = { role: 'server' as const, peer, sessionId: 's1', remoteAddress: undefined };
  const call = (id: number, name: string): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

  it('records a call executed while MAX_TRACKED requests were in flight as completed, with its hashes', async () => {
    const events: AuditEvent[] = [];
    const pipeline = new MessagePipeline([requestAuditor((e) => void events.push(e))], session, { toPeer: async () => undefined, toLocal: () => undefined, onerror: () => undefined });
    pipeline.fromPeer(call(0, 'deploy'), 60);
    for (let id = 1; id <= MAX_TRACKED; id++) pipeline.fromPeer({ jsonrpc: '2.0', id, method: 'ping' }, 30);
    await pipeline.toPeer({ jsonrpc: '2.0', id: 0, result: { content: [{ type: 'text', text: 'deployed' }] } });
    pipeline.close();
    const deploy = requests(events).filter((e) => e.name === 'deploy');
    expect(deploy).toEqual([expect.objectContaining({ method: 'tools/call', outcome: 'ok', requestHash: sha(call(0, 'deploy')), responseHash: expect.stringMatching(/^[0-9a-f]{64}$/) })]);
    // Every ping the pipeline accepted ends unanswered at close; the one it refused was never a request of this session.
    expect(requests(events).filter((e) => e.method === 'ping' && e.outcome === 'unanswered')).toHaveLength(MAX_TRACKED - 1);
  });

  it('records a cancelled request once, as cancelled, even when an answer follows', async () => {
    const events: AuditEvent[] = [];
    const pipeline = new MessagePipeline([requestAuditor((e) => void events.push(e))], session, { toPeer: async () => undefined, toLocal: () => undefined, onerror: () => undefined });
    pipeline.fromPeer(call(1, 'slow'), 60);
    pipeline.fromPeer({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, reason: 'user' } }, 70);
    await pipeline.toPeer({ jsonrpc: '2.0', id: 1, error: { code: -32800, message: 'Request cancelled' } });
    pipeline.close();
    expect(requests(events).map((e) => [e.name, e.outcome, e.responseBytes, e.requestHash])).toEqual([['slow', 'cancelled', 0, sha(call(1, 'slow'))]]);
  });
});
