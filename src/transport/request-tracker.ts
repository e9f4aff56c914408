/**
 * The requests in flight of one session, both ways, for its MessagePipeline (message-hooks.ts):
 * admitted, or refused before any hook sees them; tracked from the moment they enter the hooks
 * until they are answered, dropped or cancelled, or the session ends; charged against the
 * bounds on requests in flight (count, bytes, the share of requests related to a task, the
 * listener's bound). Responses and cancellations are matched here to the request they answer
 * or name, which the pipeline gives the hooks as `ctx.request`.
 *
 * Sharp edges:
 * - Requests in flight are correlated with their responses (`ctx.request`, with `notes`
 *   that hooks share: a policy can record its decision there for an auditor). At most
 *   MAX_TRACKED requests per direction are in flight at once, and nothing accepted is ever
 *   forgotten while it is in flight (an entry forgotten early would let its response pass
 *   every hook unmatched: an auditor would log an executed call as unanswered):
 *   - a request from the peer past the bound is answered here with JSON-RPC error -32005
 *     (JsonRpcErrorCode.tooManyInFlight, data { limit }) and reported
 *     (TooManyRequestsInFlightError, side 'peer'); it reaches no hook and no handler;
 *   - a request of the local side past the bound is not sent (with hooks; a pipeline
 *     without hooks, there only for maxRequestBytes, does not track the local side's
 *     requests at all): toPeer() rejects with
 *     TooManyRequestsInFlightError (side 'local'), so the SDK's request() fails at once
 *     with that error. Refused rather than evicting the oldest entry because the local
 *     application is the one that can wait and retry, and an eviction would silently
 *     unmatch a request the peer is still answering (tool pinning would then withhold its
 *     tool list; the auditor would log it unanswered).
 *   An entry ends when its response passes the hooks (or a hook drops or answers the
 *   request instead), when a `notifications/cancelled` naming it is delivered (sent by the
 *   side that made the request, as MCP says, or by the server for a listen stream, below;
 *   one a hook drops frees nothing), and when the session ends. So a long session whose
 *   requests are cancelled and never answered (SDK servers, 1.x and 2.x, do not answer a
 *   cancelled request) does not fill the table. The peer's own cancelled requests still
 *   count against its bounds (MAX_TRACKED and bytes, not in inFlight()) until the local
 *   side answers them anyway or CANCELLED_HOLD_MS (60 s) pass: their handlers may ignore
 *   the abort and run on (cancelled-hold.ts).
 * - A cancelled request's id is kept (at most MAX_TRACKED per direction, oldest forgotten
 *   first) until an answer to it arrives anyway (a server may answer a cancelled request:
 *   the MCP text is SHOULD NOT, and the Python SDK sends an error): that late answer passes
 *   the hooks unmatched (`ctx.request` undefined: the policy filters every list it carries,
 *   tool pinning withholds a tool list, the auditor records nothing more) and is delivered;
 *   and a peer request reusing a cancelled id is refused like any reused id (below), so a
 *   late answer cannot pass as the answer to a newer request. Past the MAX_TRACKED kept
 *   ids that can happen (a peer reusing an id, which MCP forbids, after 4096 later
 *   cancellations, and a local side answering the old request even later): the policy
 *   filters a list in any answer but its own list method's, and the gateway drops its
 *   child's late answers, but an auditor would record that answer under the newer request.
 * - A `notifications/cancelled` passes the hooks with `ctx.request` set to the request it
 *   cancels, when that request is in flight in the same direction, or is a
 *   `subscriptions/listen` of the other side (MCP 2026-07-28: a server ends a listen stream
 *   with a cancellation naming it); the auditor records it as cancelled. A cancellation
 *   naming any other request of the other side ends nothing.
 * - A response that answers a request is matched by id. A request from the peer that
 *   reuses the id of one of its requests still in flight or cancelled (MCP forbids reusing
 *   an id) is answered here with Invalid Request and reported (RequestIdReusedError): it
 *   reaches no hook and no handler, so the first request's response cannot pass the hooks
 *   as the answer to another method (a policy's list filter, an auditor's record). A local
 *   request reusing an id replaces the entry (the SDKs never reuse one).
 * - A request from the peer that the MCP SDKs (1.x and 2.x alike) would drop unanswered
 *   (jsonrpc.ts requestEnvelopeFault: an id that is not a string or an integer, null
 *   included (R15-1: it used to pass as a notification, past every hook), a member
 *   beyond jsonrpc/id/method/params, params or params._meta of the wrong shape) is answered
 *   here with Invalid Request (-32600; id null when its id is not a string or a number) and
 *   reported (MalformedRequestError): it reaches no hook and no handler and takes no slot
 *   nor bytes, which it used to hold for the whole session. A request that fits but whose
 *   params its handler rejects is answered by the SDK (-32602 or -32603), which ends it.
 * - Request bytes in flight (issue 10 item 3; `maxRequestBytes`, the server's
 *   maxRequestBytesInFlight): the JSON bytes of the peer's requests in flight (delivered to
 *   the local side, or waiting in a hook, and not yet answered, dropped or cancelled, and
 *   those cancelled less than CANCELLED_HOLD_MS ago and not answered since, each at most
 *   half the limit: cancelled-hold.ts) are counted;
 *   a request that would take them past the limit is refused like one past MAX_TRACKED:
 *   JSON-RPC -32005 (data { limitBytes }), TooManyRequestBytesInFlightError to onerror,
 *   no hook, no handler. A request is always admitted when none is in flight (nor
 *   cancelled and still charged: else cancel and resend would admit each one alone), so
 *   the limit bounds concurrency, never the size of one request (maxMessageSize does
 *   that): a session holds at most limit + one maxMessageSize of request bytes.
 *   The peer's requests related to a task (params._meta names one; an SDK 1.x server with
 *   a task queue never answers them on the transport) count in both bounds and also in a
 *   share of their own: at most RELATED_TASK_MAX_IN_FLIGHT (64) of them and half the
 *   limit, never admitted alone; "none in flight" above leaves them aside, so they cannot
 *   lock the session (review 10, R10-2; the bound still holds: related-task-share.ts). Refused
 *   rather than paused (not reading the session until answers come back): a paused session
 *   also stops delivering the peer's answers to the local side's own requests (sampling,
 *   elicitation, roots/list) and its cancellations, which the handlers holding the budget
 *   may be waiting on, so pausing can deadlock a session that refusing leaves working; and
 *   a refusal is visible to the peer (retry later) and to the operator (onerror).
 * - On a listener the sessions' request bytes in flight also share one bound
 *   (`maxRequestBytesInFlightTotal`, request-budget.ts): a request that passes the session's
 *   own bound is refused the same way (-32005, data { scope: 'listener' }) when the
 *   listener's total is past the limit and the request would take the session's agent past
 *   its fair share (the limit / the agents holding requests), or the session past its even
 *   part of that share (over its agent's sessions holding requests; R11-7). That rule has no
 *   lone-request exception: above the limit a request larger than the share waits. The
 *   answer carries no listener-wide figure (the limit and share would tell the peer how many
 *   agents, of any tenant, hold requests: review 11, R11-6); the operator's error (onerror)
 *   has them.
 * - The refusals above pass no hook, so quotas do not count them (neither calls nor
 *   bytes), as a quota does not count the requests it refuses itself; each costs one small
 *   error reply, within the transport's record and receive limits.
 */
import { encodeMessage, requestEnvelopeFault } from './jsonrpc.js';
import { CancelledHold } from './cancelled-hold.js';
import { RELATED_TASK_MAX_IN_FLIGHT, RelatedTaskShare, isTaskRelated } from './related-task-share.js';
import type { RequestBudget, RequestShare } from './request-budget.js';
import { InvalidArgumentError, MalformedRequestError, RequestIdReusedError, TooManyRequestBytesInFlightError, TooManyRequestsInFlightError, toPqmcpError } from '../errors.js';
import type { PqmcpError } from '../errors.js';
import { JsonRpcErrorCode, errorResponse, isRequestMessage, isResponseMessage } from './hook-api.js';
import type { Direction, JsonRpcMessage, TrackedRequest } from './hook-api.js';

/**
 * Requests in flight per direction (also: cancelled ids kept per direction). A peer's
 * request past it is refused (-32005), a local one rejected (TooManyRequestsInFlightError).
 */
export const MAX_TRACKED = 4096;

const CANCELLED = 'notifications/cancelled';
/** The listener's refusal, to the peer: no figures (R11-6). */
const LISTENER_REFUSAL = 'pqmcp: too many request bytes in flight on this server (over all sessions); retry once earlier requests have been answered';
/** MCP 2026-07-28: a long-lived notification stream, which the server may end with a cancellation. */
const LISTEN = 'subscriptions/listen';

/** The request id a `notifications/cancelled` names, if it is one. */
function cancelledId(m: JsonRpcMessage): string | number | undefined {
  if (m.method !== CANCELLED || m.id !== undefined || typeof m.params !== 'object' || m.params === null) return undefined;
  const id = (m.params as { requestId?: unknown }).requestId;
  return typeof id === 'string' || typeof id === 'number' ? id : undefined;
}

/** Limits of one pipeline. */
export interface PipelineLimits {
  /**
   * Bytes of the peer's requests in flight past which its next request is refused (-32005);
   * one request is always admitted when none is in flight. Default: no limit (only MAX_TRACKED).
   */
  maxRequestBytes?: number;
  /** Time source of the hold on cancelled requests, ms (cancelled-hold.ts holdNow; tests move it). Default monotonic (performance.now). */
  now?: () => number;
  /** The listener's bound over all its sessions (request-budget.ts). Default: none. */
  shared?: RequestBudget;
}

/** Where a refusal goes: the pipeline's own sinks (message-hooks.ts PipelineSinks). */
export interface RefusalSinks {
  /** A refusal to write to the peer, and its encoding. */
  toPeer(data: Uint8Array, message: JsonRpcMessage): Promise<void>;
  /** What was refused, or a refusal that could not be written. */
  onerror(error: PqmcpError): void;
}

/** A session's requests in flight, both ways (above). One per MessagePipeline. */
export class RequestTracker {
  private readonly byDirection: Record<Direction, Map<string | number, TrackedRequest>> = { fromPeer: new Map(), toPeer: new Map() };
  /** Sum of `bytes` of the entries in byDirection, per direction. */
  private readonly bytesByDirection: Record<Direction, number> = { fromPeer: 0, toPeer: 0 };
  private readonly maxRequestBytes: number;
  /** Ids of requests cancelled in each direction and not answered since (oldest first). */
  private readonly cancelled: Record<Direction, Set<string | number>> = { fromPeer: new Set(), toPeer: new Set() };
  /** The peer's cancelled requests still charged against both bounds (F3). */
  private readonly hold: CancelledHold;
  /** The peer's requests related to a task in flight, bounded apart (R10-2; also in byDirection.fromPeer). */
  private readonly taskShare: RelatedTaskShare;
  /** This session's place in the listener's bound, if any. */
  private readonly share: RequestShare | undefined;

  constructor(
    private readonly sinks: RefusalSinks,
    limits: PipelineLimits,
    /** The peer's agent id: the listener's bound shares per agent (request-budget.ts). */
    agentId: string,
    /** The session ended (the pipeline's close() began): the listener's share is left alone. */
    private readonly ended: () => boolean,
  ) {
    const max = limits.maxRequestBytes ?? Number.POSITIVE_INFINITY;
    if (!(typeof max === 'number' && max >= 0)) throw new InvalidArgumentError('maxRequestBytes must be a number >= 0');
    this.maxRequestBytes = max;
    // A held request is charged at most half the budget (R10-5; the bound: cancelled-hold.ts).
    this.hold = new CancelledHold(limits.now, Math.ceil(max / 2));
    // Requests related to a task get the other half, rounded down (R10-2; the bound: related-task-share.ts).
    this.taskShare = new RelatedTaskShare(Math.floor(max / 2));
    // The listener counts held requests uncapped, and shares per agent: the peer's agent id (request-budget.ts).
    this.share = limits.shared?.join(() => ({ bytes: this.bytesByDirection.fromPeer + this.hold.realBytes, expiresAt: this.hold.expiresAt }), this.hold.now, agentId);
  }

  /** For MessagePipeline.inFlight(). */
  inFlight(direction: Direction): number {
    return this.byDirection[direction].size;
  }

  /** For MessagePipeline.bytesInFlight(). */
  bytesInFlight(direction: Direction): number {
    return this.bytesByDirection[direction];
  }

  /** For MessagePipeline.cancelledHeld(). */
  cancelledHeld(): { requests: number; bytes: number } {
    return { requests: this.hold.count, bytes: this.hold.bytes };
  }

  /** The session ended (after the hooks' closed()): forget every request and cancelled id, release the listener's share. */
  clear(): void {
    for (const d of ['fromPeer', 'toPeer'] as const) {
      this.byDirection[d].clear();
      this.bytesByDirection[d] = 0;
      this.cancelled[d].clear();
    }
    this.hold.clear();
    this.taskShare.clear();
    this.share?.release();
  }

  /**
   * Admission of a request into the hooks. A peer request the MCP SDKs would drop
   * unanswered (jsonrpc.ts requestEnvelopeFault), under the id of one of its
   * requests in flight or cancelled, or past MAX_TRACKED in flight: answered straight to
   * the peer, past every hook (none saw the request; its answer must not settle another
   * request's entry), and reported. A local request past the bound: rejected.
   */
  admit(direction: Direction, message: JsonRpcMessage, bytes: number): Promise<void> | undefined {
    const table = this.byDirection[direction];
    const id = message.id!;
    if (direction === 'toPeer') {
      if (table.size < MAX_TRACKED || table.has(id)) return undefined;
      return Promise.reject(new TooManyRequestsInFlightError('local', MAX_TRACKED, id));
    }
    const fault = requestEnvelopeFault(message);
    if (fault !== undefined) {
      // The SDKs would drop it unanswered, leaving its slot and bytes taken for the session.
      this.sinks.onerror(new MalformedRequestError(fault, id));
      const answerable = typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
      return this.answer({ jsonrpc: '2.0', id: (answerable ? id : null) as string | number, error: { code: JsonRpcErrorCode.invalidRequest, message: `Invalid Request: ${fault}` } });
    }
    if (table.has(id) || this.cancelled.fromPeer.has(id) || this.hold.has(id)) {
      this.sinks.onerror(new RequestIdReusedError(id));
      return this.answer(errorResponse(message, JsonRpcErrorCode.invalidRequest, 'Invalid Request: this id is already used by a request in flight or cancelled in this session'));
    }
    // The peer's cancelled requests whose handlers may still run count too (cancelled-hold.ts).
    const heldCount = this.hold.count;
    if (table.size + heldCount >= MAX_TRACKED) return this.tooMany(message, MAX_TRACKED, false);
    const held = this.bytesByDirection.fromPeer + this.hold.bytes;
    if (isTaskRelated(message)) {
      // Its own share, and never alone: the local side may never answer it (related-task-share.ts).
      const overShare = this.taskShare.refusal(bytes);
      if (overShare?.limit === 'count') return this.tooMany(message, RELATED_TASK_MAX_IN_FLIGHT, true);
      if (overShare !== undefined) return this.tooManyBytes(message, this.taskShare.maxBytes, overShare.inFlight, bytes, true);
      if (held + bytes > this.maxRequestBytes) return this.tooManyBytes(message, this.maxRequestBytes, held, bytes, false);
    } else if (!((table.size === this.taskShare.count && heldCount === 0) || held + bytes <= this.maxRequestBytes)) {
      // Alone: none of its other requests in flight (those related to a task aside) nor held.
      return this.tooManyBytes(message, this.maxRequestBytes, held, bytes, false);
    }
    // The listener's bound over all sessions (request-budget.ts): no lone-request exception.
    const over = this.ended() ? undefined : this.share?.admit(bytes);
    if (over === undefined) return undefined;
    this.sinks.onerror(new TooManyRequestBytesInFlightError(over.limit, over.charge, bytes, id, { total: over.total, share: over.share, agentShare: over.agentShare, agentInFlight: over.agentCharge }));
    // The peer learns no listener-wide figure: limit / share would tell it how many agents, of
    // any tenant, hold requests (R11-6); the operator's error above has them.
    return this.answer(errorResponse(message, JsonRpcErrorCode.tooManyInFlight, LISTENER_REFUSAL, { scope: 'listener' }));
  }

  /** Refuse a peer request past a count (-32005, data { limit }). */
  private tooMany(message: JsonRpcMessage, limit: number, taskRelated: boolean): Promise<void> {
    this.sinks.onerror(new TooManyRequestsInFlightError('peer', limit, message.id, taskRelated));
    const what = taskRelated ? 'requests related to a task' : 'requests';
    return this.answer(errorResponse(message, JsonRpcErrorCode.tooManyInFlight, `pqmcp: too many ${what} in flight (${limit}); retry once earlier requests have been answered`, { limit }));
  }

  /** Refuse a peer request past a byte bound of its session (-32005, data { limitBytes }). */
  private tooManyBytes(message: JsonRpcMessage, limit: number, held: number, bytes: number, taskRelated: boolean): Promise<void> {
    this.sinks.onerror(new TooManyRequestBytesInFlightError(limit, held, bytes, message.id, undefined, taskRelated));
    const what = taskRelated ? 'bytes of requests related to a task' : 'request bytes';
    return this.answer(errorResponse(message, JsonRpcErrorCode.tooManyInFlight, `pqmcp: too many ${what} in flight (limit ${limit}); retry once earlier requests have been answered`, { limitBytes: limit }));
  }

  /** Write a refusal straight to the peer. */
  private answer(reply: JsonRpcMessage): Promise<void> {
    return this.sinks.toPeer(encodeMessage(reply), reply).catch((err: unknown) => this.sinks.onerror(toPqmcpError(err)));
  }

  /** Remember a request; find the request a response answers, or a cancellation names. */
  track(direction: Direction, message: JsonRpcMessage, bytes: number): TrackedRequest | undefined {
    if (isRequestMessage(message)) {
      const entry: TrackedRequest = { id: message.id!, method: message.method!, params: message.params, direction, startedAt: Date.now(), bytes, notes: {} };
      // admit() refused a peer's reused id; a local one (which the SDKs never send) replaces the entry.
      this.remove(direction, entry.id);
      this.byDirection[direction].set(entry.id, entry);
      this.bytesByDirection[direction] += bytes;
      if (direction === 'fromPeer' && isTaskRelated(message)) this.taskShare.add(entry);
      this.cancelled[direction].delete(entry.id);
      if (direction === 'fromPeer') this.recount();
      return entry;
    }
    if (isResponseMessage(message)) {
      // A response travelling fromPeer answers a request that went toPeer, and vice versa.
      const asked: Direction = direction === 'fromPeer' ? 'toPeer' : 'fromPeer';
      const entry = this.byDirection[asked].get(message.id!);
      // An answer to a cancelled request passes unmatched; its id is no longer kept, and a
      // local answer ends its charge (its handler is done).
      if (entry === undefined) {
        this.cancelled[asked].delete(message.id!);
        if (asked === 'fromPeer') {
          this.hold.release(message.id!);
          this.recount();
        }
      }
      return entry;
    }
    return this.cancelTarget(direction, message)?.entry;
  }

  /**
   * The request a `notifications/cancelled` travelling in `direction` ends: one made in the
   * same direction (MCP: the side that made a request cancels it), or a subscriptions/listen
   * made the other way (MCP 2026-07-28: the server tears a listen stream down with a
   * cancellation naming the client's listen request). Ids match exactly, as the SDKs' do.
   * Without hooks the local side's requests are untracked, so a server cancelling its own
   * request under the id of a live listen of the client ends that listen's entry early
   * (its few bytes uncounted; nothing held, no hook to mislead).
   */
  cancelTarget(direction: Direction, message: JsonRpcMessage): { direction: Direction; entry: TrackedRequest } | undefined {
    const id = cancelledId(message);
    if (id === undefined) return undefined;
    const same = this.byDirection[direction].get(id);
    if (same !== undefined) return { direction, entry: same };
    const other: Direction = direction === 'fromPeer' ? 'toPeer' : 'fromPeer';
    const listen = this.byDirection[other].get(id);
    return listen !== undefined && listen.method === LISTEN ? { direction: other, entry: listen } : undefined;
  }

  /**
   * A cancellation of `entry` (a request made in `direction`) was delivered: forget it, keep
   * its id; the peer's own cancellation of its request keeps it charged (cancelled-hold.ts).
   */
  cancel(direction: Direction, entry: TrackedRequest, byPeer: boolean): void {
    this.forget(direction, entry);
    if (direction === 'fromPeer' && byPeer) {
      this.hold.hold(entry.id, entry.bytes);
      this.recount();
    }
    const ids = this.cancelled[direction];
    if (ids.size >= MAX_TRACKED) ids.delete(ids.values().next().value!);
    ids.add(entry.id);
  }

  /** The peer's requests in flight or held changed: tell the listener's bound (none once ended: close() released it). */
  private recount(): void {
    if (this.share !== undefined && !this.ended()) this.share.update();
  }

  /** Forget a request that will not be answered (only if `entry` is still the one under its id). */
  forget(direction: Direction, entry: TrackedRequest): void {
    if (this.byDirection[direction].get(entry.id) === entry) this.remove(direction, entry.id);
  }

  /** Drop the entry under `id` (if any) and its bytes. */
  private remove(direction: Direction, id: string | number): void {
    const table = this.byDirection[direction];
    const entry = table.get(id);
    if (entry === undefined) return;
    table.delete(id);
    this.bytesByDirection[direction] -= entry.bytes;
    this.taskShare.delete(entry);
    if (direction === 'fromPeer') this.recount();
  }

  /** The id of the outstanding local request that `id` names only once coerced as the SDKs coerce ids. */
  coercedMatch(id: string | number): string | number | undefined {
    const table = this.byDirection.toPeer;
    if (typeof id === 'number') return table.has(String(id)) ? String(id) : undefined;
    if (typeof id !== 'string' || id.trim() === '') return undefined;
    const n = Number(id);
    return Number.isFinite(n) && table.has(n) ? n : undefined;
  }

  /** A response has passed every hook it will pass: forget its request. */
  settle(direction: Direction, message: JsonRpcMessage): void {
    if (isResponseMessage(message)) this.remove(direction === 'fromPeer' ? 'toPeer' : 'fromPeer', message.id!);
  }
}
