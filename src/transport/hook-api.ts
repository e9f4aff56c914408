/**
 * The message-hook API: what a hook is written against (the messages and context it sees,
 * what it may return, the channel it is given), and the small JSON-RPC helpers hooks use.
 * The pipeline that runs the hooks: message-hooks.ts; the requests in flight it tracks, and
 * the bounds whose refusals no hook sees (MAX_TRACKED and the bytes): request-tracker.ts.
 *
 * Message hooks: code that sees (and may refuse, answer, rewrite or drop) every JSON-RPC
 * message of an authenticated session where it passes the transport, with no change to the
 * MCP client or server on either side. Authorization, quotas, tool pinning and auditing are
 * built on it; applications can add their own (`hooks` option of both transports).
 *
 *   peer <-> [hooks[0]] <-> [hooks[1]] <-> ... <-> [hooks[n-1]] <-> local MCP client/server
 *
 * A message from the peer passes hooks[0] first; a message to the peer passes hooks[n-1]
 * first. So hooks[0] is the outermost: put an auditor before a policy and it sees both the
 * request and the policy's refusal.
 *
 * Each hook call returns one of:
 *   undefined            pass the message on unchanged;
 *   { replace: message } pass this message on instead;
 *   { reply: message }   do not pass it on; send `message` back to where it came from (it
 *                        travels back through the hooks it had already passed);
 *   { drop: true }       do not pass it on, answer nothing.
 */
import type { VerifiedPeer } from '../identity/trust.js';
import type { PqmcpError } from '../errors.js';

/** A JSON-RPC 2.0 message as the hooks see it (the SDK's JSONRPCMessage fits it). */
export interface JsonRpcMessage {
  jsonrpc: '2.0';
  id?: string | number;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
  [key: string]: unknown;
}

/** Which way a message travels, seen from this side. */
export type Direction = 'fromPeer' | 'toPeer';

/** What hooks know of the session they run in. */
export interface HookSession {
  /** This side's role. */
  readonly role: 'client' | 'server';
  /** The verified peer (the client on a server, the server on a client). */
  readonly peer: VerifiedPeer;
  /** The transport's sessionId (transcript hash, hex). */
  readonly sessionId: string;
  /** The peer's address as the socket saw it (server side; may be a proxy's). */
  readonly remoteAddress: string | undefined;
}

/** A request in flight, from the moment it enters the hooks until its response leaves them. */
export interface TrackedRequest {
  readonly id: string | number;
  readonly method: string;
  readonly params: unknown;
  /** 'fromPeer': the peer asked and this side answers; 'toPeer': this side asked. */
  readonly direction: Direction;
  /** Date.now() when it entered the hooks. */
  readonly startedAt: number;
  /** Bytes of the request's JSON. */
  readonly bytes: number;
  /** Free-form annotations shared by the hooks (e.g. a policy decision, an audit hash). */
  readonly notes: Record<string, unknown>;
}

export interface HookContext extends HookSession {
  /** The direction this message travels. */
  readonly direction: Direction;
  /** Bytes of this message's JSON (as received, or as it will be sent if not replaced). */
  readonly bytes: number;
  /**
   * For a request: its own entry. For a response: the request it answers, if known. For a
   * `notifications/cancelled`: the request it cancels, if in flight in the same direction.
   */
  readonly request: TrackedRequest | undefined;
  /**
   * This message's JSON text (UTF-8) as received or as it will be sent, when known: absent
   * once an earlier hook replaced a message from the peer. Read it, never change it.
   */
  readonly data?: Uint8Array | undefined;
}

export type HookResult = undefined | void | { replace: JsonRpcMessage } | { reply: JsonRpcMessage } | { drop: true };

/** What a hook may do in a session on its own initiative (given to opened()). */
export interface HookChannel {
  /**
   * Send a notification (no id) to the peer through every hook, as if the local side had
   * sent it. Resolves when written (or dropped by a hook); nothing happens once the session
   * ended. A message with an id is refused (InvalidArgumentError).
   */
  notify(message: JsonRpcMessage): Promise<void>;
  /**
   * Report a failure of the hook's own that happened outside its calls (work it deferred):
   * it reaches the transport's onerror as a throw from a hook call does, as
   * MessageHookError (ERR_MESSAGE_HOOK) with the error as its cause; nothing is refused.
   * Always set by MessagePipeline (optional for channels made by hand, e.g. in tests).
   */
  report?(error: unknown): void;
}

export interface MessageHook {
  /** For error reports. */
  readonly name?: string;
  /** The session is established and its hooks are about to see messages. */
  opened?(session: HookSession, channel: HookChannel): void;
  /** A message from the peer on its way to the local MCP side. */
  fromPeer?(message: JsonRpcMessage, ctx: HookContext): HookResult;
  /** A message from the local MCP side on its way to the peer. */
  toPeer?(message: JsonRpcMessage, ctx: HookContext): HookResult;
  /** The session ended (error: why, when it did not end cleanly). Called once. */
  closed?(session: HookSession, error?: PqmcpError): void;
}

/** JSON-RPC error codes used by pqmcp's own hooks and by the fail-closed path. */
export const JsonRpcErrorCode = {
  internalError: -32603,
  invalidRequest: -32600,
  /**
   * A peer's request past MAX_TRACKED in flight, or past the session's request bytes in
   * flight (JSON-RPC's implementation-defined range; retry once answers came).
   */
  tooManyInFlight: -32005,
} as const;

/** A JSON-RPC error response to `request` (which must have an id). */
export function errorResponse(request: JsonRpcMessage, code: number, message: string, data?: unknown): JsonRpcMessage {
  const error: JsonRpcMessage['error'] = data === undefined ? { code, message } : { code, message, data };
  return { jsonrpc: '2.0', id: request.id as string | number, error };
}

/**
 * A request: a method and an `id` member, whatever its value (null included: JSON-RPC 2.0
 * allows it, MCP does not, and a server whose JSON-RPC layer classifies by the member runs
 * it). The pipeline refuses one whose id is not a string or an integer before any hook
 * (jsonrpc.ts requestEnvelopeFault), so none passes as a notification (review 15, R15-1).
 */
export function isRequestMessage(m: JsonRpcMessage): boolean {
  return typeof m.method === 'string' && m.id !== undefined;
}

/**
 * A message with a method and no id whose method is not a notification's (MCP names every
 * notification `notifications/...`): a request sent without an id. The pipeline drops one
 * from the peer before any hook (R15-1): no hook decides notifications, so it must not reach
 * a server that would run it.
 */
export function isMisdirectedNotification(m: JsonRpcMessage): boolean {
  return typeof m.method === 'string' && m.id === undefined && !m.method.startsWith('notifications/');
}

export function isResponseMessage(m: JsonRpcMessage): boolean {
  return m.method === undefined && m.id !== undefined && ('result' in m || 'error' in m);
}
