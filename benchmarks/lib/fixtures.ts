/**
 * pqmcp identities for the benchmarks: one issuer, a server agent and a client agent, made
 * fresh per run in the measuring process and sent to the server process as seeds and
 * encoded credentials (plain bytes over IPC).
 *
 * Sharp edges:
 * - Built on the `native` backend (it falls back to noble per primitive on Node 20); the
 *   same seed gives the same keys on every backend, so either backend can use them.
 * - Throwaway keys: they exist only in the processes of one run.
 */
import type { CryptoBackend } from '../../src/crypto/types.js';
import { selectBackend } from '../../src/crypto/select.js';
import { TrustStore, createAgentIdentity, createIssuer, generateIdentitySeed, identityFromSeed, issueCredential } from '../../src/identity/index.js';
import type { AgentIdentity } from '../../src/identity/index.js';

export const SERVER_AGENT_ID = 'agent://pqmcp-bench/server';
export const CLIENT_AGENT_ID = 'agent://pqmcp-bench/client';

export interface AgentSeed {
  seed: Uint8Array;
  credential: Uint8Array;
}

/** Everything both sides need, as plain data. */
export interface PqmcpFixture {
  issuerId: string;
  issuerPublicKey: Uint8Array;
  server: AgentSeed;
  client: AgentSeed;
}

export function makePqmcpFixture(): PqmcpFixture {
  const backend = selectBackend('native');
  const issuer = createIssuer(backend, { id: 'issuer://pqmcp-bench' });
  const agent = (agentId: string, usage: 'client' | 'server', scopes: string[]): AgentSeed => {
    const seed = generateIdentitySeed(backend);
    const keyPair = identityFromSeed(backend, seed);
    const credential = issueCredential(backend, issuer, { agentId, publicKey: keyPair.publicKey, usage, scopes, validForSeconds: 24 * 3600 });
    return { seed, credential: credential.encoded };
  };
  return { issuerId: issuer.id, issuerPublicKey: issuer.publicKey, server: agent(SERVER_AGENT_ID, 'server', ['mcp:serve']), client: agent(CLIENT_AGENT_ID, 'client', ['tools:call']) };
}

export function identityOf(fixture: PqmcpFixture, side: 'server' | 'client', backend: CryptoBackend = selectBackend('native')): AgentIdentity {
  const a = fixture[side];
  return createAgentIdentity({ keyPair: identityFromSeed(backend, a.seed), credential: a.credential });
}

export function trustOf(fixture: PqmcpFixture): TrustStore {
  return new TrustStore({ issuers: [{ id: fixture.issuerId, publicKey: fixture.issuerPublicKey }] });
}
