/**
 * What the pipeline takes for a request (review 15, R15-1): any message with a method and an
 * id member, null included, so an `"id": null` request is refused Invalid Request before any
 * hook instead of passing as a notification (no policy decision, no quota, no audit) to the
 * MCP side; and a request method sent without an id (any method not under `notifications/`)
 * is dropped and reported, never delivered: no hook decides notifications. Both ways (a
 * listener's client, a client's server). Real listener and client over ws on 127.0.0.1,
 * the real Cedar policy and auditor.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PqmcpClientTransport, listen } from '../../src/transport/index.js';
import type { JsonRpcMessage, PqmcpServerTransport } from '../../src/transport/index.js';
import { loadPolicy } from '../../src/policy/index.js';
import type { AuditEvent } from '../../src/audit/index.js';
import { MalformedRequestError } from '../../src/errors.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, waitFor } from '../helpers/mcp.js';
import { rawInitializedSession } from '../helpers/raw-session.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const call = (name: string) => ({ method: 'tools/call', params: { name, arguments: {} } });
const requests = (events: AuditEvent[]): string[] => events.filter((e) => e.type === 'request').map((e) => `${e.method} ${e.name ?? ''} ${e.outcome}`);

describe('request-shaped messages reach the MCP side only as decided requests', () => {
  it('a listener with a policy and an auditor: id null is refused -32600 before any hook, a tools/call without an id is dropped; neither reaches onmessage', async () => {
    const policy = await loadPolicy({ text: 'permit(principal, action == Action::"tools/call", resource == Tool::"echo");' });
    const events: AuditEvent[] = [];
    const hooked: unknown[] = [];
    const server = await listen({
      identity: agent(SERVER_ID),
      trust: trustFor(),
      host: '127.0.0.1',
      port: 0,
      policy,
      onAuditEvent: (e) => void events.push(e),
      hooks: [{ name: 'seen', fromPeer: (m) => void hooked.push(m) }],
    });
    cleanup.add(() => server.close());
    const delivered: JsonRpcMessage[] = [];
    const errors: Error[] = [];
    server.on('session', (t: PqmcpServerTransport) => {
      t.onerror = (e) => void errors.push(e);
      t.onmessage = (m) => {
        const r = m as JsonRpcMessage;
        delivered.push(r);
        if (typeof r.method === 'string' && r.id !== undefined) void t.send({ jsonrpc: '2.0', id: r.id, result: {} } as never);
      };
      void t.start();
    });
    const { transport, answers } = await rawInitializedSession(server.url, cleanup, 'init');
    const send = (m: Record<string, unknown>) => transport.send({ jsonrpc: '2.0', ...m } as unknown as JsonRpcMessage);
    await send({ id: 2, ...call('secret') });
    await send({ id: null, ...call('secret') });
    await send(call('secret'));
    await send({ method: 'ping' });
    await send({ method: 'notifications/custom', params: { x: 1 } });
    await send({ id: 3, method: 'ping' });
    await waitFor(() => answers.some((a) => a.id === 3), 10_000, 'ping 3');
    expect(answers.map((a) => [a.id, a.error?.code])).toEqual([
      [2, -32003],
      [null, -32600],
      [3, undefined],
    ]);
    // The local side got initialize, initialized, the notification and ping 3; no secret, no id-less request.
    expect(delivered.map((m) => `${m.method} ${JSON.stringify(m.id)}`)).toEqual(['initialize "init"', 'notifications/initialized undefined', 'notifications/custom undefined', 'ping 3']);
    expect(hooked.some((m) => JSON.stringify(m).includes('secret') && (m as JsonRpcMessage).id !== 2)).toBe(false);
    expect(errors.map((e) => [e.constructor.name, /no id to answer/.test(e.message)])).toEqual([
      ['MalformedRequestError', false],
      ['MalformedRequestError', true],
      ['MalformedRequestError', true],
    ]);
    expect(errors.every((e) => e instanceof MalformedRequestError)).toBe(true);
    expect(requests(events)).toEqual(['initialize  ok', 'tools/call secret denied', 'ping  ok']);
  });

  it("a client with hooks: the server's sampling request with id null is refused, one without an id is dropped; neither reaches onmessage", async () => {
    const server = await listen({ identity: agent(SERVER_ID), trust: trustFor(), host: '127.0.0.1', port: 0 });
    cleanup.add(() => server.close());
    const answers: JsonRpcMessage[] = [];
    server.on('session', (t: PqmcpServerTransport) => {
      t.onmessage = (m) => {
        const r = m as JsonRpcMessage;
        if (r.method === undefined) return void answers.push(r);
        if (r.method !== 'ping') return;
        const sampling = { method: 'sampling/createMessage', params: { messages: [], maxTokens: 1 } };
        void t.send({ jsonrpc: '2.0', id: null, ...sampling } as never);
        void t.send({ jsonrpc: '2.0', ...sampling } as never);
        void t.send({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } });
        void t.send({ jsonrpc: '2.0', id: r.id!, result: {} });
      };
      void t.start();
    });
    const delivered: JsonRpcMessage[] = [];
    const errors: Error[] = [];
    const hooked: unknown[] = [];
    const transport = new PqmcpClientTransport(server.url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), expectedServerId: SERVER_ID, hooks: [{ name: 'seen', fromPeer: (m) => void hooked.push(m.method) }] });
    cleanup.add(() => transport.close());
    transport.onmessage = (m) => void delivered.push(m as JsonRpcMessage);
    transport.onerror = (e) => void errors.push(e);
    await transport.start();
    await transport.send({ jsonrpc: '2.0', id: 1, method: 'ping' });
    await waitFor(() => delivered.some((m) => m.id === 1) && answers.length === 1, 10_000, 'the ping answer and the refusal');
    expect(delivered.map((m) => m.method ?? `answer ${String(m.id)}`)).toEqual(['notifications/message', 'answer 1']);
    expect(hooked).toEqual(['notifications/message', undefined]);
    expect(answers).toEqual([{ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request: the id is not a string or an integer' } }]);
    expect(errors.filter((e) => e instanceof MalformedRequestError)).toHaveLength(2);
  });
});
