/**
 * The verified-credential cache inside TrustStore: a returning peer's credential skips the
 * issuer-signature check, and only while nothing that could change the verdict changed.
 * A backend that counts ML-DSA and Ed25519 verifications shows when the check runs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes.js';
import { compositeKeygen } from '../../src/crypto/composite.js';
import type { CompositeKeyPair } from '../../src/crypto/composite.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { BadSignatureError, CredentialExpiredError, CredentialRevokedError, UntrustedIssuerError, InvalidArgumentError } from '../../src/errors.js';
import { issueCredential } from '../../src/identity/credential.js';
import type { Credential } from '../../src/identity/credential.js';
import { fingerprintHex } from '../../src/identity/fingerprint.js';
import { createIssuer } from '../../src/identity/identity.js';
import type { Issuer } from '../../src/identity/identity.js';
import { TrustStore } from '../../src/identity/trust.js';
import { VerifiedCredentialCache } from '../../src/identity/verified-cache.js';
import { backend, expectError, seedFor } from './helpers.js';

const T0 = 1_750_000_000;
const T1 = T0 + 3600;
const at = (seconds: number) => () => seconds * 1000;
const inside = { now: at(T0 + 100) };

let acme: Issuer;
let other: Issuer;
let agentKey: CompositeKeyPair;
let cred: Credential;
let cred2: Credential;

function counting(): { backend: CryptoBackend; count: () => number } {
  let n = 0;
  const b: CryptoBackend = {
    ...backend,
    mldsa65: { ...backend.mldsa65, verify: (...a) => (n++, backend.mldsa65.verify(...a)) },
    ed25519: { ...backend.ed25519, verify: (...a) => (n++, backend.ed25519.verify(...a)) },
  };
  return { backend: b, count: () => n };
}

const trusted = (): TrustStore => new TrustStore({ issuers: [{ id: acme.id, publicKey: acme.publicKey }] });

beforeAll(() => {
  acme = createIssuer(backend, { id: 'issuer://acme', seed: seedFor('cache-acme') });
  other = createIssuer(backend, { id: 'issuer://other', seed: seedFor('cache-other') });
  agentKey = compositeKeygen(backend, seedFor('cache-agent'));
  const subject = { agentId: 'agent://acme/planner', publicKey: agentKey.publicKey, notBefore: T0, notAfter: T1 };
  cred = issueCredential(backend, acme, subject);
  cred2 = issueCredential(backend, acme, subject); // same fields, another serial: other bytes
});

describe('verified-credential cache', () => {
  it('a returning credential skips the issuer signature and yields the same peer', () => {
    const c = counting();
    const store = trusted();
    const first = store.verifyCredential(c.backend, cred.encoded, inside);
    expect(c.count()).toBe(2);
    const again = store.verifyCredential(c.backend, cred.encoded, inside);
    expect(c.count()).toBe(2);
    expect(again).toEqual(first);
  });

  it('different bytes miss: another credential, and a tampered signature that then fails', () => {
    const c = counting();
    const store = trusted();
    store.verifyCredential(c.backend, cred.encoded, inside);
    store.verifyCredential(c.backend, cred2.encoded, inside);
    expect(c.count()).toBe(4);
    const tampered = cred.encoded.slice();
    tampered[tampered.length - 1]! ^= 1;
    expectError(() => store.verifyCredential(c.backend, tampered, inside), BadSignatureError, 'ERR_BAD_SIGNATURE');
    expectError(() => store.verifyCredential(c.backend, tampered, inside), BadSignatureError, 'ERR_BAD_SIGNATURE');
    expect(c.count()).toBe(4 + 4); // a failure is never cached
  });

  it('any trust change invalidates: an unrelated issuer added, a pin added', () => {
    const c = counting();
    const store = trusted();
    store.verifyCredential(c.backend, cred.encoded, inside);
    const g = store.generation;
    store.addIssuer({ id: other.id, publicKey: other.publicKey });
    expect(store.generation).toBeGreaterThan(g);
    store.verifyCredential(c.backend, cred.encoded, inside);
    expect(c.count()).toBe(4);
    store.addIssuer({ id: other.id, publicKey: other.publicKey }); // a no-op is no change
    store.verifyCredential(c.backend, cred.encoded, inside);
    expect(c.count()).toBe(4);
    store.addPin({ agentId: 'agent://acme/planner', fingerprint: fingerprintHex(backend, agentKey.publicKey) });
    store.verifyCredential(c.backend, cred.encoded, inside);
    expect(c.count()).toBe(6);
  });

  it('revocation after caching refuses at once (serial, agent key, issuer key)', () => {
    for (const revoke of [
      (s: TrustStore) => s.revokeSerial({ issuer: acme.id, serial: toHex(cred.serial) }),
      (s: TrustStore) => s.revokeKey(fingerprintHex(backend, agentKey.publicKey)),
      (s: TrustStore) => s.revokeKey(fingerprintHex(backend, acme.publicKey)),
    ]) {
      const store = trusted();
      store.verifyCredential(backend, cred.encoded, inside);
      revoke(store);
      expectError(() => store.verifyCredential(backend, cred.encoded, inside), CredentialRevokedError, 'ERR_CREDENTIAL_REVOKED');
    }
  });

  it('an issuer no longer trusted (a new store from the same file minus it) starts cold', () => {
    const store = trusted();
    store.verifyCredential(backend, cred.encoded, inside);
    expectError(() => new TrustStore().verifyCredential(backend, cred.encoded, inside), UntrustedIssuerError, 'ERR_UNTRUSTED_ISSUER');
  });

  it('expiry is respected on a hit, and an expired entry is dropped', () => {
    const c = counting();
    const store = trusted();
    store.verifyCredential(c.backend, cred.encoded, inside);
    expectError(() => store.verifyCredential(c.backend, cred.encoded, { now: () => (T1 + 61) * 1000 }), CredentialExpiredError, 'ERR_CREDENTIAL_EXPIRED');
    // The entry is dropped past not_after + skew: the full check ran (and step 4 refused).
    expect(c.count()).toBe(4);
    // Nothing expired was cached: back inside the window, it verifies again.
    store.verifyCredential(c.backend, cred.encoded, inside);
    expect(c.count()).toBe(6);
  });

  it('is bounded (least recently used evicted) and can be turned off', () => {
    const c = counting();
    const store = trusted().verifiedCacheSize(1);
    store.verifyCredential(c.backend, cred.encoded, inside);
    store.verifyCredential(c.backend, cred2.encoded, inside); // evicts cred
    store.verifyCredential(c.backend, cred.encoded, inside);
    expect(c.count()).toBe(6);
    store.verifiedCacheSize(0);
    store.verifyCredential(c.backend, cred.encoded, inside);
    store.verifyCredential(c.backend, cred.encoded, inside);
    expect(c.count()).toBe(10);
    expectError(() => store.verifiedCacheSize(-1), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });

  it('the cache unit: generation and expiry checks', () => {
    const cache = new VerifiedCredentialCache(2);
    cache.add('a', 1, 100);
    expect(cache.has('a', 1, 100_000, 0)).toBe(true);
    expect(cache.has('a', 1, 100_001, 0)).toBe(false);
    cache.add('a', 1, 100);
    expect(cache.has('a', 2, 0, 0)).toBe(false);
    expect(cache.size).toBe(0);
  });
});
