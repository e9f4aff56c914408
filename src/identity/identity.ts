/**
 * Agent identities and issuers: composite key pairs from 64-byte seeds, plus the credential
 * an agent presents.
 *
 * Sharp edges:
 * - The 64-byte seed (ML-DSA-65 seed || Ed25519 seed) IS the private key. Store it like one
 *   (the CLI writes it mode 0600); it never appears in an error or in `toJSON` output here.
 * - `identityFromSeed` is deterministic and identical on every backend: the same seed gives
 *   the same public key and fingerprint everywhere.
 * - `createAgentIdentity` checks that the credential belongs to the key pair (same public
 *   key); it does not verify the credential's signature or validity: the peer does that.
 */
import { equalBytes } from '../bytes.js';
import { COMPOSITE_SEED_LENGTH, compositeKeygen } from '../crypto/composite.js';
import type { CompositeKeyPair } from '../crypto/composite.js';
import type { CryptoBackend } from '../crypto/types.js';
import { InvalidArgumentError } from '../errors.js';
import { decodeCredential } from './credential.js';
import type { Credential } from './credential.js';
import { fingerprintHex } from './fingerprint.js';
import { Rules, textProblem } from './rules.js';

export const IDENTITY_SEED_LENGTH = COMPOSITE_SEED_LENGTH;

/** This side's long-term identity: what a client or server needs to authenticate. */
export interface AgentIdentity {
  agentId: string;
  keyPair: CompositeKeyPair;
  credential: Credential;
}

/** An issuer: signs credentials for agents. Its `id` and `publicKey` go into trust stores. */
export interface Issuer {
  id: string;
  keyPair: CompositeKeyPair;
  /** keyPair.publicKey (1984 bytes). */
  publicKey: Uint8Array;
  /** Lowercase hex key fingerprint. */
  fingerprint: string;
}

/** 64 fresh random bytes from the backend's CSPRNG: a new private key. */
export function generateIdentitySeed(backend: CryptoBackend): Uint8Array {
  return backend.randomBytes(IDENTITY_SEED_LENGTH);
}

/** The composite key pair for a 64-byte seed (deterministic). */
export function identityFromSeed(backend: CryptoBackend, seed: Uint8Array): CompositeKeyPair {
  if (!(seed instanceof Uint8Array) || seed.length !== IDENTITY_SEED_LENGTH) {
    throw new InvalidArgumentError(`identity seed must be ${IDENTITY_SEED_LENGTH} bytes`);
  }
  return compositeKeygen(backend, seed);
}

/** An issuer with id `id` (a URI such as issuer://acme) and a key from `seed` or a fresh one. */
export function createIssuer(backend: CryptoBackend, options: { id: string; seed?: Uint8Array }): Issuer {
  const id = options?.id;
  const problem = textProblem(id, Rules.id);
  if ('reason' in problem) throw new InvalidArgumentError(`issuer id ${problem.reason}`);
  const keyPair = identityFromSeed(backend, options.seed ?? generateIdentitySeed(backend));
  return { id, keyPair, publicKey: keyPair.publicKey, fingerprint: fingerprintHex(backend, keyPair.publicKey) };
}

/**
 * Pair a key pair with its credential (encoded bytes or decoded). Refuses a credential
 * issued for another key. The agent id is the credential's.
 */
export function createAgentIdentity(options: { keyPair: CompositeKeyPair; credential: Uint8Array | Credential }): AgentIdentity {
  const { keyPair, credential } = options ?? {};
  if (typeof keyPair !== 'object' || keyPair === null || !(keyPair.publicKey instanceof Uint8Array)) {
    throw new InvalidArgumentError('keyPair must be a composite key pair');
  }
  const encoded = credential instanceof Uint8Array ? credential : credential?.encoded;
  if (!(encoded instanceof Uint8Array)) throw new InvalidArgumentError('credential must be encoded bytes or a decoded Credential');
  const decoded = decodeCredential(encoded);
  if (!equalBytes(decoded.publicKey, keyPair.publicKey)) {
    throw new InvalidArgumentError('credential was issued for a different public key than keyPair');
  }
  return { agentId: decoded.agentId, keyPair, credential: decoded };
}
