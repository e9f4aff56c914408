/**
 * JSON-RPC messages <-> the bytes a pqmcp session carries (UTF-8 JSON, one message per
 * pqmcp application message; no newline framing, the record layer frames).
 *
 * Sharp edges:
 * - Decoding is strict UTF-8 and checks only the envelope (an object with jsonrpc "2.0");
 *   the SDK validates the rest and reports what it cannot classify.
 * - Error messages never include the payload.
 */
import type { JsonRpcMessage } from './mcp-types.js';
import { DecodeError, toPqmcpError } from '../errors.js';
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

/**
 * Decode a received message for delivery. A message that is not JSON-RPC is reported
 * through `onerror` (the connection stays up: one bad message loses only itself) and
 * undefined is returned.
 */
export function decodeForDelivery(data: Uint8Array, onerror: ((error: PqmcpError) => void) | undefined): JsonRpcMessage | undefined {
  try {
    return decodeMessage(data);
  } catch (err) {
    onerror?.(toPqmcpError(err));
    return undefined;
  }
}
