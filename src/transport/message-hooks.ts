/**
 * The message pipeline: runs a session's message hooks (the API they are written against, the
 * order they run in and what each call may return: hook-api.ts) over every JSON-RPC message of
 * an authenticated session where it passes the transport. One MessagePipeline per session,
 * created by the transports. Its requests in flight (matched with their responses and
 * cancellations, how each ends) and the bounds that refuse a peer's request before any hook
 * sees it: request-tracker.ts.
 *
 * Sharp edges:
 * - Hooks are synchronous, so messages keep their order. A hook that throws fails closed:
 *   a request is answered with a JSON-RPC internal error (no detail from the hook's error
 *   reaches the peer); a response to a request the pipeline tracks is replaced by one (the
 *   hooks after it see that, and its requester gets an error at once instead of waiting
 *   for its timeout); any other message is dropped. The error goes to the transport's
 *   onerror.
 * - A response from the peer whose id matches an outstanding request only after type
 *   coercion ("5", " 5" or "0x5" for 5; 5 for "5") is dropped and reported
 *   (ResponseIdMismatchError), and its request gets a JSON-RPC internal error under its own
 *   id instead: the SDKs look responses up with Number(id), so as sent it would reach the
 *   application with `ctx.request` undefined, past every hook that checks a response
 *   against its request (tool pinning).
 * - What a hook sees as a request is any message with a method and an id member, null
 *   included (hook-api.ts isRequestMessage); one whose id is no string or integer is
 *   refused before any hook (request-tracker.ts). A message from the peer with a method,
 *   no id, and a method not under `notifications/` (a request sent as a notification) is
 *   dropped before any hook and reported (MalformedRequestError): policy, quotas and the
 *   auditor decide requests only, so it must not reach a server that would run it (R15-1).
 * - opened() also receives a channel whose notify() sends a notification of the hook's own
 *   to the peer (e.g. list_changed after a policy reload). It enters the pipeline at the
 *   local end, so every hook sees it, as if the local side had sent it. Its report() is the
 *   route for a failure of work a hook deferred past its call (the auditor's end-of-turn
 *   events): onerror, as a throw would have been, with nothing refused.
 */
import { InvalidArgumentError, MalformedRequestError, MessageHookError, ResponseIdMismatchError, toPqmcpError } from '../errors.js';
import type { PqmcpError } from '../errors.js';
import { JsonRpcErrorCode, errorResponse, isMisdirectedNotification, isRequestMessage, isResponseMessage } from './hook-api.js';
import type { Direction, HookChannel, HookContext, HookResult, HookSession, JsonRpcMessage, MessageHook } from './hook-api.js';
import { encodeMessage } from './jsonrpc.js';
import { RequestTracker } from './request-tracker.js';
import type { PipelineLimits } from './request-tracker.js';

/** Where the pipeline's output goes; supplied by the transport. */
export interface PipelineSinks {
  /** A message to write to the peer, and its encoding. */
  toPeer(data: Uint8Array, message: JsonRpcMessage): Promise<void>;
  /** A message for the local MCP side. */
  toLocal(message: JsonRpcMessage): void;
  /** A hook failed, or a reply could not be written. */
  onerror(error: PqmcpError): void;
}

/** Runs a session's hooks over its messages. One per session; created by the transports. */
export class MessagePipeline {
  /** The requests in flight both ways: tracked, charged, refused past the bounds (request-tracker.ts). */
  private readonly requests: RequestTracker;
  private ended = false;

  constructor(
    private readonly hooks: readonly MessageHook[],
    readonly session: HookSession,
    private readonly sinks: PipelineSinks,
    limits: PipelineLimits = {},
  ) {
    this.requests = new RequestTracker(sinks, limits, session.peer.agentId, () => this.ended);
    for (const hook of hooks) {
      const channel: HookChannel = { notify: (message) => this.notify(message), report: (err) => this.sinks.onerror(new MessageHookError(hook.name ?? '(unnamed)', { cause: err, reported: true })) };
      this.guard(hook, 'opened', () => hook.opened?.(session, channel));
    }
  }

  /** Requests in flight in `direction` (for tests and diagnostics). */
  inFlight(direction: Direction): number {
    return this.requests.inFlight(direction);
  }

  /** Bytes (JSON, as received or sent) of the requests in flight in `direction`. */
  bytesInFlight(direction: Direction): number {
    return this.requests.bytesInFlight(direction);
  }

  /** The peer's cancelled requests still charged against its bounds (not in inFlight()), and their charged bytes (each at most half maxRequestBytes). */
  cancelledHeld(): { requests: number; bytes: number } {
    return this.requests.cancelledHeld();
  }

  private notify(message: JsonRpcMessage): Promise<void> {
    if (message.id !== undefined || typeof message.method !== 'string') return Promise.reject(new InvalidArgumentError('a hook may only send notifications (a method, no id)'));
    if (this.ended) return Promise.resolve();
    return this.toPeer(message);
  }

  /** A message received from the peer (its size, and its bytes when the transport has them). */
  fromPeer(message: JsonRpcMessage, bytes: number, data?: Uint8Array): void {
    void this.run('fromPeer', message, bytes, 0, data);
  }

  /**
   * A message the local side sends. Resolves when it was written (or answered or dropped by
   * a hook; then nothing is written). Rejects with TooManyRequestsInFlightError for a
   * request past MAX_TRACKED in flight (nothing is written).
   */
  toPeer(message: JsonRpcMessage): Promise<void> {
    const data = encodeMessage(message);
    return this.run('toPeer', message, data.length, this.hooks.length - 1, data);
  }

  /** The session ended: every hook's closed() once. */
  close(error?: PqmcpError): void {
    if (this.ended) return;
    this.ended = true;
    for (const hook of this.hooks) this.guard(hook, 'closed', () => hook.closed?.(this.session, error));
    this.requests.clear();
  }

  /**
   * Pass `message` through the hooks from index `start` in `direction`, then deliver it.
   * `data` is its encoding when known, reused (toPeer) unless a hook replaces the message.
   */
  private run(direction: Direction, message: JsonRpcMessage, bytes: number, start: number, data?: Uint8Array): Promise<void> {
    // No hooks (a pipeline only for maxRequestBytes): the local side's own requests go out
    // untracked, as without a pipeline (no MAX_TRACKED of their own, answers matched by the SDK).
    if (direction === 'toPeer' && this.hooks.length === 0 && isRequestMessage(message)) return this.sinks.toPeer(data ?? encodeMessage(message), message);
    if (direction === 'fromPeer' && isMisdirectedNotification(message)) {
      // A request sent as a notification: no hook decides notifications, so none sees it (R15-1).
      this.sinks.onerror(new MalformedRequestError(`a request method sent without an id: ${JSON.stringify(message.method).slice(0, 60)}`, undefined));
      return Promise.resolve();
    }
    if (isRequestMessage(message)) {
      const refused = this.requests.admit(direction, message, bytes);
      if (refused !== undefined) return refused;
    }
    let request = this.requests.track(direction, message, bytes);
    /** The entry this request created (it ends when the request does not go on). */
    const own = isRequestMessage(message) ? request : undefined;
    if (request === undefined && direction === 'fromPeer' && isResponseMessage(message)) {
      const asked = this.requests.coercedMatch(message.id!);
      if (asked !== undefined) {
        // Not delivered as sent: its request gets an error under the id it was sent with.
        this.sinks.onerror(new ResponseIdMismatchError(message.id));
        message = { jsonrpc: '2.0', id: asked, error: { code: JsonRpcErrorCode.internalError, message: 'pqmcp: the peer answered with an id that does not match the request; the response was dropped' } };
        data = undefined;
        request = this.requests.track(direction, message, bytes);
      }
    }
    const step = direction === 'fromPeer' ? 1 : -1;
    for (let i = start; i >= 0 && i < this.hooks.length; i += step) {
      const hook = this.hooks[i]!;
      const fn = direction === 'fromPeer' ? hook.fromPeer : hook.toPeer;
      if (fn === undefined) continue;
      // Listed field by field: `{ ...session, more }` costs microseconds per message on Node 20.
      const session = this.session;
      const ctx: HookContext = { role: session.role, peer: session.peer, sessionId: session.sessionId, remoteAddress: session.remoteAddress, direction, bytes, request, data };
      let result: HookResult;
      try {
        result = fn.call(hook, message, ctx);
      } catch (err) {
        const refused = isRequestMessage(message);
        // An answer to a request this pipeline tracks: its requester gets an error now instead
        // of waiting for its timeout (the answer itself is withheld, as a drop would).
        const answer = !refused && request !== undefined && isResponseMessage(message);
        this.report(hook, err, refused ? 'request' : answer ? 'response' : 'message');
        if (refused) result = { reply: errorResponse(message, JsonRpcErrorCode.internalError, 'request refused: internal error') };
        else if (answer) result = { replace: errorResponse(message, JsonRpcErrorCode.internalError, 'pqmcp: the response was withheld: internal error') };
        else result = { drop: true };
      }
      if (result === undefined) continue;
      if ('replace' in result) {
        message = result.replace;
        data = direction === 'toPeer' ? encodeMessage(message) : undefined;
        if (data) bytes = data.length;
        continue;
      }
      this.requests.settle(direction, message);
      if ('reply' in result) {
        const back: Direction = direction === 'fromPeer' ? 'toPeer' : 'fromPeer';
        const reply = result.reply;
        // The reply ends the request's entry when it passes back; one under another id cannot.
        if (own !== undefined && reply.id !== own.id) this.requests.forget(direction, own);
        if (back === 'toPeer') {
          const replyData = encodeMessage(reply);
          void this.run(back, reply, replyData.length, i - 1, replyData).catch((err) => this.sinks.onerror(toPqmcpError(err)));
        } else {
          // An answer for the local side: deliver it after the send that caused it returns.
          queueMicrotask(() => {
            const replyData = encodeMessage(reply);
            void this.run(back, reply, replyData.length, i + 1, replyData);
          });
        }
      } else if (own !== undefined) {
        // Dropped: the other side never sees it, so nothing will answer it.
        this.requests.forget(direction, own);
      }
      return Promise.resolve();
    }
    this.requests.settle(direction, message);
    // Replaced by something that is not this request any more: nothing will answer it.
    if (own !== undefined && !(isRequestMessage(message) && message.id === own.id)) this.requests.forget(direction, own);
    // A cancellation delivered to the side handling the request ends it there.
    const cancelled = this.requests.cancelTarget(direction, message);
    if (cancelled !== undefined) this.requests.cancel(cancelled.direction, cancelled.entry, direction === 'fromPeer');
    if (direction === 'fromPeer') {
      this.sinks.toLocal(message);
      return Promise.resolve();
    }
    return this.sinks.toPeer(data ?? encodeMessage(message), message);
  }

  /** Run a hook's opened() or closed(): a throw is reported (no message involved). */
  private guard(hook: MessageHook, during: 'opened' | 'closed', fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.report(hook, err, during);
    }
  }

  private report(hook: MessageHook, err: unknown, during: 'request' | 'response' | 'message' | 'opened' | 'closed'): void {
    this.sinks.onerror(new MessageHookError(hook.name ?? '(unnamed)', { cause: err, during }));
  }
}
