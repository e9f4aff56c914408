/**
 * The few MCP SDK shapes pqmcp's public types mention, as structural types of its own, so
 * that pqmcp's .d.ts works with whichever SDK major the application installed (1.x
 * `@modelcontextprotocol/sdk`, 2.x `@modelcontextprotocol/client` / `server`) or none.
 *
 * Sharp edges:
 * - These are deliberately looser than the SDKs' own types: each SDK's `JSONRPCMessage`,
 *   `MessageExtraInfo` and `AuthInfo` is assignable to them, and pqmcp's transports are
 *   assignable to each SDK's `Transport` (test/types/sdk-compat.ts checks both majors).
 * - pqmcp checks only the JSON-RPC envelope of what it receives; the SDK validates the rest.
 */

/** A JSON-RPC 2.0 message: request, notification, result or error response (one definition, shared with the message hooks). */
import type { JsonRpcMessage } from './hook-api.js';
export type { JsonRpcMessage };

/** The SDKs' AuthInfo: what a request handler sees as the caller's authentication. */
export interface McpAuthInfo {
  token: string;
  clientId: string;
  scopes: string[];
  /** Unix seconds. */
  expiresAt?: number;
  resource?: URL;
  extra?: Record<string, unknown>;
}

/** What a transport hands the SDK beside each received message (MessageExtraInfo). */
export interface McpMessageExtra {
  authInfo?: McpAuthInfo;
}

/** The SDKs' TransportSendOptions, as far as a single-channel transport reads them. */
export interface McpSendOptions {
  relatedRequestId?: string | number;
  /**
   * 2.x: aborts THIS message's underlying request on per-request transports. pqmcp is one
   * channel per session (like stdio): it ignores the signal, and does not declare
   * `hasPerRequestStream`, so the SDK cancels with `notifications/cancelled` in both eras.
   */
  requestSignal?: AbortSignal;
}

/** The callback the SDK installs to receive messages. */
export type McpOnMessage = <T extends JsonRpcMessage>(message: T, extra?: McpMessageExtra) => void;
