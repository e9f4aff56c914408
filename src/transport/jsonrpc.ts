/**
 * JSON-RPC messages <-> the bytes a pqmcp session carries (UTF-8 JSON, one message per
 * pqmcp application message; no newline framing, the record layer frames).
 *
 * Sharp edges:
 * - Decoding is strict UTF-8 and checks only the envelope (an object with jsonrpc "2.0");
 *   the SDK validates the rest and reports what it cannot classify. A message that fails
 *   the envelope is answered (an Invalid Request error, or an alert and close), never
 *   dropped in silence: a peer waiting for an answer would otherwise stall.
 * - Error messages never include the payload.
 */
import type { JsonRpcMessage } from './mcp-types.js';
import { BadApplicationMessageError, DecodeError } from '../errors.js';
import type { PqmcpError } from '../errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeMessage(message: JsonRpcMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

export function decodeMessage(data: Uint8Array): JsonRpcMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch {
    throw new DecodeError('received a message that is not UTF-8 JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || (parsed as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
    throw new DecodeError('received a message that is not a JSON-RPC 2.0 object');
  }
  return parsed as JsonRpcMessage;
}

/** A request (method and id): the peer must answer it. */
export function isRequest(message: JsonRpcMessage): boolean {
  return 'method' in message && 'id' in message;
}

/** What to do with a received application message that is not one JSON-RPC message. */
export interface DeliveryFailure {
  /** Report the problem locally (the transport's onerror). */
  onerror: ((error: PqmcpError) => void) | undefined;
  /** Send these bytes to the peer (a JSON-RPC error answering its malformed request). */
  reply: (data: Uint8Array) => void;
  /** End the session with this error (its alert, then close); the abort reports it locally. */
  abort: (error: PqmcpError) => void;
}

/** The DeliveryFailure of a transport on `connection`: replies and aborts go to that session. */
export function failureOn(connection: { send(data: Uint8Array): Promise<void>; abort(error: PqmcpError): void }, onerror: (error: PqmcpError) => void): DeliveryFailure {
  return {
    onerror,
    reply: (bytes) => void connection.send(bytes).catch(() => undefined),
    abort: (error) => connection.abort(error),
  };
}

/** JSON-RPC 2.0's "Invalid Request" error code. */
export const INVALID_REQUEST = -32600;

/** The id of a malformed request we can still answer: a string or number id and a method. */
function answerableId(value: unknown): string | number | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { id, method } = value as { id?: unknown; method?: unknown };
  if (typeof method !== 'string') return undefined;
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : undefined;
}

/**
 * Decode a received message for delivery. An application message must be exactly one
 * JSON-RPC 2.0 message (docs/protocol.md, section 11.3). Anything else is reported through
 * `onerror` and answered, so the sender never waits in silence:
 * - a request with a usable id and method but a bad envelope (e.g. no jsonrpc "2.0") gets a
 *   JSON-RPC Invalid Request error with that id; the session stays up;
 * - anything else (not UTF-8 JSON, a batch array, no id to answer) ends the session with the
 *   bad_application_message alert (BadApplicationMessageError).
 * Returns the message, or undefined when it was refused.
 */
export function decodeForDelivery(data: Uint8Array, failure: DeliveryFailure): JsonRpcMessage | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch {
    return refuse(failure, new BadApplicationMessageError('received an application message that is not UTF-8 JSON'));
  }
  if (Array.isArray(parsed)) return refuse(failure, new BadApplicationMessageError('received a JSON-RPC batch: pqmcp carries exactly one JSON-RPC message per application message'));
  if (typeof parsed === 'object' && parsed !== null && (parsed as { jsonrpc?: unknown }).jsonrpc === '2.0') return parsed as JsonRpcMessage;
  const id = answerableId(parsed);
  if (id === undefined) return refuse(failure, new BadApplicationMessageError('received an application message that is not a JSON-RPC 2.0 object'));
  const error = new DecodeError('received a request that is not a JSON-RPC 2.0 message; answered with Invalid Request');
  failure.onerror?.(error);
  failure.reply(encoder.encode(JSON.stringify({ jsonrpc: '2.0', id, error: { code: INVALID_REQUEST, message: 'Invalid Request: not a JSON-RPC 2.0 message' } })));
  return undefined;
}

/** The `params._meta` key by which a message names the task it belongs to (MCP tasks). */
export const RELATED_TASK = 'io.modelcontextprotocol/related-task';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isIdLike = (v: unknown): boolean => typeof v === 'string' || Number.isSafeInteger(v);

/**
 * Why a request (a method and an id) falls outside the envelope both MCP TypeScript SDK
 * majors accept (`JSONRPCRequestSchema`, the same in 1.x and 2.x), or undefined when it
 * fits. The SDKs drop such a request unanswered (an "Unknown message type" error of their
 * own), so the message pipeline refuses it with Invalid Request before it takes a slot:
 * - the id is a string or a safe integer (MCP: "a string or integer ID");
 * - no member but jsonrpc, id, method and params (the schema is strict);
 * - params, when present, is an object; its `_meta`, when present, an object whose
 *   `progressToken` is a string or a safe integer and whose
 *   `io.modelcontextprotocol/related-task` is an object with a string `taskId`.
 * test/transport/request-envelope.test.ts checks it against both SDKs' own guard.
 */
export function requestEnvelopeFault(m: Record<string, unknown>): string | undefined {
  if (!isIdLike(m['id'])) return 'the id is not a string or an integer';
  for (const key of Object.keys(m)) if (key !== 'jsonrpc' && key !== 'id' && key !== 'method' && key !== 'params') return 'a member other than jsonrpc, id, method and params';
  if (!('params' in m)) return undefined;
  const params = m['params'];
  if (!isObject(params)) return 'params is not an object';
  if (!('_meta' in params)) return undefined;
  const meta = params['_meta'];
  if (!isObject(meta)) return 'params._meta is not an object';
  if ('progressToken' in meta && !isIdLike(meta['progressToken'])) return 'params._meta.progressToken is not a string or an integer';
  const task = meta[RELATED_TASK];
  if (RELATED_TASK in meta && !(isObject(task) && typeof task['taskId'] === 'string')) return `params._meta["${RELATED_TASK}"] is not { taskId: string }`;
  return undefined;
}

function refuse(failure: DeliveryFailure, error: BadApplicationMessageError): undefined {
  failure.abort(error);
  return undefined;
}
