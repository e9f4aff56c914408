/**
 * The peer's requests related to a task, charged against a share of their own (review 10,
 * R10-2). An MCP SDK 1.x server with the experimental tasks feature (`taskStore` and
 * `taskMessageQueue`) never answers, on the transport, a request whose
 * `params._meta["io.modelcontextprotocol/related-task"].taskId` names a task of the session:
 * shared/protocol.js `_onrequest` queues the answer (result or error) to the task's message
 * queue, and `tasks/result` hands queued answers to the server's own request resolvers, not
 * to the peer. Such a request would hold its slot and bytes in flight until the session
 * ended; a few of them refused every later request. The transport cannot tell whether the
 * local side diverts an answer (SDK 2.x has no task queue and answers them; an SDK 1.x
 * server without the queue answers them; one with it answers a task it cannot find), so
 * it forgets nothing early (the hooks still match a late answer) and bounds them instead:
 * - a peer request whose params._meta carries the related-task key (any task id; the
 *   envelope check already refused one not shaped `{ taskId: string }`) is admitted only
 *   while fewer than RELATED_TASK_MAX_IN_FLIGHT such requests are in flight and its bytes
 *   fit, with theirs, in `maxBytes` (the pipeline passes half its budget, rounded down);
 *   it is also counted in the session's own bounds (MAX_TRACKED, the bytes in flight), like
 *   any request, so the bounds of the session do not grow;
 * - a request without the key is admitted alone (past the byte budget) when none of the
 *   peer's other requests is in flight nor held, whatever requests related to a task are
 *   in flight: those can fill their share, never lock the session.
 * Both SDK majors end a request related to a task on its cancellation as any other (the
 * SDKs' request timeout sends one), and its charge is then held as any cancelled request's
 * (cancelled-hold.ts).
 *
 * Sharp edges:
 * - A request related to a task larger than `maxBytes` is always refused (-32005; there
 *   is no "alone" for them: one admitted alone could stay for the session). Half of the
 *   default 16 MiB is 8 MiB; with no byte limit (0) only the count applies.
 * - The bound (the pipeline's bytes, cancelled-hold.ts's argument with one change): call a
 *   request big when its bytes exceed cap, half the budget rounded up. A request related
 *   to a task is never big (maxBytes <= cap) nor admitted alone. At most one big request is
 *   in flight or held at a time (a second one is not alone, and does not fit beside the
 *   first's charge of at least cap); every other request is charged its real bytes. The
 *   change: a request admitted alone may have requests related to a task beside it, at most
 *   maxBytes. Without a big one the real bytes are the charge: at most the budget after an
 *   admission that fits, at most maxBytes + cap = budget after one alone. With a big one
 *   (at most maxMessageSize), the others are at most maxBytes if it came alone, less than
 *   budget - cap = maxBytes if it fitted, and those admitted after it fit beside its charge
 *   (at least cap), so they stay at most budget - cap = maxBytes. So the session holds at
 *   most budget + one maxMessageSize of request bytes, as before.
 */
import { RELATED_TASK } from './jsonrpc.js';

/** The peer's requests related to a task in flight at once, at most (per session). */
export const RELATED_TASK_MAX_IN_FLIGHT = 64;

/** Whether a request carries the related-task key in its params._meta. */
export function isTaskRelated(message: { params?: unknown }): boolean {
  const params = message.params;
  if (typeof params !== 'object' || params === null) return false;
  const meta = (params as { _meta?: unknown })._meta;
  return typeof meta === 'object' && meta !== null && RELATED_TASK in meta;
}

/** Why a request related to a task is refused: the share's count or its bytes. */
export type ShareRefusal = { limit: 'count' } | { limit: 'bytes'; inFlight: number };

/** The peer's requests related to a task in flight (entries of the pipeline's table). */
export class RelatedTaskShare {
  private readonly entries = new Set<{ readonly bytes: number }>();
  private total = 0;

  /** @param maxBytes the most bytes they hold at once */
  constructor(readonly maxBytes: number) {}

  get count(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.total;
  }

  /** Why one more of `bytes` would not fit, or undefined when it fits. */
  refusal(bytes: number): ShareRefusal | undefined {
    if (this.entries.size >= RELATED_TASK_MAX_IN_FLIGHT) return { limit: 'count' };
    return this.total + bytes > this.maxBytes ? { limit: 'bytes', inFlight: this.total } : undefined;
  }

  add(entry: { readonly bytes: number }): void {
    if (this.entries.has(entry)) return;
    this.entries.add(entry);
    this.total += entry.bytes;
  }

  /** The entry ended (answered, dropped, cancelled, replaced): no-op when it is not one of them. */
  delete(entry: { readonly bytes: number }): void {
    if (this.entries.delete(entry)) this.total -= entry.bytes;
  }

  clear(): void {
    this.entries.clear();
    this.total = 0;
  }
}
