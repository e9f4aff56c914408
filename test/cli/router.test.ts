/**
 * The gateway's pure parts: the newline-delimited JSON-RPC reader (framing exactly as the
 * SDK's stdio transports) and the Router that keeps sessions apart on one child (--shared).
 */
import { describe, expect, it } from 'vitest';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcLineReader, serializeLine } from '../../src/cli/stdio.js';
import { CANNOT_ROUTE, CONNECTION_CLOSED, NOT_ENCODABLE, Router } from '../../src/cli/router.js';
import type { RouterPeer } from '../../src/cli/router.js';
import { admissionProblem, checkCommand } from '../../src/cli/serve.js';
import { parseDuration, parseHostPort, parseTime } from '../../src/cli/args.js';

type M = Record<string, unknown>;

function reader(max?: number): { r: JsonRpcLineReader; got: M[]; errors: string[] } {
  const r = new JsonRpcLineReader(max);
  const got: M[] = [];
  const errors: string[] = [];
  r.onmessage = (m) => void got.push(m as unknown as M);
  r.onerror = (e) => void errors.push(e.message);
  return { r, got, errors };
}

describe('newline-delimited JSON-RPC framing', () => {
  it('writes one JSON text per line, as the SDK does', () => {
    const m = { jsonrpc: '2.0', id: 1, method: 'x', params: { text: 'a\nb' } } as JSONRPCMessage;
    const line = serializeLine(m);
    expect(line).toBe(`${JSON.stringify(m)}\n`);
    expect(line.indexOf('\n')).toBe(line.length - 1);
  });

  it('reads lines across arbitrary chunks, tolerating \\r\\n, and never splits UTF-8', () => {
    const { r, got, errors } = reader();
    const text = `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'a', params: { s: 'héllo ✓ 🧪' } })}\r\n\n${JSON.stringify({ jsonrpc: '2.0', method: 'b' })}\n`;
    const bytes = Buffer.from(text, 'utf8');
    for (let i = 0; i < bytes.length; i++) r.push(bytes.subarray(i, i + 1));
    expect(errors).toEqual([]);
    expect(got).toEqual([
      { jsonrpc: '2.0', id: 1, method: 'a', params: { s: 'héllo ✓ 🧪' } },
      { jsonrpc: '2.0', method: 'b' },
    ]);
  });

  it('skips a line that is not JSON or not JSON-RPC 2.0, with its line number, and continues', () => {
    const { r, got, errors } = reader();
    r.push(Buffer.from('not json\n[1,2]\n{"jsonrpc":"1.0","id":1}\n{"jsonrpc":"2.0","id":7,"result":{}}\n'));
    expect(errors).toEqual(['line 1 is not valid JSON; skipped', 'line 2 is not a JSON-RPC 2.0 message; skipped', 'line 3 is not a JSON-RPC 2.0 message; skipped']);
    expect(got).toEqual([{ jsonrpc: '2.0', id: 7, result: {} }]);
  });

  it('drops an over-long line whole and reads the next one', () => {
    const { r, got, errors } = reader(64);
    r.push(Buffer.from(`{"jsonrpc":"2.0","method":"${'x'.repeat(100)}`));
    r.push(Buffer.from(`${'y'.repeat(100)}"}\n{"jsonrpc":"2.0","method":"ok"}\n`));
    expect(errors).toEqual(['line 1 is longer than 64 bytes; dropped']);
    expect(got).toEqual([{ jsonrpc: '2.0', method: 'ok' }]);
  });
});

class FakePeer implements RouterPeer {
  got: M[] = [];
  constructor(readonly tag: string) {}
  send(m: JSONRPCMessage): void {
    this.got.push(m as unknown as M);
  }
}

function setup(): { router: Router; child: M[]; a: FakePeer; b: FakePeer } {
  const child: M[] = [];
  const router = new Router((m) => void child.push(m as unknown as M));
  const a = new FakePeer('a');
  const b = new FakePeer('b');
  router.attach(a);
  router.attach(b);
  return { router, child, a, b };
}

const req = (id: number | string, method: string, params?: M): JSONRPCMessage => ({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) }) as JSONRPCMessage;
const res = (id: number | string, result: M = {}): JSONRPCMessage => ({ jsonrpc: '2.0', id, result }) as JSONRPCMessage;
const note = (method: string, params?: M): JSONRPCMessage => ({ jsonrpc: '2.0', method, ...(params ? { params } : {}) }) as JSONRPCMessage;

describe('Router (one child, many sessions)', () => {
  it('forwards no request whose id is not a string or a number (null included), no request method without an id, and a notification only with its own members (R15-1)', () => {
    const { router, child, a } = setup();
    const call = { method: 'tools/call', params: { name: 'secret' } };
    for (const id of [null, true, {}, []]) router.fromSession(a, { jsonrpc: '2.0', id, ...call } as unknown as JSONRPCMessage);
    router.fromSession(a, { jsonrpc: '2.0', ...call } as JSONRPCMessage);
    router.fromSession(a, note('ping'));
    router.fromSession(a, { jsonrpc: '2.0', method: 'notifications/roots/list_changed', params: { x: 1 }, id: undefined, result: {}, extra: 1 } as unknown as JSONRPCMessage);
    expect(child).toEqual([{ jsonrpc: '2.0', method: 'notifications/roots/list_changed', params: { x: 1 } }]);
    expect(a.got).toEqual([]);
  });

  it("a session's message nested too deeply to write to the child's stdin is answered in its place, never left waiting (review 17, R17-6); on a Node whose JSON.stringify writes any depth (26), forwarded", () => {
    // The child's real encoding (serializeLine: JSON.stringify): it throws a RangeError a few
    // thousand levels down on Node 20 and 24, on a value JSON.parse took from the session.
    const lines: string[] = [];
    const router = new Router((m) => void lines.push(serializeLine(m)));
    const a = new FakePeer('a');
    router.attach(a);
    const deep = JSON.parse(`${'['.repeat(20_000)}${']'.repeat(20_000)}`) as unknown;
    const throws = ((): boolean => {
      try {
        JSON.stringify(deep);
        return false;
      } catch {
        return true;
      }
    })();
    router.fromSession(a, req(7, 'tools/call', { name: 'x', arguments: { deep } }));
    router.fromSession(a, note('notifications/message', { data: deep }));
    // A request of the child's, answered by the session with a deep result.
    router.fromChild(req(40, 'sampling/createMessage', {}));
    router.fromSession(a, res(40, { deep } as M));
    // The session goes on: its next request is forwarded.
    router.fromSession(a, req(8, 'tools/call', { name: 'y' }));
    const forwarded = lines.map((l) => (l.length > 200 ? 'deep' : (JSON.parse(l) as M)));
    if (throws) {
      expect(a.got.filter((m) => m['id'] === 7)).toEqual([{ jsonrpc: '2.0', id: 7, error: { code: -32600, message: NOT_ENCODABLE } }]);
      expect(forwarded).toEqual([{ jsonrpc: '2.0', id: 40, error: { code: -32603, message: NOT_ENCODABLE } }, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'y' } }]);
    } else {
      expect(a.got.filter((m) => m['id'] === 7)).toEqual([]);
      expect(forwarded).toEqual(['deep', 'deep', 'deep', { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'y' } }]);
    }
  });

  it('rewrites equal ids from two sessions and routes each answer back to its session', () => {
    const { router, child, a, b } = setup();
    router.fromSession(a, req(1, 'tools/call', { name: 'x' }));
    router.fromSession(b, req(1, 'tools/call', { name: 'y' }));
    expect(child.map((m) => m['id'])).toEqual([1, 2]);
    router.fromChild(res(2, { who: 'b' }));
    router.fromChild(res(1, { who: 'a' }));
    expect(a.got).toEqual([{ jsonrpc: '2.0', id: 1, result: { who: 'a' } }]);
    expect(b.got).toEqual([{ jsonrpc: '2.0', id: 1, result: { who: 'b' } }]);
  });

  it('initializes the child once and answers later sessions from the cached result', () => {
    const { router, child, a, b } = setup();
    router.fromSession(a, req(0, 'initialize', { protocolVersion: '2025-06-18' }));
    router.fromSession(b, req('init-b', 'initialize', { protocolVersion: '2025-06-18' }));
    expect(child).toHaveLength(1);
    router.fromChild(res(1, { serverInfo: { name: 's' } }));
    expect(a.got).toEqual([{ jsonrpc: '2.0', id: 0, result: { serverInfo: { name: 's' } } }]);
    expect(b.got).toEqual([{ jsonrpc: '2.0', id: 'init-b', result: { serverInfo: { name: 's' } } }]);
    router.fromSession(a, note('notifications/initialized'));
    router.fromSession(b, note('notifications/initialized'));
    expect(child.filter((m) => m['method'] === 'notifications/initialized')).toHaveLength(1);
    const c = new FakePeer('c');
    router.attach(c);
    router.fromSession(c, req(5, 'initialize'));
    expect(c.got).toEqual([{ jsonrpc: '2.0', id: 5, result: { serverInfo: { name: 's' } } }]);
    expect(child).toHaveLength(2);
  });

  it('rewrites progress tokens and routes progress notifications to the right session only', () => {
    const { router, child, a, b } = setup();
    router.fromSession(a, req(1, 'tools/call', { name: 'slow', _meta: { progressToken: 'tok' } }));
    router.fromSession(b, req(1, 'tools/call', { name: 'slow', _meta: { progressToken: 'tok' } }));
    const tokens = child.map((m) => ((m['params'] as M)['_meta'] as M)['progressToken']);
    expect(new Set(tokens).size).toBe(2);
    router.fromChild(note('notifications/progress', { progressToken: tokens[1], progress: 1 }));
    expect(a.got).toEqual([]);
    expect(b.got).toEqual([{ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'tok', progress: 1 } }]);
  });

  it('rewrites cancellations to the gateway id, drops ones for unknown ids', () => {
    const { router, child, a, b } = setup();
    router.fromSession(a, req(9, 'tools/call'));
    router.fromSession(b, note('notifications/cancelled', { requestId: 9 }));
    expect(child).toHaveLength(1);
    router.fromSession(a, note('notifications/cancelled', { requestId: 9, reason: 'user' }));
    expect(child[1]).toEqual({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, reason: 'user' } });
  });

  it('a cancelled request is forgotten: an answer the child sends anyway, and its progress, reach no session (review 8 L1)', () => {
    const { router, child, a } = setup();
    router.fromSession(a, req(9, 'tools/list', { _meta: { progressToken: 'p' } }));
    expect(router.inFlight(a)).toBe(1);
    router.fromSession(a, note('notifications/cancelled', { requestId: 9 }));
    expect(router.inFlight(a)).toBe(0);
    const token = ((child[0]!['params'] as M)['_meta'] as M)['progressToken'];
    router.fromChild(note('notifications/progress', { progressToken: token, progress: 1 }));
    router.fromChild({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'secret' }] } } as JSONRPCMessage);
    expect(a.got).toEqual([]);
    // The session's next request, even under the same id, gets its own answer only.
    router.fromSession(a, req(9, 'ping'));
    router.fromChild({ jsonrpc: '2.0', id: 2, result: {} } as JSONRPCMessage);
    expect(a.got).toEqual([{ jsonrpc: '2.0', id: 9, result: {} }]);
  });

  it('2026-07-28 listen streams: the subscription-id stamp is mapped back and reaches only the session that listens', () => {
    const { router, child, a, b } = setup();
    const SUB = 'io.modelcontextprotocol/subscriptionId';
    router.fromSession(a, req(7, 'subscriptions/listen', { notifications: { resourceSubscriptions: ['config://app'] } }));
    router.fromSession(b, req(7, 'subscriptions/listen', { notifications: { resourceSubscriptions: ['config://app'] } }));
    expect(child.map((m) => m['id'])).toEqual([1, 2]);
    router.fromChild(note('notifications/subscriptions/acknowledged', { _meta: { [SUB]: 2 } }));
    router.fromChild(note('notifications/resources/updated', { uri: 'config://app', _meta: { [SUB]: 1, other: 'kept' } }));
    // A stamp the router never issued (or a stream already ended) goes nowhere.
    router.fromChild(note('notifications/resources/updated', { uri: 'config://app', _meta: { [SUB]: 99 } }));
    router.fromChild(note('notifications/resources/updated', { uri: 'config://app', _meta: { [SUB]: 'x' } }));
    expect(a.got).toEqual([{ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'config://app', _meta: { [SUB]: 7, other: 'kept' } } }]);
    expect(b.got).toEqual([{ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { _meta: { [SUB]: 7 } } }]);
    // The stream's graceful end: its result, stamped, under the session's id.
    router.fromChild(res(1, { resultType: 'complete', _meta: { [SUB]: 1 } }));
    expect(a.got[1]).toEqual({ jsonrpc: '2.0', id: 7, result: { resultType: 'complete', _meta: { [SUB]: 7 } } });
    router.fromChild(note('notifications/resources/updated', { uri: 'config://app', _meta: { [SUB]: 1 } }));
    expect(a.got).toHaveLength(2);
  });

  it('sends a server->client request to the only session with requests in flight, and its answer back', () => {
    const { router, child, a, b } = setup();
    router.fromSession(b, req(3, 'tools/call', { name: 'ask' }));
    router.fromChild(req('srv-1', 'sampling/createMessage', { messages: [] }));
    expect(a.got).toEqual([]);
    expect(b.got).toEqual([{ jsonrpc: '2.0', id: 'srv-1', method: 'sampling/createMessage', params: { messages: [] } }]);
    router.fromSession(a, res('srv-1', { forged: true }));
    router.fromSession(b, res('srv-1', { content: 'hi' }));
    expect(child.slice(1)).toEqual([{ jsonrpc: '2.0', id: 'srv-1', result: { content: 'hi' } }]);
  });

  it('refuses (to the child) a server->client request it cannot attribute to one session', () => {
    const { router, child, a, b } = setup();
    router.fromSession(a, req(1, 'tools/call'));
    router.fromSession(b, req(1, 'tools/call'));
    router.fromChild(req(77, 'elicitation/create', {}));
    expect(a.got).toEqual([]);
    expect(b.got).toEqual([]);
    expect(child[2]).toMatchObject({ id: 77, error: { code: CANNOT_ROUTE, message: expect.stringContaining('cannot tell which of 2 sessions') } });
  });

  it('broadcasts server-wide notifications; resources/updated only to subscribers; unsubscribe kept local while shared', () => {
    const { router, child, a, b } = setup();
    router.fromChild(note('notifications/tools/list_changed'));
    expect(a.got).toHaveLength(1);
    expect(b.got).toHaveLength(1);
    router.fromSession(a, req(1, 'resources/subscribe', { uri: 'r://1' }));
    router.fromSession(b, req(1, 'resources/subscribe', { uri: 'r://1' }));
    router.fromChild(res(1));
    router.fromChild(res(2));
    router.fromSession(a, req(2, 'resources/unsubscribe', { uri: 'r://1' }));
    expect(a.got.at(-1)).toEqual({ jsonrpc: '2.0', id: 2, result: {} });
    expect(child.filter((m) => m['method'] === 'resources/unsubscribe')).toHaveLength(0);
    router.fromChild(note('notifications/resources/updated', { uri: 'r://1' }));
    expect(b.got.at(-1)).toEqual({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'r://1' } });
    expect(a.got.at(-1)).toEqual({ jsonrpc: '2.0', id: 2, result: {} });
    // The last subscriber leaves: the child is unsubscribed by the gateway.
    router.detach(b);
    expect(child.at(-1)).toMatchObject({ method: 'resources/unsubscribe', params: { uri: 'r://1' }, id: expect.stringMatching(/^pqmcp-gateway-/) });
  });

  it('a session that ends has its requests cancelled at the child; requests routed to it are answered with an error', () => {
    const { router, child, a } = setup();
    router.fromSession(a, req(1, 'tools/call', { name: 'ask' }));
    router.fromChild(req('srv-1', 'sampling/createMessage', {}));
    router.detach(a);
    expect(child.slice(1)).toEqual([
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, reason: 'the pqmcp session ended' } },
      { jsonrpc: '2.0', id: 'srv-1', error: { code: CONNECTION_CLOSED, message: expect.stringContaining('ended before answering') } },
    ]);
  });

  it('when the child is gone, every request in flight gets an error in its own session', () => {
    const { router, a, b } = setup();
    router.fromSession(a, req('x', 'tools/call'));
    router.fromSession(a, req('y', 'tools/call'));
    router.fromSession(b, req(4, 'ping'));
    const lost = router.childGone('the MCP server process exited with code 3');
    expect(lost.get(a)).toBe(2);
    expect(lost.get(b)).toBe(1);
    expect(a.got.map((m) => m['id'])).toEqual(['x', 'y']);
    expect(b.got).toEqual([{ jsonrpc: '2.0', id: 4, error: { code: CONNECTION_CLOSED, message: 'the MCP server process exited with code 3' } }]);
  });

  it('a session waiting for the shared initialize still gets it when the first session left', () => {
    const { router, a, b } = setup();
    router.fromSession(a, req(1, 'initialize'));
    router.fromSession(b, req(1, 'initialize'));
    router.detach(a);
    router.fromChild(res(1, { ok: true }));
    expect(b.got).toEqual([{ jsonrpc: '2.0', id: 1, result: { ok: true } }]);
    expect(a.got).toEqual([]);
  });
});

describe('gateway admission and argument parsing', () => {
  const peer = { agentId: 'agent://acme/planner', scopes: ['tools:call'], attributes: { team: 'a' } };

  it('admits by id (exact or prefix*), scope and attribute', () => {
    expect(admissionProblem(peer, { allowIds: [], scopes: [], attributes: [] })).toBeUndefined();
    expect(admissionProblem(peer, { allowIds: ['agent://acme/*'], scopes: ['tools:call'], attributes: [['team', 'a']] })).toBeUndefined();
    expect(admissionProblem(peer, { allowIds: ['agent://acme/other'], scopes: [], attributes: [] })).toMatch(/not an allowed agent id/);
    expect(admissionProblem(peer, { allowIds: [], scopes: ['tools:call', 'admin'], attributes: [] })).toMatch(/lacks required scope admin/);
    expect(admissionProblem(peer, { allowIds: [], scopes: [], attributes: [['team', 'b']] })).toMatch(/lacks required attribute team=b/);
  });

  it('finds commands in PATH and refuses missing ones', () => {
    expect(() => checkCommand('node')).not.toThrow();
    expect(() => checkCommand(process.execPath)).not.toThrow();
    expect(() => checkCommand('/no/such/server')).toThrow(/not found or not executable/);
  });

  it('parses durations, times and listen addresses', () => {
    expect(parseDuration('90m', 'x')).toBe(5400);
    expect(parseDuration('1y', 'x')).toBe(365 * 86400);
    expect(() => parseDuration('0', 'x')).toThrow(/positive/);
    expect(parseTime('2026-01-31T00:00:00Z', 'x')).toBe(Date.parse('2026-01-31T00:00:00Z') / 1000);
    expect(parseTime('1700000000', 'x')).toBe(1_700_000_000);
    // The forms docs/cli.md promises, each read as UTC or with its own offset, whatever the
    // machine's time zone (a time with neither was local time to Date.parse: refused now).
    const noon = Date.UTC(2026, 0, 31, 12) / 1000;
    for (const t of ['2026-01-31T12:00:00Z', '2026-01-31T12:00Z', '2026-01-31T13:00:00+01:00', '2026-01-31T06:30:00-05:30', '2026-01-31T12:00:00.999Z', '2026-01-31t12:00:00z']) expect(parseTime(t, 'x'), t).toBe(noon);
    expect(parseTime('2026-01-31', 'x')).toBe(Date.UTC(2026, 0, 31) / 1000); // a date: midnight UTC
    expect(parseTime('2028-02-29T23:59:59-00:30', 'x')).toBe(Date.UTC(2028, 2, 1, 0, 29, 59) / 1000);
    expect(parseTime('1970-01-01T00:00:00Z', 'x')).toBe(0);
    expect(() => parseTime('1969-12-31T23:59:59Z', 'x')).toThrow('x must be');
    const tz = process.env['TZ'];
    try {
      process.env['TZ'] = 'Asia/Kolkata'; // +05:30: a local reading would be off by hours
      expect(parseTime('2026-01-31T12:00:00Z', 'x')).toBe(noon);
      expect(() => parseTime('2026-01-31 12:00', 'x')).toThrow('x must be');
    } finally {
      if (tz === undefined) delete process.env['TZ'];
      else process.env['TZ'] = tz;
    }
    expect(parseHostPort('127.0.0.1:7443', 'x')).toEqual({ host: '127.0.0.1', port: 7443 });
    expect(parseHostPort('[::1]:0', 'x')).toEqual({ host: '::1', port: 0 });
    expect(parseHostPort(':8080', 'x')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(() => parseHostPort('localhost:99999', 'x')).toThrow(/host:port/);
  });
});
