/**
 * What the matrix's feature servers of both majors share and report the same way: their
 * counters, and the verified peer as `pqmcp serve` hands it to a per-session child.
 */

/** Counters one feature server process keeps (reported by the `stats` tool). */
export interface FeatureStats {
  cancelled: number;
  handlerCalls: number;
}

/** The verified peer as `pqmcp serve` hands it to a per-session child (its PQMCP_PEER_* environment). */
export function peerEnv(): Record<string, string> {
  const env = (name: string): string => process.env[name] ?? '';
  return { id: env('PQMCP_PEER_ID'), fingerprint: env('PQMCP_PEER_FINGERPRINT'), issuer: env('PQMCP_PEER_ISSUER'), scopes: env('PQMCP_PEER_SCOPES'), session: env('PQMCP_SESSION_ID') };
}

