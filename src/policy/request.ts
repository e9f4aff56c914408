/**
 * The Cedar principal and context for a pqmcp session, built from the verified peer (the
 * same facts the SDK's authInfo carries; transport/auth-info.ts).
 *
 * Sharp edges:
 * - Only verified facts go in: the credential's claims as the handshake checked them. A
 *   peer cannot add attributes or scopes by anything it sends over the session.
 * - Credential attributes become tags (string values), so a policy must test
 *   principal.hasTag("k") before principal.getTag("k"); without it the policy errors on
 *   agents lacking the attribute and does not apply to them.
 */
import type { VerifiedPeer } from '../identity/trust.js';
import type { CedarEntity, CedarValue } from './cedar.js';

/** The Agent entity for a verified peer (its issuer as parent, its attributes as tags). */
export function principalEntity(peer: VerifiedPeer): CedarEntity {
  return {
    uid: { type: 'Agent', id: peer.agentId },
    attrs: {
      issuer: peer.issuer,
      fingerprint: peer.fingerprint,
      scopes: [...peer.scopes],
      displayName: peer.displayName,
      serial: peer.serial,
      selfSigned: peer.selfSigned,
      notBefore: peer.notBefore,
      notAfter: peer.notAfter,
      usage: peer.usage,
    },
    parents: [{ type: 'Issuer', id: peer.issuer }],
    tags: { ...peer.attributes },
  };
}

/** What a request's context holds (POLICY_SCHEMA's RequestContext). */
export interface RequestFacts {
  sessionId: string;
  requestBytes: number;
  remoteAddress: string | undefined;
  /** Milliseconds since the epoch. */
  now: number;
}

export function contextFor(facts: RequestFacts): Record<string, CedarValue> {
  const seconds = Math.floor(facts.now / 1000);
  return {
    sessionId: facts.sessionId,
    time: seconds,
    utcHour: Math.floor((seconds % 86_400) / 3600),
    requestBytes: facts.requestBytes,
    remoteAddress: facts.remoteAddress ?? '',
  };
}
