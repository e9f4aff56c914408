/**
 * The request auditor (src/audit/request-hook.ts) keeps its work off the response's path:
 * the event of a response this side sends is made after the turn's writes were handed on,
 * the digest of a request from the peer after the turn in which it reached its handler, and
 * yet every event keeps its order and its digests are of the bytes as they crossed. The
 * first part drives a real MessagePipeline whose `toPeer` schedules the write as the
 * transport's batch writer does (a setImmediate, scheduled once the hooks have returned);
 * the second, real SDK clients and servers over real sockets, both sides auditing; the
 * third, a server answering with shapes no SDK takes (`"error": null`, `"result": null`).
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { requestAuditor } from '../../src/audit/request-hook.js';
import type { AuditEvent, RequestEvent } from '../../src/audit/index.js';
import { MessageHookError } from '../../src/errors.js';
import type { PqmcpError } from '../../src/errors.js';
import { MessagePipeline, PqmcpClientTransport, listen } from '../../src/transport/index.js';
import type { JsonRpcMessage } from '../../src/transport/index.js';
import { Cleanup, SERVER_ID, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';
import { agent, trustFor } from '../helpers/identities.js';

const sha = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');
const encode = (m: JsonRpcMessage): Uint8Array => new TextEncoder().encode(JSON.stringify(m));
const requests = (events: AuditEvent[]): RequestEvent[] => events.filter((e): e is RequestEvent => e.type === 'request');
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const peer = { agentId: 'agent://t/client', issuer: 'issuer://t', fingerprint: 'f'.repeat(64), serial: '01' };

function pipelineWithAuditor(order: string[], events: AuditEvent[]) {
  const written: Uint8Array[] = [];
  const pipeline = new MessagePipeline(
    [requestAuditor((e) => (events.push(e), order.push(`audit ${(e as RequestEvent).method}`)))],
    { role: 'server', peer: peer as never, sessionId: 's1', remoteAddress: '127.0.0.1' },
    {
      toPeer: (data) => {
        written.push(data);
        // The transport's batch writer hands a turn's records to the socket in a setImmediate.
        setImmediate(() => order.push('written'));
        return Promise.resolve();
      },
      toLocal: () => order.push('handler'),
      onerror: (error) => {
        throw error;
      },
    },
  );
  return { pipeline, written };
}

describe('the request auditor, off the response path', () => {
  it('makes the event of an answer after the answer was handed to the wire, with the digests of the bytes that crossed', async () => {
    const order: string[] = [];
    const events: AuditEvent[] = [];
    const { pipeline, written } = pipelineWithAuditor(order, events);
    const request: JsonRpcMessage = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x'.repeat(5000) } } };
    const requestBytes = encode(request);
    pipeline.fromPeer(request, requestBytes.length, requestBytes);
    expect(order).toEqual(['handler']);
    await pipeline.toPeer({ jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'x' }] } });
    // Nothing audited yet: the answer's write comes first.
    expect(events).toEqual([]);
    await turn();
    await turn();
    expect(order).toEqual(['handler', 'written', 'audit tools/call']);
    const [event] = requests(events);
    expect(event).toMatchObject({ method: 'tools/call', name: 'echo', outcome: 'ok', direction: 'fromPeer', requestBytes: requestBytes.length, responseBytes: written[0]!.length });
    expect(event!.requestHash).toBe(sha(requestBytes));
    expect(event!.responseHash).toBe(sha(written[0]!));
  });

  it('keeps the order of events, and a session that ends first delivers its queued events before its unanswered ones', () => {
    const order: string[] = [];
    const events: AuditEvent[] = [];
    const { pipeline } = pipelineWithAuditor(order, events);
    for (const id of [1, 2, 3]) {
      const m: JsonRpcMessage = { jsonrpc: '2.0', id, method: `m${id}`, params: {} };
      pipeline.fromPeer(m, 10, encode(m));
    }
    void pipeline.toPeer({ jsonrpc: '2.0', id: 2, result: {} });
    void pipeline.toPeer({ jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'no' } });
    expect(events).toEqual([]);
    pipeline.close();
    const seen = requests(events).map((e) => [e.method, e.outcome, typeof e.requestHash]);
    expect(seen).toEqual([
      ['m2', 'ok', 'string'],
      ['m1', 'error', 'string'],
      ['m3', 'unanswered', 'string'],
    ]);
    expect(requests(events)[2]!.requestHash).toBe(sha(encode({ jsonrpc: '2.0', id: 3, method: 'm3', params: {} })));
  });

  it('keeps the order when a sink closes another session from an event (the nested drain goes on where the outer one was)', () => {
    const events: RequestEvent[] = [];
    let second: MessagePipeline | undefined;
    const auditor = requestAuditor((e) => {
      events.push(e as RequestEvent);
      // A sink that ends a session on what it sees (say, a budget spent): closed() drains.
      if ((e as RequestEvent).method === 'a1') second!.close();
    });
    const open = (sessionId: string) => new MessagePipeline([auditor], { role: 'server', peer: peer as never, sessionId, remoteAddress: '127.0.0.1' }, { toPeer: () => Promise.resolve(), toLocal: () => {}, onerror: () => {} });
    const first = open('a');
    second = open('b');
    const ask = (p: MessagePipeline, id: number, method: string) => p.fromPeer({ jsonrpc: '2.0', id, method, params: {} }, 10);
    ask(first, 1, 'a1');
    ask(second, 1, 'b1');
    ask(second, 2, 'b2');
    void first.toPeer({ jsonrpc: '2.0', id: 1, result: {} });
    void second.toPeer({ jsonrpc: '2.0', id: 1, result: {} });
    first.close();
    expect(events.map((e) => `${e.method} ${e.outcome}`)).toEqual(['a1 ok', 'b1 ok', 'b2 unanswered']);
  });

  it('with content on, emits at once (the event carries the application objects as they were sent)', async () => {
    const events: AuditEvent[] = [];
    const pipeline = new MessagePipeline([requestAuditor((e) => events.push(e), { content: true })], { role: 'server', peer: peer as never, sessionId: 's2', remoteAddress: '127.0.0.1' }, { toPeer: () => Promise.resolve(), toLocal: () => {}, onerror: () => {} });
    const m: JsonRpcMessage = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 't', arguments: { a: 1 } } };
    pipeline.fromPeer(m, 10, encode(m));
    const result = { content: [] as unknown[] };
    await pipeline.toPeer({ jsonrpc: '2.0', id: 1, result });
    expect(requests(events)).toHaveLength(1);
    expect(requests(events)[0]).toMatchObject({ arguments: { a: 1 }, result });
  });
});

describe('a deferred audit job that fails', () => {
  /** An inner hook that leaves, on the requests named `odd`, a note the auditor cannot read. */
  const oddNotes = {
    name: 'odd-notes',
    fromPeer(message: JsonRpcMessage, ctx: { request: { notes: Record<string, unknown> } | undefined }) {
      if (message.method === 'odd' && ctx.request) {
        Object.defineProperty(ctx.request.notes, 'policy', {
          enumerable: true,
          get() {
            throw new Error('unreadable note');
          },
        });
      }
      return undefined;
    },
  };
  function session(onerror: (error: PqmcpError) => void, events: RequestEvent[], sessionId = 'f1') {
    const auditor = requestAuditor((e) => events.push(e as RequestEvent));
    return new MessagePipeline([auditor, oddNotes], { role: 'server', peer: peer as never, sessionId, remoteAddress: '127.0.0.1' }, { toPeer: () => Promise.resolve(), toLocal: () => {}, onerror });
  }
  const ask = (p: MessagePipeline, id: number, method: string) => {
    const m: JsonRpcMessage = { jsonrpc: '2.0', id, method, params: {} };
    p.fromPeer(m, 10, encode(m));
  };

  it('is reported to the transport as a hook failure (ERR_MESSAGE_HOOK), and the events after it still come, in order', async () => {
    const errors: PqmcpError[] = [];
    const events: RequestEvent[] = [];
    const pipeline = session((e) => errors.push(e), events);
    ask(pipeline, 1, 'm1');
    ask(pipeline, 2, 'odd');
    ask(pipeline, 3, 'm3');
    for (const id of [1, 2, 3]) void pipeline.toPeer({ jsonrpc: '2.0', id, result: {} });
    expect(errors).toEqual([]);
    await turn();
    await turn();
    expect(events.map((e) => `${e.method} ${e.outcome}`)).toEqual(['m1 ok', 'm3 ok']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(MessageHookError);
    expect(errors[0]!.code).toBe('ERR_MESSAGE_HOOK');
    expect(errors[0]!.message).toContain('message hook audit failed');
    expect(errors[0]!.message).toContain('nothing was refused');
    expect((errors[0]!.cause as Error).message).toBe('unreadable note');
  });

  it('does not stop the queue when onerror itself throws: later turns are still audited', async () => {
    const events: RequestEvent[] = [];
    let reported = 0;
    const pipeline = session(() => {
      reported++;
      throw new Error('onerror throws too');
    }, events);
    ask(pipeline, 1, 'odd');
    ask(pipeline, 2, 'm2');
    void pipeline.toPeer({ jsonrpc: '2.0', id: 1, result: {} });
    void pipeline.toPeer({ jsonrpc: '2.0', id: 2, result: {} });
    await turn();
    await turn();
    ask(pipeline, 3, 'm3');
    void pipeline.toPeer({ jsonrpc: '2.0', id: 3, result: {} });
    await turn();
    await turn();
    expect(reported).toBe(1);
    expect(events.map((e) => `${e.method} ${e.outcome}`)).toEqual(['m2 ok', 'm3 ok']);
  });

  it("at the session's end, costs only its own unanswered event, and is reported", () => {
    const errors: PqmcpError[] = [];
    const events: RequestEvent[] = [];
    const pipeline = session((e) => errors.push(e), events, 'f3');
    ask(pipeline, 1, 'odd');
    ask(pipeline, 2, 'm2');
    pipeline.close();
    expect(events.map((e) => `${e.method} ${e.outcome}`)).toEqual(['m2 unanswered']);
    expect(errors.map((e) => e.code)).toEqual(['ERR_MESSAGE_HOOK']);
    expect((errors[0]!.cause as Error).message).toBe('unreadable note');
  });
});

describe('both sides audit the same bytes (real SDK, real sockets)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('gives every call the same request and response digests on the client and the server, for small, batched and large messages', { timeout: 30_000 }, async () => {
    const serverEvents: AuditEvent[] = [];
    const clientEvents: AuditEvent[] = [];
    const { url } = await startFeatureServer(cleanup, { onAuditEvent: (e) => serverEvents.push(e) });
    const { client } = await connectClient(cleanup, url, { onAuditEvent: (e) => clientEvents.push(e) });
    // Small ones in flight together share records; 100 KiB ones take records of their own.
    const texts = [...Array.from({ length: 20 }, (_, i) => `small ${i}`), ...Array.from({ length: 3 }, (_, i) => String(i).repeat(100_000))];
    await Promise.all(texts.map((text) => client.callTool({ name: 'echo', arguments: { text } })));
    await waitFor(() => requests(serverEvents).filter((e) => e.method === 'tools/call').length === texts.length, 5_000, 'server events');
    const calls = (events: AuditEvent[]) => requests(events).filter((e) => e.method === 'tools/call');
    const key = (e: RequestEvent) => `${e.requestHash} ${e.responseHash} ${e.requestBytes} ${e.responseBytes}`;
    expect(calls(clientEvents)).toHaveLength(texts.length);
    expect(calls(serverEvents).map(key).sort()).toEqual(calls(clientEvents).map(key).sort());
    expect(new Set(calls(serverEvents).map((e) => e.responseHash)).size).toBe(texts.length);
  });
});

describe('answers of a malformed shape (review 15, R15-3, R15-8; real sockets)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** A raw listener answering each method as `answers` says (else `result: {}`), and an auditing client. */
  async function answeredBy(answers: Record<string, Record<string, unknown>>) {
    const server = await listen({ identity: agent(SERVER_ID), trust: trustFor(), host: '127.0.0.1', port: 0 });
    cleanup.add(() => server.close());
    server.on('session', (t) => {
      t.onmessage = (m) => {
        const r = m as JsonRpcMessage;
        if (r.method !== undefined && r.id !== undefined) void t.send({ jsonrpc: '2.0', id: r.id, ...(answers[r.method] ?? { result: {} }) } as never);
      };
      void t.start();
    });
    const events: AuditEvent[] = [];
    const errors: PqmcpError[] = [];
    const got: JsonRpcMessage[] = [];
    const transport = new PqmcpClientTransport(server.url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), expectedServerId: SERVER_ID, onAuditEvent: (e) => void events.push(e) });
    cleanup.add(() => transport.close());
    transport.onmessage = (m) => void got.push(m as JsonRpcMessage);
    transport.onerror = (e) => void errors.push(e as PqmcpError);
    await transport.start();
    return { transport, events, errors, got };
  }

  it('"error": null, "result": null and a result that is no object are recorded as errors, not lost and not ok', async () => {
    const { transport, events, errors, got } = await answeredBy({ 'tools/call': { error: null }, 'prompts/get': { result: null }, 'resources/read': { result: 'text' } });
    await transport.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'transfer', arguments: { amount: 100 } } });
    await transport.send({ jsonrpc: '2.0', id: 2, method: 'prompts/get', params: { name: 'p' } });
    await transport.send({ jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: 'file:///x' } });
    await transport.send({ jsonrpc: '2.0', id: 4, method: 'ping' });
    await waitFor(() => got.some((m) => m.id === 4), 5_000, 'ping');
    expect(requests(events).map((e) => `${e.method} ${e.name} ${e.outcome} ${e.errorCode}`)).toEqual([
      'tools/call transfer error undefined',
      'prompts/get p error undefined',
      'resources/read file:///x error undefined',
      'ping undefined ok undefined',
    ]);
    // Nothing failed on the way: each answer reached the application as the server sent it.
    expect(errors).toEqual([]);
    expect(got.map((m) => m.id)).toEqual([1, 2, 3, 4]);
  });

});
