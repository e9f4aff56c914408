/**
 * The verified peer of a pqmcp session as the MCP SDK's AuthInfo, which the SDK hands to
 * every request handler: `extra.authInfo` on SDK 1.x, `ctx.http.authInfo` on 2.x (2.x puts
 * a transport's auth there for every transport, not only HTTP).
 *
 *   clientId  = the peer's attested agent id
 *   scopes    = the credential's claims (scopes)
 *   token     = lowercase hex fingerprint of the peer's composite public key (stable per key)
 *   expiresAt = the credential's notAfter, Unix seconds
 *   extra     = { issuer, serial, suite, backend, protocol, sessionId, displayName,
 *                 attributes, notBefore, selfSigned }
 *
 * Sharp edges:
 * - The object is deeply frozen and shared by every request of the session: a handler
 *   cannot change what the next handler sees.
 * - `token` is a public key fingerprint, not a bearer secret: it names the peer, it does not
 *   authenticate anything on its own. The authentication is the session itself.
 */
import { toHex } from '../bytes.js';
import type { BackendName } from '../crypto/types.js';
import type { HandshakeResult } from '../handshake/types.js';
import { SUITE_NAMES } from '../wire/messages.js';
import type { McpAuthInfo } from './mcp-types.js';

/** Protocol name reported in authInfo.extra.protocol for each version. */
const PROTOCOL_NAMES: Record<number, string> = { 1: 'PQMCP/1' };

/** What the SDK's AuthInfo.extra holds for a pqmcp peer. */
export interface PqmcpAuthExtra {
  /** Issuer id (the agent id itself for a pinned self-signed credential). */
  issuer: string;
  /** Credential serial, lowercase hex. */
  serial: string;
  /** Negotiated cipher suite name, e.g. PQMCP_XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256. */
  suite: string;
  /** This side's crypto backend. */
  backend: BackendName;
  /** e.g. 'PQMCP/1'. */
  protocol: string;
  /** Transcript hash, hex: the transport's sessionId. */
  sessionId: string;
  displayName: string;
  attributes: Readonly<Record<string, string>>;
  /** Unix seconds. */
  notBefore: number;
  selfSigned: boolean;
  [key: string]: unknown;
}

export interface PqmcpAuthInfo extends McpAuthInfo {
  expiresAt: number;
  extra: PqmcpAuthExtra;
}

/** The session id both transports report: the handshake transcript hash in hex. */
export function sessionIdOf(result: HandshakeResult): string {
  return toHex(result.transcriptHash);
}

export function authInfoFor(result: HandshakeResult, backend: BackendName): PqmcpAuthInfo {
  const peer = result.peer;
  const extra: PqmcpAuthExtra = {
    issuer: peer.issuer,
    serial: peer.serial,
    suite: SUITE_NAMES[result.suite] ?? `0x${result.suite.toString(16).padStart(4, '0')}`,
    backend,
    protocol: PROTOCOL_NAMES[result.version] ?? `PQMCP/${result.version}`,
    sessionId: sessionIdOf(result),
    displayName: peer.displayName,
    attributes: Object.freeze({ ...peer.attributes }),
    notBefore: peer.notBefore,
    selfSigned: peer.selfSigned,
  };
  return Object.freeze({
    token: peer.fingerprint,
    clientId: peer.agentId,
    scopes: Object.freeze([...peer.scopes]) as string[],
    expiresAt: peer.notAfter,
    extra: Object.freeze(extra),
  });
}
