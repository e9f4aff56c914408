/**
 * Requests the MCP SDKs drop unanswered (review: requests in flight, item 1). Both SDK
 * majors drop a request whose envelope their JSONRPCRequestSchema rejects (an id that is not
 * a string or a safe integer, an extra member, params or params._meta of the wrong shape)
 * with an "Unknown message type" error of their own: before, such a request kept its slot
 * and bytes in flight for the whole session. The pipeline now refuses it with Invalid
 * Request (-32600) before any hook. A request that fits but whose params its handler
 * rejects is answered by the SDK, which ends its entry. Real SDK servers (1.x and 2.x), real
 * sockets on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { McpServer as McpServer1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import { isJSONRPCRequest as isRequest1 } from '@modelcontextprotocol/sdk/types.js';
import { McpServer as McpServer2, isJSONRPCRequest as isRequest2Server } from '@modelcontextprotocol/server';
import { isJSONRPCRequest as isRequest2Client } from '@modelcontextprotocol/client';
import { z } from 'zod';
import * as z4 from 'zod4';
import type { JsonRpcMessage } from '../../src/transport/index.js';
import { requestEnvelopeFault } from '../../src/transport/jsonrpc.js';
import { MalformedRequestError } from '../../src/errors.js';
import type { PqmcpError } from '../../src/errors.js';
import { Cleanup, startServer, waitFor } from '../helpers/mcp.js';
import { rawInitializedSession } from '../helpers/raw-session.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const TASK = 'io.modelcontextprotocol/related-task';
/** Requests the SDKs drop unanswered: [what, request without jsonrpc, the id of its refusal]. */
const MALFORMED: Array<[string, Record<string, unknown>, string | number | null]> = [
  ['id 1.5', { id: 1.5, method: 'ping' }, 1.5],
  ['id 1e300', { id: 1e300, method: 'ping' }, 1e300],
  ['id 2^53 + 2', { id: 2 ** 53 + 2, method: 'ping' }, 2 ** 53 + 2],
  ['id null', { id: null, method: 'ping' }, null],
  ['id true', { id: true, method: 'ping' }, null],
  ['id {}', { id: {}, method: 'ping' }, null],
  ['id []', { id: [], method: 'ping' }, null],
  ['an extra member', { id: 'm1', method: 'ping', extra: 1 }, 'm1'],
  ['a result member', { id: 'm2', method: 'ping', result: {} }, 'm2'],
  ['params []', { id: 'p1', method: 'ping', params: [] }, 'p1'],
  ['params null', { id: 'p2', method: 'ping', params: null }, 'p2'],
  ['params "s"', { id: 'p3', method: 'ping', params: 's' }, 'p3'],
  ['params 5', { id: 'p4', method: 'ping', params: 5 }, 'p4'],
  ['_meta "s"', { id: 'p5', method: 'ping', params: { _meta: 's' } }, 'p5'],
  ['_meta null', { id: 'p6', method: 'ping', params: { _meta: null } }, 'p6'],
  ['_meta []', { id: 'p7', method: 'ping', params: { _meta: [] } }, 'p7'],
  ['progressToken true', { id: 'p8', method: 'ping', params: { _meta: { progressToken: true } } }, 'p8'],
  ['progressToken 1.5', { id: 'p9', method: 'ping', params: { _meta: { progressToken: 1.5 } } }, 'p9'],
  ['related-task "x"', { id: 'p10', method: 'ping', params: { _meta: { [TASK]: 'x' } } }, 'p10'],
  ['related-task { taskId: 1 }', { id: 'p11', method: 'ping', params: { _meta: { [TASK]: { taskId: 1 } } } }, 'p11'],
  ['related-task null', { id: 'p12', method: 'ping', params: { _meta: { [TASK]: null } } }, 'p12'],
];
/** Requests the SDKs take (and answer). */
const WELL_FORMED: Array<Record<string, unknown>> = [
  { id: 0, method: 'ping' },
  { id: -5, method: 'ping' },
  { id: '', method: 'ping' },
  { id: 2 ** 53 - 1, method: 'ping' },
  { id: 'a', method: 'x', params: {} },
  { id: 'b', method: 'x', params: { anything: [1, null], _meta: {} } },
  { id: 'c', method: 'x', params: { _meta: { progressToken: 't', other: [1], [TASK]: { taskId: 't', more: 1 } } } },
  { id: 'd', method: 'x', params: { _meta: { progressToken: -3 } } },
  { id: 'e', method: 'tools/call', params: {} },
];

describe('the request envelope the MCP SDKs accept', () => {
  it('requestEnvelopeFault agrees with both SDK majors\' own guard (1.x, 2.x server and client)', () => {
    for (const [what, body] of MALFORMED) {
      const m = { jsonrpc: '2.0', ...body };
      expect([what, isRequest1(m), isRequest2Server(m), isRequest2Client(m)]).toEqual([what, false, false, false]);
      expect(requestEnvelopeFault(m), what).toEqual(expect.any(String));
    }
    for (const body of WELL_FORMED) {
      const m = { jsonrpc: '2.0', ...body };
      expect([body, isRequest1(m), isRequest2Server(m), isRequest2Client(m)]).toEqual([body, true, true, true]);
      expect(requestEnvelopeFault(m)).toBeUndefined();
    }
  });
});

const LIMIT = 2_000;

/** A session factory of SDK `major` with a `hold` tool whose calls wait on `gates`. */
function holdServer(major: 1 | 2, gates: Array<() => void>) {
  const hold = async () => new Promise<{ content: [] }>((resolve) => gates.push(() => resolve({ content: [] })));
  return () => {
    if (major === 1) {
      const mcp = new McpServer1({ name: 'hold', version: '1' });
      mcp.registerTool('hold', { inputSchema: { pad: z.string() } }, hold);
      return mcp;
    }
    const mcp = new McpServer2({ name: 'hold', version: '1' });
    mcp.registerTool('hold', { inputSchema: { pad: z4.string() } }, hold);
    return mcp;
  };
}

describe.each([1, 2] as const)('a listener in front of an SDK %s.x server', (major) => {
  it('refuses every request the SDK would drop with Invalid Request (-32600) before any hook; none holds bytes or a slot, and one whose params the handler rejects is answered by the SDK and frees its bytes', { timeout: 30_000 }, async () => {
    const gates: Array<() => void> = [];
    const hooked: unknown[] = [];
    const server = await startServer(cleanup, holdServer(major, gates), {
      maxRequestBytesInFlight: LIMIT,
      hooks: [{ name: 'seen', fromPeer: (m) => void (m.method === 'ping' && hooked.push(m.id)) }],
    });
    const errors: PqmcpError[] = [];
    server.on('session', (t) => {
      t.onerror = (e) => void errors.push(e as PqmcpError);
    });
    const { transport, answers } = await rawInitializedSession(server.url, cleanup, 'init');

    // Each one padded so that, held, it would fill the session's budget on its own.
    const pad = 'x'.repeat(LIMIT);
    for (const [, body] of MALFORMED) await transport.send({ jsonrpc: '2.0', ...body, pad } as unknown as JsonRpcMessage);
    await waitFor(() => answers.length === MALFORMED.length, 10_000, 'an answer to every malformed request');
    expect(answers.map((a) => a.id)).toEqual(MALFORMED.map(([, , id]) => id));
    for (const a of answers) expect(a.error).toEqual({ code: -32600, message: expect.stringMatching(/^Invalid Request: /) });
    expect(errors).toHaveLength(MALFORMED.length);
    for (const e of errors) expect(e).toBeInstanceOf(MalformedRequestError);
    expect(hooked).toEqual([]);

    // Fits the envelope, but the handler's schema rejects it: the SDK answers it.
    // (A tool's arguments it rejects: a result with isError; no tool name: a JSON-RPC error.)
    for (const [id, params] of [['bad-params', { name: 'hold', arguments: { pad: 5, more: pad } }], ['no-name', { arguments: { pad } }]] as const) {
      answers.length = 0;
      await transport.send({ jsonrpc: '2.0', id, method: 'tools/call', params } as unknown as JsonRpcMessage);
      await waitFor(() => answers.length === 1, 10_000, `the SDK's answer to ${id}`);
      expect(answers[0]!.id).toBe(id);
      expect(answers[0]!.error === undefined ? (answers[0]!.result as { isError?: boolean }).isError : answers[0]!.error.code).toSatisfy((v: unknown) => v === true || v === -32602 || v === -32603);
    }

    // Nothing is held: two calls that together fill the budget both run.
    answers.length = 0;
    await transport.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'hold', arguments: { pad: 'y'.repeat(LIMIT / 2) } } });
    await transport.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'hold', arguments: { pad: 'y'.repeat(LIMIT / 4) } } });
    await waitFor(() => gates.length === 2 || answers.length > 0, 10_000, 'both calls running');
    expect(answers).toEqual([]);
    expect(gates).toHaveLength(2);
    for (const open of gates) open();
    await waitFor(() => answers.length === 2, 10_000, 'both answers');
  });
});
