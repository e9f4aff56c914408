/**
 * Requests related to a task (review 10, R10-2). An SDK 1.x server with the experimental
 * tasks feature (`taskStore` + `taskMessageQueue`) never answers, on the transport, a
 * request whose `params._meta["io.modelcontextprotocol/related-task"].taskId` names one of
 * the session's tasks: shared/protocol.js `_onrequest` queues the answer to the task's
 * queue, and `tasks/result` hands queued answers to the server's own request resolvers
 * (none: "Response handler missing"), so the peer's id is never answered. Before, such a
 * request held its slot and bytes for the whole session (the review: three padded pings made
 * every later request -32005). Now the peer's task-related requests are charged against a share of their
 * own (at most RELATED_TASK_MAX_IN_FLIGHT of them and half of maxRequestBytesInFlight),
 * inside the session's bounds, and one request is admitted alone whenever none of the
 * peer's other requests is in flight nor held: they can fill their share, never lock the
 * session. An SDK 2.x server answers the same requests (no task queue), which ends them as
 * any answer does. Real listener on 127.0.0.1, real SDK servers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { McpServer as McpServer1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import { InMemoryTaskMessageQueue, InMemoryTaskStore } from '@modelcontextprotocol/sdk/experimental/tasks';
import { McpServer as McpServer2 } from '@modelcontextprotocol/server';
import * as z4 from 'zod4';
import { MessagePipeline, RELATED_TASK_MAX_IN_FLIGHT } from '../../src/transport/index.js';
import type { JsonRpcMessage, MessageHook } from '../../src/transport/index.js';
import type { VerifiedPeer } from '../../src/identity/trust.js';
import { TooManyRequestBytesInFlightError, TooManyRequestsInFlightError } from '../../src/errors.js';
import type { PqmcpError } from '../../src/errors.js';
import { Cleanup, startServer, waitFor } from '../helpers/mcp.js';
import { rawInitializedSession } from '../helpers/raw-session.js';
import type { RawSession } from '../helpers/raw-session.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const TASK = 'io.modelcontextprotocol/related-task';
const LIMIT = 20_000;

/** The SDK's in-memory task queue, noting the id of each answer queued to a task instead of sent. */
class NotingQueue extends InMemoryTaskMessageQueue {
  constructor(private readonly diverted: unknown[]) {
    super();
  }
  override async enqueue(...args: Parameters<InMemoryTaskMessageQueue['enqueue']>): Promise<void> {
    const [, queued] = args;
    if (queued.type === 'response' || queued.type === 'error') this.diverted.push(queued.message.id);
    return super.enqueue(...args);
  }
}

/** An SDK 1.x server with tasks: a `work` tool that runs as a task and never finishes. */
function taskServer1(diverted: unknown[]) {
  const taskStore = new InMemoryTaskStore();
  const mcp = new McpServer1({ name: 'tasks', version: '1' }, { capabilities: { tasks: { requests: { tools: { call: {} } } } }, taskStore, taskMessageQueue: new NotingQueue(diverted) });
  mcp.experimental.tasks.registerToolTask(
    'work',
    { inputSchema: {}, execution: { taskSupport: 'required' } },
    {
      createTask: async (_args, extra) => ({ task: await extra.taskStore.createTask({ ttl: 600_000 }) }),
      getTask: async (_args, extra) => (await extra.taskStore.getTask(extra.taskId))!,
      getTaskResult: async (_args, extra) => (await extra.taskStore.getTaskResult(extra.taskId)) as never,
    },
  );
  cleanup.add(() => taskStore.cleanup());
  return mcp;
}

/** Send `body` (a message without its jsonrpc member). */
async function send(session: RawSession, body: Record<string, unknown>): Promise<void> {
  await session.transport.send({ jsonrpc: '2.0', ...body } as unknown as JsonRpcMessage);
}

/** The answer to `id` once it came. */
async function answerTo(session: RawSession, id: string | number): Promise<JsonRpcMessage> {
  await waitFor(() => session.answers.some((a) => a.id === id), 10_000, `an answer to ${id}`);
  return session.answers.find((a) => a.id === id)!;
}

/** The ids of the answers the session got so far. */
const ids = (session: RawSession) => session.answers.filter((a) => a.id !== undefined).map((a) => a.id);
const related = (taskId: string, extra: Record<string, unknown> = {}) => ({ _meta: { [TASK]: { taskId } }, ...extra });

describe('requests related to a task (R10-2)', () => {
  it('an SDK 1.x task server never answers them: they fill a share of their own (half the bytes, RELATED_TASK_MAX_IN_FLIGHT requests) and never lock the session', { timeout: 60_000 }, async () => {
    const diverted: unknown[] = [];
    const server = await startServer(cleanup, () => taskServer1(diverted), { maxRequestBytesInFlight: LIMIT });
    const errors: PqmcpError[] = [];
    server.on('session', (t) => {
      t.onerror = (e) => void errors.push(e as PqmcpError);
    });
    const session = await rawInitializedSession(server.url, cleanup, 'init');

    await send(session, { id: 'create', method: 'tools/call', params: { name: 'work', arguments: {}, task: { ttl: 600_000 } } });
    const created = await answerTo(session, 'create');
    const taskId = (created.result as { task: { taskId: string } }).task.taskId;
    expect(taskId).toEqual(expect.any(String));

    // Pings about the task, 4,000 bytes of padding each. The SDK queues the answers of the
    // first two to the task and never sends them; the third would take the share past half
    // the limit: refused (before: held too, and the session left with 7.5 KB of its 20 KB).
    const pad = 'x'.repeat(4_000);
    for (const id of ['t1', 't2', 't3']) await send(session, { id, method: 'ping', params: related(taskId, { pad }) });
    expect((await answerTo(session, 't3')).error).toMatchObject({ code: -32005, data: { limitBytes: LIMIT / 2 } });
    // The SDK really diverts them (their answers queued to the task, never sent), and an
    // ordinary ping is answered.
    await waitFor(() => diverted.length === 2, 10_000, 'the answers to t1 and t2 queued to the task');
    expect(diverted).toEqual(['t1', 't2']);
    await send(session, { id: 'plain', method: 'ping' });
    expect((await answerTo(session, 'plain')).result).toEqual({});
    expect(ids(session).filter((id) => id === 't1' || id === 't2')).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TooManyRequestBytesInFlightError);
    expect(errors[0]).toMatchObject({ code: 'ERR_TOO_MANY_BYTES_IN_FLIGHT', limit: LIMIT / 2, taskRelated: true });

    // Ordinary requests keep the rest of the budget: padded pings of 8,000 bytes pass.
    for (let i = 0; i < 3; i++) {
      await send(session, { id: `seq${i}`, method: 'ping', params: { pad: 'y'.repeat(8_000) } });
      expect((await answerTo(session, `seq${i}`)).result).toEqual({});
    }
    // One larger than the whole budget is admitted alone: none of the peer's other requests
    // is in flight nor held (before: never again in this session).
    await send(session, { id: 'big', method: 'ping', params: { pad: 'z'.repeat(LIMIT + 5_000) } });
    expect((await answerTo(session, 'big')).result).toEqual({});

    // A cancellation ends a diverted request's entry as any other (its bytes then held for
    // CANCELLED_HOLD_MS, as any cancelled request's): the share is free again.
    await send(session, { method: 'notifications/cancelled', params: { requestId: 't1' } });
    await send(session, { method: 'notifications/cancelled', params: { requestId: 't2' } });
    // The count: small task pings take RELATED_TASK_MAX_IN_FLIGHT slots, the next one is
    // refused with { limit }, and ordinary requests still pass.
    session.answers.length = 0;
    errors.length = 0;
    for (let i = 0; i <= RELATED_TASK_MAX_IN_FLIGHT; i++) await send(session, { id: `n${i}`, method: 'ping', params: related(taskId) });
    expect((await answerTo(session, `n${RELATED_TASK_MAX_IN_FLIGHT}`)).error).toMatchObject({ code: -32005, data: { limit: RELATED_TASK_MAX_IN_FLIGHT } });
    await send(session, { id: 'after', method: 'tools/list' });
    expect((await answerTo(session, 'after')).result).toMatchObject({ tools: [expect.objectContaining({ name: 'work' })] });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TooManyRequestsInFlightError);
    expect(errors[0]).toMatchObject({ code: 'ERR_TOO_MANY_IN_FLIGHT', side: 'peer', limit: RELATED_TASK_MAX_IN_FLIGHT, taskRelated: true });
    // One cancelled: one more is admitted (and diverted: no answer), the next refused.
    await send(session, { method: 'notifications/cancelled', params: { requestId: 'n0' } });
    await send(session, { id: 'again', method: 'ping', params: related(taskId) });
    await send(session, { id: 'again2', method: 'ping', params: related(taskId) });
    await send(session, { id: 'last', method: 'ping' });
    await answerTo(session, 'last');
    await waitFor(() => diverted.includes('again'), 10_000, 'the answer to again queued to the task');
    expect(diverted).toHaveLength(2 + RELATED_TASK_MAX_IN_FLIGHT + 1);
    expect(ids(session)).toEqual([`n${RELATED_TASK_MAX_IN_FLIGHT}`, 'after', 'again2', 'last']);
  });

  it('an SDK 2.x server answers them: they run, are matched to their answers by the hooks, and free their share', { timeout: 30_000 }, async () => {
    const gates: Array<() => void> = [];
    const factory = () => {
      const mcp = new McpServer2({ name: 'hold', version: '1' });
      mcp.registerTool('hold', { inputSchema: { pad: z4.string() } }, async () => new Promise<{ content: [] }>((resolve) => gates.push(() => resolve({ content: [] }))));
      return mcp;
    };
    const matched: Array<[unknown, unknown]> = [];
    const hook: MessageHook = { name: 'match', toPeer: (m, ctx) => void (m.id !== undefined && matched.push([m.id, ctx.request?.method])) };
    const server = await startServer(cleanup, factory, { maxRequestBytesInFlight: LIMIT, hooks: [hook] });
    const errors: PqmcpError[] = [];
    server.on('session', (t) => {
      t.onerror = (e) => void errors.push(e as PqmcpError);
    });
    const session = await rawInitializedSession(server.url, cleanup, 'init');
    session.answers.length = 0;
    matched.length = 0;

    // A task ping (no task queue in 2.x): answered, matched.
    await send(session, { id: 'p', method: 'ping', params: related('any-task') });
    expect((await answerTo(session, 'p')).result).toEqual({});
    // Two task calls of 4,000 bytes run; a third would pass half the limit: refused, while an
    // ordinary call of 8,000 bytes runs beside them.
    const call = (pad: number, taskId?: string) => ({ method: 'tools/call', params: { name: 'hold', arguments: { pad: 'y'.repeat(pad) }, ...(taskId ? related(taskId) : {}) } });
    await send(session, { id: 'c1', ...call(4_000, 'a') });
    await send(session, { id: 'c2', ...call(4_000, 'a') });
    await send(session, { id: 'c3', ...call(4_000, 'a') });
    expect((await answerTo(session, 'c3')).error).toMatchObject({ code: -32005, data: { limitBytes: LIMIT / 2 } });
    await send(session, { id: 'o1', ...call(8_000) });
    await waitFor(() => gates.length === 3, 10_000, 'three calls running');
    expect(errors.map((e) => e instanceof TooManyRequestBytesInFlightError)).toEqual([true]);
    for (const open of gates.splice(0)) open();
    for (const id of ['c1', 'c2', 'o1']) expect((await answerTo(session, id)).result).toEqual({ content: [] });
    // Answered: the share is free again.
    await send(session, { id: 'c4', ...call(4_000, 'a') });
    await send(session, { id: 'c5', ...call(4_000, 'a') });
    await waitFor(() => gates.length === 2, 10_000, 'two more task calls running');
    for (const open of gates.splice(0)) open();
    for (const id of ['c4', 'c5']) await answerTo(session, id);
    // Each answer met its request in the hooks (the refusal of c3 passes none).
    expect(new Map(matched)).toEqual(
      new Map([
        ['p', 'ping'],
        ['c1', 'tools/call'],
        ['c2', 'tools/call'],
        ['o1', 'tools/call'],
        ['c4', 'tools/call'],
        ['c5', 'tools/call'],
      ]),
    );
    expect(matched).toHaveLength(6);
  });
});



describe('the pipeline\'s share of requests related to a task (pure)', () => {
  const session = { role: 'server' as const, peer: { agentId: 'agent://x' } as VerifiedPeer, sessionId: 'ab', remoteAddress: undefined };
  const plain = (id: number): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: {} });
  const task = (id: number): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: related('t') });
  const sinks = (written: JsonRpcMessage[], local: JsonRpcMessage[], errors: PqmcpError[] = []) => ({
    toPeer: async (_d: Uint8Array, m: JsonRpcMessage) => void written.push(m),
    toLocal: (m: JsonRpcMessage) => void local.push(m),
    onerror: (e: PqmcpError) => void errors.push(e),
  });

  it('keeps the session within its budget + one request: the share is half of it, never admitted alone, and counted in the session\'s bytes; a hook\'s drop or reply frees it', async () => {
    const written: JsonRpcMessage[] = [];
    const local: JsonRpcMessage[] = [];
    const errors: PqmcpError[] = [];
    // Drops 20, answers 21 itself.
    const hook: MessageHook = { fromPeer: (m) => (m.id === 20 ? { drop: true } : m.id === 21 ? { reply: { jsonrpc: '2.0', id: 21, result: {} } } : undefined) };
    const pipeline = new MessagePipeline([hook], session, sinks(written, local, errors), { maxRequestBytes: 1000 });
    const refused = () => written.filter((m) => m.error?.code === -32005).map((m) => [m.id, m.error!.data]);
    // Larger than the share, none in flight: refused (no "alone" for them).
    pipeline.fromPeer(task(1), 501);
    pipeline.fromPeer(task(2), 300);
    pipeline.fromPeer(task(3), 200);
    pipeline.fromPeer(task(4), 1);
    await Promise.resolve();
    expect(refused()).toEqual([[1, { limitBytes: 500 }], [4, { limitBytes: 500 }]]);
    expect(errors.map((e) => [e.code, (e as TooManyRequestBytesInFlightError).limit, (e as TooManyRequestBytesInFlightError).taskRelated])).toEqual([
      ['ERR_TOO_MANY_BYTES_IN_FLIGHT', 500, true],
      ['ERR_TOO_MANY_BYTES_IN_FLIGHT', 500, true],
    ]);
    expect(pipeline.bytesInFlight('fromPeer')).toBe(500);
    // Beside them: a request past the budget is admitted alone (no other request in flight),
    // then nothing more, a request related to a task neither (the session's own budget).
    pipeline.fromPeer(plain(5), 5000);
    pipeline.fromPeer(plain(6), 1);
    await pipeline.toPeer({ jsonrpc: '2.0', id: 2, result: {} });
    pipeline.fromPeer(task(7), 1);
    await Promise.resolve();
    expect(refused().slice(2)).toEqual([[6, { limitBytes: 1000 }], [7, { limitBytes: 1000 }]]);
    expect(errors.at(-1)).toMatchObject({ limit: 1000, taskRelated: false });
    expect(pipeline.bytesInFlight('fromPeer')).toBe(5200);
    await pipeline.toPeer({ jsonrpc: '2.0', id: 5, result: {} });
    // Back to 200 (request 3): requests fit up to the budget, those related to a task up to the share.
    pipeline.fromPeer(task(8), 300);
    pipeline.fromPeer(plain(9), 500);
    expect(pipeline.bytesInFlight('fromPeer')).toBe(1000);
    // A hook's drop or answer ends a request related to a task as any other.
    for (const id of [3, 8, 9]) await pipeline.toPeer({ jsonrpc: '2.0', id, result: {} });
    expect(pipeline.bytesInFlight('fromPeer')).toBe(0);
    pipeline.fromPeer(task(20), 500);
    pipeline.fromPeer(task(21), 500);
    pipeline.fromPeer(task(22), 500);
    await Promise.resolve();
    await Promise.resolve();
    expect(refused().slice(4)).toEqual([]);
    expect(pipeline.bytesInFlight('fromPeer')).toBe(500);
    expect(local.filter((m) => m.id !== undefined).map((m) => m.id)).toEqual([2, 3, 5, 8, 9, 22]);
    pipeline.close();
    expect(pipeline.bytesInFlight('fromPeer')).toBe(0);
  });

  it('without a byte bound (hooks only) the count still applies: MAX_TRACKED is never theirs to fill', async () => {
    const written: JsonRpcMessage[] = [];
    const local: JsonRpcMessage[] = [];
    const pipeline = new MessagePipeline([{ name: 'noop' }], session, sinks(written, local));
    for (let id = 0; id <= RELATED_TASK_MAX_IN_FLIGHT; id++) pipeline.fromPeer(task(id), 10);
    pipeline.fromPeer(plain(1000), 10);
    await Promise.resolve();
    expect(written).toEqual([
      {
        jsonrpc: '2.0',
        id: RELATED_TASK_MAX_IN_FLIGHT,
        error: { code: -32005, message: `pqmcp: too many requests related to a task in flight (${RELATED_TASK_MAX_IN_FLIGHT}); retry once earlier requests have been answered`, data: { limit: RELATED_TASK_MAX_IN_FLIGHT } },
      },
    ]);
    expect(pipeline.inFlight('fromPeer')).toBe(RELATED_TASK_MAX_IN_FLIGHT + 1);
  });
});
