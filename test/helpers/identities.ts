/**
 * Shared identity fixtures for tests: issuers, agent identities they vouch for, and trust
 * stores.
 *
 * - makeIssuer / makeAgent / trustFor: explicit, on the backend you pass (used by the
 *   handshake and session tests).
 * - testIssuer / agent: memoised per test file, built on the native backend (same bytes as
 *   noble; it falls back to noble where Node lacks ML-DSA). Composite keygen plus issuance
 *   costs ~10-20 ms on noble, so transport tests reuse them.
 */
import { createNativeBackend } from '../../src/crypto/native.js';
import type { CompositeKeyPair } from '../../src/crypto/composite.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import type { LocalIdentity } from '../../src/handshake/types.js';
import { createAgentIdentity, createIssuer, generateIdentitySeed, identityFromSeed, issueCredential, selfSignedCredential } from '../../src/identity/index.js';
import type { AgentIdentity, Credential, CredentialSubject, Issuer } from '../../src/identity/index.js';
import { TrustStore } from '../../src/identity/trust.js';

export type { AgentIdentity, Credential, Issuer };

export type AgentOptions = Partial<Omit<CredentialSubject, 'agentId' | 'publicKey'>> & {
  /** Sign the credential with this issuer instead (e.g. an untrusted one). */
  issuer?: Issuer;
  /** The agent's 64-byte key seed (default: fresh random). */
  seed?: Uint8Array;
};

/** A deterministic seed of `length` bytes from a label, for reproducible fixtures. */
export function seedFrom(label: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const bytes = new TextEncoder().encode(label);
  for (let i = 0; i < length; i++) out[i] = (bytes[i % bytes.length]! + i * 31) & 0xff;
  return out;
}

/** An agent fixture in every shape the layers want. */
export interface TestAgent {
  agentId: string;
  keyPair: CompositeKeyPair;
  credential: Credential;
  /** For transports and anything taking an AgentIdentity. */
  identity: AgentIdentity;
  /** For the handshake and session: key pair plus encoded credential. */
  local: LocalIdentity;
}

/** A fresh issuer on `backend`. */
export function makeIssuer(backend: CryptoBackend, id = 'issuer://pqmcp-test'): Issuer {
  return createIssuer(backend, { id });
}

/** A fresh agent with a credential from `issuer`. */
export function makeAgent(backend: CryptoBackend, issuer: Issuer, agentId: string, options: AgentOptions = {}): TestAgent {
  const { issuer: signer, seed, ...subject } = options;
  const keyPair = identityFromSeed(backend, seed ?? generateIdentitySeed(backend));
  // Fixtures play either role (one agent serves in one test and dials in the next), so
  // their credentials say 'both' unless a test asks for a role (the library default is 'client').
  const credential = issueCredential(backend, signer ?? issuer, { agentId, publicKey: keyPair.publicKey, usage: 'both', ...subject });
  const identity = createAgentIdentity({ keyPair, credential });
  return { agentId, keyPair, credential, identity, local: { keyPair, credential: credential.encoded } };
}

/** An agent with a self-signed credential (accepted only where its fingerprint is pinned). */
export function makeSelfSigned(backend: CryptoBackend, agentId: string): TestAgent {
  const keyPair = identityFromSeed(backend, generateIdentitySeed(backend));
  const credential = selfSignedCredential(backend, { agentId, keyPair, usage: 'both' });
  const identity = createAgentIdentity({ keyPair, credential });
  return { agentId, keyPair, credential, identity, local: { keyPair, credential: credential.encoded } };
}

/** A trust store trusting the given issuers (default: the memoised test issuer). */
export function trustFor(...trusted: Issuer[]): TrustStore {
  const list = trusted.length ? trusted : [testIssuer()];
  return new TrustStore({ issuers: list.map((i) => ({ id: i.id, publicKey: i.publicKey })) });
}

// --- memoised fixtures ----------------------------------------------------------------------

let fixtureBackend: CryptoBackend | undefined;

/** The backend memoised fixtures are built with (not necessarily the one under test). */
export function fixtureCrypto(): CryptoBackend {
  fixtureBackend ??= createNativeBackend();
  return fixtureBackend;
}

const issuers = new Map<string, Issuer>();

/** A memoised issuer per id. */
export function testIssuer(id = 'issuer://pqmcp-test'): Issuer {
  let issuer = issuers.get(id);
  if (!issuer) {
    issuer = makeIssuer(fixtureCrypto(), id);
    issuers.set(id, issuer);
  }
  return issuer;
}

const agents = new Map<string, AgentIdentity>();

/** A memoised agent identity per id, from the default test issuer, scopes tools:call and resources:read. */
export function agent(agentId: string): AgentIdentity {
  let a = agents.get(agentId);
  if (!a) {
    a = makeAgent(fixtureCrypto(), testIssuer(), agentId, { scopes: ['tools:call', 'resources:read'] }).identity;
    agents.set(agentId, a);
  }
  return a;
}
