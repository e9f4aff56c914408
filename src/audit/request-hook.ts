/**
 * The request auditor: a message hook (transport/hook-api.ts) that turns each
 * JSON-RPC request and its response into one `request` audit event. The transports put it
 * OUTERMOST (hooks[0]) when `onAuditEvent` is set, so it also sees the refusals of inner
 * hooks (a policy's denial, a hook that failed closed) exactly as the peer gets them.
 *
 * Sharp edges:
 * - Typed structurally (it needs only a few fields of the hook context), so audit/ does
 *   not depend on transport/.
 * - The event is emitted when the response passes this hook: on the wire side for requests
 *   from the peer, on arrival for requests this side sent. A request whose
 *   `notifications/cancelled` passes this hook first (the pipeline sets `ctx.request` on a
 *   cancellation) is emitted then, with outcome `cancelled`: once, even if an answer
 *   arrives anyway (the pipeline passes that answer unmatched). Requests still unanswered
 *   when the session ends are emitted then, with outcome `unanswered`.
 * - With `hashes: false` (a sink that only counts, e.g. metrics) no digest is taken and
 *   events carry no requestHash/responseHash.
 * - Hashes are of each message's JSON text exactly as it crossed the transport (the bytes
 *   the transport received, or will send), so the client's and the server's trails carry
 *   the same hash for the same request and response, and nothing is serialized again.
 * - Outcome `denied` when an inner hook recorded `notes.policy.decision === 'deny'` and the
 *   response is an error; `error` for any other JSON-RPC error (an `error` member of any
 *   value, null included: R15-3), for a `result` that is not an object (null included: no
 *   MCP SDK takes it; R15-8) and for a tool result with `isError: true`.
 * - What is recorded is the answer as it crossed the wire, not what inner hooks then make of
 *   it: a response from the peer is emitted when it passes this hook, before an inner hook
 *   withholds tools from it, replaces it or drops it on a throw, so the client's and the
 *   server's trails agree on it (hash and outcome). The peer's answer is JSON, whatever
 *   its shape: making its event never throws (a throw here used to drop the answer and, its
 *   request already taken off the unanswered, leave the request out of the trail: R15-3).
 * - Per-session state is keyed by sessionId and dropped at close; at most 2 x MAX_TRACKED
 *   unanswered requests per session are remembered: the pipeline's own bound on requests in
 *   flight, both directions, so every request it accepts keeps its hash until answered.
 * - Off the response's path: the digests of requests from the peer, and the whole event of
 *   a response this side sends (its digest, and the sink: the trail's JSON line and hash,
 *   the metrics), are taken after the current turn's writes, in one batch at the end of the
 *   turn (`afterWrites`), not before the request reaches its handler or before the response
 *   reaches the wire. What a request and its answer cost the audit is unchanged; the peer
 *   just does not wait for it (a sequential caller's round trip was 4-19 µs longer). What is
 *   measured stays as it was: the event's time and duration are read when the response
 *   passes, and the digests are of the same bytes, which nothing reuses (each message is
 *   its own encoding; a received message is a view of its own decrypted record). Events
 *   keep their order (one queue, first in first out; an event for what the peer sent, and a
 *   session's end, first empty it). With `content: true` nothing is deferred: the event
 *   carries the application's objects, which must be read as they were sent. Responses and
 *   cancellations from the peer are emitted as they arrive, before the application sees them.
 * - A deferred job that fails (an event that cannot be made: an inner hook's note with a
 *   getter that throws) is reported where the pipeline reports a hook's throw: the session's
 *   channel (HookChannel.report) hands it to the transport's onerror as MessageHookError;
 *   the jobs after it still run, in order. So does an `unanswered` event at the session's
 *   end, which costs only itself. A sink's own throw is ignored, as it always was (emitTo).
 */
import { clip, emitTo, sha256Hex } from './events.js';
import type { AuditSink, PolicyNote, RequestEvent, RequestOutcome } from './events.js';

interface Rpc {
  id?: string | number;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { code: number; message: string };
}

interface Peer {
  agentId: string;
  issuer: string;
  fingerprint: string;
  serial: string;
}

interface SessionLike {
  readonly role: 'client' | 'server';
  readonly peer: Peer;
  readonly sessionId: string;
}

interface Tracked {
  readonly method: string;
  readonly params: unknown;
  readonly direction: 'fromPeer' | 'toPeer';
  readonly startedAt: number;
  readonly bytes: number;
  readonly notes: Record<string, unknown>;
}

interface Ctx extends SessionLike {
  readonly bytes: number;
  readonly request: Tracked | undefined;
  readonly data?: Uint8Array | undefined;
}

/** The part of the pipeline's HookChannel the auditor uses: where a failure of deferred work goes. */
interface ChannelLike {
  report?(error: unknown): void;
}

type Report = ((error: unknown) => void) | undefined;

/** A session's requests seen and not yet answered, with the digest of each, and its channel's report. */
interface SessionState {
  readonly requests: Map<Tracked, Digest>;
  readonly report: Report;
}

export interface RequestAuditorOptions {
  /** Put params.arguments (or params) and the result in each event. Default false: hashes only. */
  content?: boolean;
  /** Hash each request and response (requestHash, responseHash). Default true; false when no sink reads them. */
  hashes?: boolean;
}

/** The pipeline's bound (MAX_TRACKED in flight) in each of the two directions. */
const MAX_PENDING = 2 * 4096;

/**
 * Run `job` once the writes of this turn are on their way: the transport hands what a turn
 * produced to the socket in a `setImmediate` (transport/batch-writer.ts) scheduled while the
 * hooks return; a microtask runs after that call stack, and the `setImmediate` it schedules
 * comes after the writer's. (A zero timeout where there is no setImmediate: browsers.)
 */
function afterWrites(job: () => void): void {
  queueMicrotask(() => (typeof setImmediate === 'function' ? setImmediate(job) : setTimeout(job, 0)));
}

const noop = (): void => {};

/** A request's digest, filled in when its deferred hash runs (before its response's event, which queues after it). */
interface Digest {
  hash: string | undefined;
}

/** A message hook emitting one `request` event per request. */
export function requestAuditor(sink: AuditSink, options: RequestAuditorOptions = {}) {
  const content = options.content === true;
  const hashes = options.hashes !== false;
  /** Per session: its requests seen and not yet answered, and where its failures go. */
  const sessions = new Map<string, SessionState>();
  /** Requests recorded as cancelled (an answer that follows all the same is not recorded again). */
  const cancelled = new WeakSet<Tracked>();
  /**
   * Deferred work (see "Off the response's path"), in order, and where each job's failure
   * goes (`reports[i]`, its session's); `drain` runs it from `next` on.
   */
  const queue: (() => void)[] = [];
  const reports: Report[] = [];
  let next = 0;
  const drain = (): void => {
    // One queue consumed in place: a drain started by a sink (one that closes a session
    // from its event: closed() drains) goes on where the outer one was, so order holds.
    while (next < queue.length) {
      const job = queue[next]!;
      const report = reports[next];
      queue[next] = noop;
      reports[next++] = undefined;
      try {
        job();
      } catch (err) {
        // Outside any hook call now: reported where the pipeline reports a hook's throw,
        // and the queue goes on. (A sink's own throw never gets here: emitTo ignores it.)
        tell(report, err);
      }
    }
    queue.length = 0;
    reports.length = 0;
    next = 0;
  };
  const later = (job: () => void, report: Report): void => {
    if (content) return job();
    reports.push(report);
    if (queue.push(job) === 1) afterWrites(drain);
  };

  const see = (message: Rpc, ctx: Ctx, direction: 'fromPeer' | 'toPeer'): undefined => {
    const request = ctx.request;
    if (request === undefined) return undefined;
    const state = sessions.get(ctx.sessionId);
    const set = state?.requests;
    if (message.method !== undefined && message.id !== undefined) {
      // A request entering the hooks: its digest, off the way to its handler when it came from the peer.
      if (!set || set.size >= MAX_PENDING) return undefined;
      const digest: Digest = { hash: undefined };
      set.set(request, digest);
      if (hashes) {
        const bytes = bytesOf(message, ctx.data);
        if (direction === 'fromPeer') later(() => (digest.hash = sha256Hex(bytes)), state.report);
        else digest.hash = sha256Hex(bytes);
      }
      return undefined;
    }
    if (message.method !== undefined && message.method !== 'notifications/cancelled') return undefined;
    // A response, or the cancellation of a request in flight (recorded once, as `cancelled`).
    if (cancelled.has(request)) return undefined;
    if (message.method !== undefined) cancelled.add(request);
    const digest = set?.get(request);
    set?.delete(request);
    const response = message.method === undefined ? message : undefined;
    const now = Date.now();
    const bytes = response && hashes ? bytesOf(response, ctx.data) : undefined;
    const responseBytes = response ? ctx.bytes : 0;
    const emit = () => emitTo(sink, eventFor(ctx, request, digest?.hash, response, responseBytes, bytes === undefined ? undefined : sha256Hex(bytes), content, now, response === undefined));
    // What this side sends: once it is on its way. What the peer sent: now, after what is queued.
    if (direction === 'toPeer') later(emit, state?.report);
    else {
      drain();
      emit();
    }
    return undefined;
  };

  return {
    name: 'audit',
    opened(session: SessionLike, channel?: ChannelLike): void {
      const report = channel?.report;
      sessions.set(session.sessionId, { requests: new Map(), report: report && ((err) => report.call(channel, err)) });
    },
    fromPeer: (message: Rpc, ctx: Ctx) => see(message, ctx, 'fromPeer'),
    toPeer: (message: Rpc, ctx: Ctx) => see(message, ctx, 'toPeer'),
    closed(session: SessionLike): void {
      // What is deferred first (this session's answered requests come before its unanswered ones).
      drain();
      const state = sessions.get(session.sessionId);
      sessions.delete(session.sessionId);
      const now = Date.now();
      for (const [request, digest] of state?.requests ?? []) {
        // One event that cannot be made (an inner hook's odd note) costs only itself.
        try {
          emitTo(sink, eventFor(session, request, digest.hash, undefined, 0, undefined, content, now));
        } catch (err) {
          tell(state?.report, err);
        }
      }
    },
  };
}

/** Report a failure of the auditor's own; a reporter that throws (an onerror that does) is not let out. */
function tell(report: Report, err: unknown): void {
  try {
    report?.(err);
  } catch {
    // Outside any hook call (nothing would catch it): an audit failure must not take the process down.
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nameOf(method: string, params: unknown): string | undefined {
  if (typeof params !== 'object' || params === null) return undefined;
  const p = params as { name?: unknown; uri?: unknown };
  const value = typeof p.name === 'string' ? p.name : typeof p.uri === 'string' ? p.uri : undefined;
  return value === undefined || method === 'initialize' ? undefined : clip(value);
}

/** Arguments of a tool call or prompt; the whole params otherwise. */
function argumentsOf(params: unknown): unknown {
  if (typeof params === 'object' && params !== null && 'arguments' in params) return (params as { arguments?: unknown }).arguments;
  return params;
}

function policyOf(notes: Record<string, unknown>): PolicyNote | undefined {
  const p = notes['policy'] as { decision?: unknown; policies?: unknown; reason?: unknown } | undefined;
  if (typeof p !== 'object' || p === null || (p.decision !== 'allow' && p.decision !== 'deny')) return undefined;
  const note: PolicyNote = { decision: p.decision };
  if (Array.isArray(p.policies)) note.policies = p.policies.filter((x): x is string => typeof x === 'string').map(clip);
  if (typeof p.reason === 'string') note.reason = clip(p.reason);
  return note;
}

/** What is hashed: the message's JSON text as it crossed the transport (re-encoded now if a hook replaced it). */
function bytesOf(message: Rpc, data: Uint8Array | undefined): string | Uint8Array {
  return data ?? JSON.stringify(message);
}

/** `now`: when the response or cancellation passed (or the session ended): the event's time, and the end of its duration. */
function eventFor(
  session: SessionLike,
  request: Tracked,
  requestHash: string | undefined,
  response: Rpc | undefined,
  responseBytes: number,
  responseHash: string | undefined,
  content: boolean,
  now: number,
  cancelled = false,
): RequestEvent {
  const peer = session.peer;
  const policy = policyOf(request.notes);
  const args = argumentsOf(request.params);
  let outcome: RequestOutcome;
  if (response === undefined) outcome = cancelled ? 'cancelled' : 'unanswered';
  else if (response.error !== undefined) outcome = policy?.decision === 'deny' ? 'denied' : 'error';
  // A result that is no object (null: R15-8) is an answer no MCP SDK takes: not `ok`.
  else outcome = !isObject(response.result) || response.result['isError'] === true ? 'error' : 'ok';
  const event: RequestEvent = {
    type: 'request',
    time: now,
    role: session.role,
    sessionId: session.sessionId,
    agentId: peer.agentId,
    issuer: peer.issuer,
    fingerprint: peer.fingerprint,
    serial: peer.serial,
    direction: request.direction,
    method: clip(request.method),
    requestBytes: request.bytes,
    responseBytes,
    durationMs: now - request.startedAt,
    outcome,
  };
  const name = nameOf(request.method, request.params);
  if (name !== undefined) event.name = name;
  if (requestHash !== undefined) event.requestHash = requestHash;
  if (responseHash !== undefined) event.responseHash = responseHash;
  // The peer's error may be any JSON value (`"error": null` threw here: R15-3).
  const error: unknown = response?.error;
  if (isObject(error)) {
    if (typeof error['code'] === 'number') event.errorCode = error['code'];
    if (typeof error['message'] === 'string') event.errorMessage = clip(error['message']);
  }
  if (policy) event.policy = policy;
  if (content) {
    if (args !== undefined) event.arguments = args;
    if (response?.result !== undefined) event.result = response.result;
  }
  return event;
}
