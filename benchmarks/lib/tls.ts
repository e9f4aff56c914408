/**
 * TLS 1.3 with mutual authentication for the wss baseline: the options a careful user
 * would set (TLS 1.3 only, client certificate required and verified against the CA,
 * ECDSA P-256 certificates) and the check of which key-exchange group was negotiated.
 *
 * Groups: `X25519` everywhere; `X25519MLKEM768` where this Node's OpenSSL offers it
 * (OpenSSL 3.5, Node 24+). The client offers exactly one group per variant, so the
 * negotiated group is known; `negotiatedGroup` reads it back from the socket.
 *
 * Sharp edges:
 * - Client secure contexts are built once and reused (certificate parsing is not part of a
 *   handshake a long-running client makes); the server context likewise.
 * - No session resumption: every connection is a full handshake, as every pqmcp one is.
 */
import { createSecureContext } from 'node:tls';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Certificates } from './certs.js';

export type TlsGroup = 'X25519' | 'X25519MLKEM768';

/** Whether this runtime's OpenSSL accepts `group`. */
export function groupOffered(group: TlsGroup): boolean {
  try {
    createSecureContext({ ecdhCurve: group });
    return true;
  } catch {
    return false;
  }
}

/** Groups the server accepts: every group this runtime offers. */
export function serverGroups(): string {
  return (['X25519MLKEM768', 'X25519'] as const).filter(groupOffered).join(':');
}

export function serverTlsOptions(certs: Certificates) {
  return {
    key: certs.serverKey,
    cert: certs.serverCert,
    ca: certs.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3' as const,
    ecdhCurve: serverGroups(),
    sessionTimeout: 0,
  };
}

const contexts = new Map<TlsGroup, SecureContext>();

/** ws client options for a mutually authenticated TLS 1.3 connection offering `group` only. */
export function clientTlsOptions(certs: Certificates, group: TlsGroup) {
  let secureContext = contexts.get(group);
  if (!secureContext) {
    secureContext = createSecureContext({ key: certs.clientKey, cert: certs.clientCert, ca: certs.ca, minVersion: 'TLSv1.3', ecdhCurve: group });
    contexts.set(group, secureContext);
  }
  return { secureContext, minVersion: 'TLSv1.3' as const, rejectUnauthorized: true };
}

/** The negotiated key-exchange group, e.g. 'X25519MLKEM768' or 'X25519'. */
export function negotiatedGroup(socket: TLSSocket): string {
  const info = socket.getEphemeralKeyInfo() as { name?: string } | null;
  return info?.name ?? 'unknown';
}
