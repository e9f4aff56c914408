/**
 * The gateway's admission of verified agents (`pqmcp serve --allow-id/--require-scope/
 * --require-attr/--max-sessions`), and how a refusal looks on the wire, so the bridge
 * (`pqmcp connect`) can tell "refused" from "accepted" without loading the gateway.
 *
 * A refused session is not refused in the handshake (the agent is verified; the gateway's
 * own policy says no): its first request is answered with
 *
 *   { jsonrpc: "2.0", id, error: { code: -32001, message: "pqmcp gateway: not admitted: <reason>",
 *                                  data: { pqmcp: "not-admitted", reason: "<reason>" } } }
 *
 * and the session is closed. Sharp edge: the reason names the agent and the flag that
 * refused it; nothing secret is in it.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { VerifiedPeer } from '../identity/trust.js';

/** JSON-RPC error code of the gateway's refusal (implementation-defined server error range). */
export const NOT_ADMITTED_CODE = -32001;

export interface Admission {
  allowIds: string[];
  scopes: string[];
  attributes: Array<[string, string]>;
}

/** Why `peer` may not use this gateway, or undefined when it may. */
export function admissionProblem(peer: Pick<VerifiedPeer, 'agentId' | 'scopes' | 'attributes'>, a: Admission): string | undefined {
  if (a.allowIds.length > 0) {
    const ok = a.allowIds.some((pattern) => (pattern.endsWith('*') ? peer.agentId.startsWith(pattern.slice(0, -1)) : peer.agentId === pattern));
    if (!ok) return `${peer.agentId} is not an allowed agent id (--allow-id)`;
  }
  const missing = a.scopes.filter((s) => !peer.scopes.includes(s));
  if (missing.length > 0) return `${peer.agentId} lacks required scope${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (--require-scope)`;
  for (const [k, v] of a.attributes) {
    if (!Object.hasOwn(peer.attributes, k) || peer.attributes[k] !== v) return `${peer.agentId} lacks required attribute ${k}=${v} (--require-attr)`;
  }
  return undefined;
}

/** The answer to a refused session's first request. */
export function notAdmittedAnswer(id: string | number, reason: string): JSONRPCMessage {
  return { jsonrpc: '2.0', id, error: { code: NOT_ADMITTED_CODE, message: `pqmcp gateway: not admitted: ${reason}`, data: { pqmcp: 'not-admitted', reason } } };
}

/** The gateway's refusal reason, if `m` is its not-admitted answer. */
export function notAdmittedReason(m: JSONRPCMessage): string | undefined {
  const error = (m as { error?: { code?: unknown; data?: unknown } }).error;
  if (error?.code !== NOT_ADMITTED_CODE) return undefined;
  const data = error.data as { pqmcp?: unknown; reason?: unknown } | null | undefined;
  return data?.pqmcp === 'not-admitted' && typeof data.reason === 'string' ? data.reason : undefined;
}
