import { beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes.js';
import { compositeKeygen, compositeSign, compositeVerify } from '../../src/crypto/composite.js';
import type { CompositeKeyPair } from '../../src/crypto/composite.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import {
  BadSignatureError,
  CredentialExpiredError,
  CredentialInvalidError,
  CredentialNotYetValidError,
  CredentialRevokedError,
  DecodeError,
  InvalidArgumentError,
  PqmcpError,
  UnexpectedPeerError,
  UntrustedIssuerError,
} from '../../src/errors.js';
import { CREDENTIAL_SIGNATURE_CONTEXT, decodeCredential, encodeCredentialTbs, issueCredential, selfSignedCredential } from '../../src/identity/credential.js';
import type { Credential, CredentialSubject } from '../../src/identity/credential.js';
import { fingerprintHex, keyFingerprint } from '../../src/identity/fingerprint.js';
import { createIssuer } from '../../src/identity/identity.js';
import type { Issuer } from '../../src/identity/identity.js';
import { TrustStore } from '../../src/identity/trust.js';
import type { VerifyCredentialOptions } from '../../src/identity/trust.js';
import { Writer } from '../../src/wire/writer.js';
import { backend, expectError, flipped, regions, seedFor } from './helpers.js';

const T0 = 1_750_000_000;
const T1 = T0 + 3600;
const AGENT = 'agent://acme/planner';
const at = (seconds: number, extraMs = 0) => () => seconds * 1000 + extraMs;
const inside: VerifyCredentialOptions = { now: at(T0 + 100) };

let acme: Issuer;
let other: Issuer;
let agentKey: CompositeKeyPair;
let agentKey2: CompositeKeyPair;
let cred: Credential;
let fromOther: Credential;
let wrongIssuerId: Credential;
let signedByOtherKey: Uint8Array;
let selfSigned: Credential;

function subject(over: Partial<CredentialSubject> = {}): CredentialSubject {
  return {
    agentId: AGENT,
    displayName: 'Planner',
    publicKey: agentKey.publicKey,
    scopes: ['tools:call', 'resources:read'],
    attributes: { team: 'search' },
    notBefore: T0,
    notAfter: T1,
    ...over,
  };
}

function trusted(): TrustStore {
  return new TrustStore({ issuers: [{ id: acme.id, publicKey: acme.publicKey }] });
}

/** Backend that counts signature verifications (to prove when none happen). */
function counting(): { backend: CryptoBackend; count: () => number } {
  let n = 0;
  const b: CryptoBackend = {
    ...backend,
    mldsa65: { ...backend.mldsa65, verify: (...a) => (n++, backend.mldsa65.verify(...a)) },
    ed25519: { ...backend.ed25519, verify: (...a) => (n++, backend.ed25519.verify(...a)) },
  };
  return { backend: b, count: () => n };
}

beforeAll(() => {
  acme = createIssuer(backend, { id: 'issuer://acme', seed: seedFor('trust-acme') });
  other = createIssuer(backend, { id: 'issuer://other', seed: seedFor('trust-other') });
  agentKey = compositeKeygen(backend, seedFor('trust-agent'));
  agentKey2 = compositeKeygen(backend, seedFor('trust-agent-2'));
  cred = issueCredential(backend, acme, subject());
  fromOther = issueCredential(backend, other, subject());
  wrongIssuerId = issueCredential(backend, { id: 'issuer://evil', keyPair: acme.keyPair }, subject());
  // Claims acme (id and fingerprint) but is signed with the other issuer's key.
  const tbs = encodeCredentialTbs({ ...cred, serial: Uint8Array.of(1) });
  const sig = compositeSign(backend, other.keyPair, tbs, CREDENTIAL_SIGNATURE_CONTEXT);
  signedByOtherKey = new Writer().bytes(tbs).u16(1).vector(2, sig).finish();
  selfSigned = selfSignedCredential(backend, { agentId: 'agent://solo', keyPair: agentKey2, notBefore: T0, notAfter: T1 });
});

describe('TrustStore.verifyCredential: success', () => {
  it('returns the verified peer', () => {
    const peer = trusted().verifyCredential(backend, cred.encoded, inside);
    expect(peer).toEqual({
      agentId: AGENT,
      displayName: 'Planner',
      fingerprint: fingerprintHex(backend, agentKey.publicKey),
      publicKey: agentKey.publicKey,
      usage: 'client',
      scopes: ['resources:read', 'tools:call'],
      attributes: { team: 'search' },
      notBefore: T0,
      notAfter: T1,
      serial: toHex(cred.serial),
      issuer: 'issuer://acme',
      selfSigned: false,
      credential: cred,
    });
    expect(peer.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it('accepts a decoded Credential, but trusts only its encoded bytes', () => {
    const forged: Credential = { ...cred, agentId: 'agent://acme/admin', scopes: ['everything'] };
    const peer = trusted().verifyCredential(backend, forged, inside);
    expect(peer.agentId).toBe(AGENT);
    expect(peer.scopes).toEqual(['resources:read', 'tools:call']);
  });

  it('uses the default clock and skew when none are given', () => {
    const now = Math.floor(Date.now() / 1000);
    const live = issueCredential(backend, acme, subject({ notBefore: now - 10, notAfter: now + 600 }));
    expect(trusted().verifyCredential(backend, live.encoded).agentId).toBe(AGENT);
  });
});

describe('TrustStore.verifyCredential: the signature covers every field', () => {
  it('a flipped byte in any field region never verifies', () => {
    const store = trusted();
    const allowed = [DecodeError, BadSignatureError, UntrustedIssuerError, CredentialInvalidError];
    const b = cred.encoded;
    let decodedButRejected = 0;
    for (const region of regions(b)) {
      const positions = [...new Set([region.start, Math.floor((region.start + region.end) / 2), region.end - 1])];
      for (const index of positions) {
        for (const mask of [0x01, 0x80]) {
          const tampered = flipped(b, index, mask);
          let caught: unknown;
          try {
            store.verifyCredential(backend, tampered, inside);
          } catch (err) {
            caught = err;
          }
          const where = `${region.name} byte ${index} ^ ${mask}`;
          expect(caught, where).toBeInstanceOf(PqmcpError);
          expect(allowed.some((cls) => Object.getPrototypeOf(caught) === cls.prototype), `${where}: ${String(caught)}`).toBe(true);
          // Independently of issuer lookup: whatever still decodes fails the issuer's signature.
          let decoded: Credential | undefined;
          try {
            decoded = decodeCredential(tampered);
          } catch {
            decoded = undefined;
          }
          if (decoded) {
            decodedButRejected++;
            expect(compositeVerify(backend, acme.publicKey, decoded.tbs, decoded.signature, CREDENTIAL_SIGNATURE_CONTEXT), where).toBe(false);
          }
        }
      }
    }
    expect(decodedButRejected).toBeGreaterThan(20);
  });

  it('a credential signed by another key: BadSignatureError with a constant message', () => {
    const err = expectError(() => trusted().verifyCredential(backend, signedByOtherKey, inside), BadSignatureError, 'ERR_BAD_SIGNATURE');
    expect(err.message).toBe('signature verification failed');
  });

  it("another credential's signature: BadSignatureError", () => {
    const other2 = issueCredential(backend, acme, subject({ displayName: 'Other' }));
    const spliced = new Writer().bytes(cred.tbs).u16(1).vector(2, other2.signature).finish();
    expectError(() => trusted().verifyCredential(backend, spliced, inside), BadSignatureError, 'ERR_BAD_SIGNATURE');
  });
});

describe('TrustStore.verifyCredential: issuers', () => {
  it('an untrusted issuer: UntrustedIssuerError naming it', () => {
    const err = expectError(() => trusted().verifyCredential(backend, fromOther.encoded, inside), UntrustedIssuerError, 'ERR_UNTRUSTED_ISSUER');
    expect(err.issuer).toBe('issuer://other');
    expect(err.alert).toBe(48);
  });

  it('a trusted fingerprint under another issuer id: UntrustedIssuerError', () => {
    const err = expectError(() => trusted().verifyCredential(backend, wrongIssuerId.encoded, inside), UntrustedIssuerError, 'ERR_UNTRUSTED_ISSUER');
    expect(err.issuer).toBe('issuer://evil');
  });

  it('a trusted issuer id with an unknown fingerprint: UntrustedIssuerError', () => {
    const store = new TrustStore({ issuers: [{ id: 'issuer://other', publicKey: acme.publicKey }] });
    expectError(() => store.verifyCredential(backend, fromOther.encoded, inside), UntrustedIssuerError, 'ERR_UNTRUSTED_ISSUER');
  });

  it('an empty store trusts nobody', () => {
    expectError(() => new TrustStore().verifyCredential(backend, cred.encoded, inside), UntrustedIssuerError, 'ERR_UNTRUSTED_ISSUER');
  });

  it('one issuer id may have several keys (rotation)', () => {
    const store = new TrustStore({
      issuers: [
        { id: 'issuer://acme', publicKey: other.publicKey },
        { id: 'issuer://acme', publicKey: acme.publicKey },
      ],
    });
    expect(store.verifyCredential(backend, cred.encoded, inside).issuer).toBe('issuer://acme');
  });

  it('an issuer added later is trusted from then on', () => {
    const store = trusted();
    expectError(() => store.verifyCredential(backend, fromOther.encoded, inside), UntrustedIssuerError, 'ERR_UNTRUSTED_ISSUER');
    store.addIssuer({ id: other.id, publicKey: other.publicKey });
    expect(store.verifyCredential(backend, fromOther.encoded, inside).issuer).toBe('issuer://other');
  });

  it('does no signature work for malformed credentials or unknown issuers', () => {
    const c = counting();
    const store = trusted();
    expectError(() => store.verifyCredential(c.backend, flipped(cred.encoded, 0), inside), DecodeError, 'ERR_DECODE');
    expectError(() => store.verifyCredential(c.backend, fromOther.encoded, inside), UntrustedIssuerError, 'ERR_UNTRUSTED_ISSUER');
    expectError(() => store.verifyCredential(c.backend, selfSigned.encoded, inside), CredentialInvalidError, 'ERR_CREDENTIAL_INVALID');
    expect(c.count()).toBe(0);
    store.verifyCredential(c.backend, cred.encoded, inside);
    expect(c.count()).toBe(2); // both halves, once each
  });
});

describe('TrustStore.verifyCredential: validity window and clock skew', () => {
  const store = (): TrustStore => trusted();
  const ok = (options: VerifyCredentialOptions): void => {
    expect(store().verifyCredential(backend, cred.encoded, options).agentId).toBe(AGENT);
  };

  it('expired: CredentialExpiredError', () => {
    const err = expectError(() => store().verifyCredential(backend, cred.encoded, { now: at(T1 + 3600) }), CredentialExpiredError, 'ERR_CREDENTIAL_EXPIRED');
    expect(err.notAfter).toBe(T1);
    expect(err.alert).toBe(45);
  });

  it('not yet valid: CredentialNotYetValidError', () => {
    const err = expectError(() => store().verifyCredential(backend, cred.encoded, { now: at(T0 - 3600) }), CredentialNotYetValidError, 'ERR_CREDENTIAL_NOT_YET_VALID');
    expect(err.notBefore).toBe(T0);
  });

  it('default skew of 60 s: valid exactly at the edges, invalid 1 ms beyond', () => {
    ok({ now: at(T0 - 60) });
    expectError(() => store().verifyCredential(backend, cred.encoded, { now: at(T0 - 60, -1) }), CredentialNotYetValidError, 'ERR_CREDENTIAL_NOT_YET_VALID');
    ok({ now: at(T1 + 60) });
    expectError(() => store().verifyCredential(backend, cred.encoded, { now: at(T1 + 60, 1) }), CredentialExpiredError, 'ERR_CREDENTIAL_EXPIRED');
  });

  it('skew 0: the window itself, inclusive at both ends', () => {
    ok({ now: at(T0), clockSkewSeconds: 0 });
    ok({ now: at(T1), clockSkewSeconds: 0 });
    expectError(() => store().verifyCredential(backend, cred.encoded, { now: at(T0, -1), clockSkewSeconds: 0 }), CredentialNotYetValidError, 'ERR_CREDENTIAL_NOT_YET_VALID');
    expectError(() => store().verifyCredential(backend, cred.encoded, { now: at(T1, 1), clockSkewSeconds: 0 }), CredentialExpiredError, 'ERR_CREDENTIAL_EXPIRED');
  });

  it('a custom skew of 300 s moves both edges', () => {
    ok({ now: at(T0 - 300), clockSkewSeconds: 300 });
    ok({ now: at(T1 + 300), clockSkewSeconds: 300 });
    expectError(() => store().verifyCredential(backend, cred.encoded, { now: at(T0 - 300, -1), clockSkewSeconds: 300 }), CredentialNotYetValidError, 'ERR_CREDENTIAL_NOT_YET_VALID');
    expectError(() => store().verifyCredential(backend, cred.encoded, { now: at(T1 + 300, 1), clockSkewSeconds: 300 }), CredentialExpiredError, 'ERR_CREDENTIAL_EXPIRED');
  });

  it('refuses a bad skew or clock with InvalidArgumentError', () => {
    for (const clockSkewSeconds of [-1, 3601, Number.NaN, Number.POSITIVE_INFINITY, '60' as unknown as number]) {
      expectError(() => store().verifyCredential(backend, cred.encoded, { now: at(T0), clockSkewSeconds }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    }
    expectError(() => store().verifyCredential(backend, cred.encoded, { now: () => Number.NaN }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => store().verifyCredential(backend, cred.encoded, { now: 5 as unknown as () => number }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });
});

describe('TrustStore.verifyCredential: revocation', () => {
  it('a revoked serial of that issuer: CredentialRevokedError (serial)', () => {
    const store = trusted().revokeSerial({ issuer: 'issuer://acme', serial: toHex(cred.serial).toUpperCase() });
    const err = expectError(() => store.verifyCredential(backend, cred.encoded, inside), CredentialRevokedError, 'ERR_CREDENTIAL_REVOKED');
    expect(err.reason).toBe('serial');
    expect(err.alert).toBe(44);
    // Given as bytes, too.
    const store2 = trusted().revokeSerial({ issuer: 'issuer://acme', serial: cred.serial });
    expect(expectError(() => store2.verifyCredential(backend, cred.encoded, inside), CredentialRevokedError, 'ERR_CREDENTIAL_REVOKED').reason).toBe('serial');
  });

  it('the same serial revoked for another issuer revokes nothing here', () => {
    const store = trusted().revokeSerial({ issuer: 'issuer://other', serial: toHex(cred.serial) });
    expect(store.verifyCredential(backend, cred.encoded, inside).agentId).toBe(AGENT);
  });

  it('a revoked agent key: CredentialRevokedError (key)', () => {
    const store = trusted().revokeKey(fingerprintHex(backend, agentKey.publicKey));
    expect(expectError(() => store.verifyCredential(backend, cred.encoded, inside), CredentialRevokedError, 'ERR_CREDENTIAL_REVOKED').reason).toBe('key');
  });

  it('a revoked issuer key: CredentialRevokedError (key)', () => {
    const store = trusted().revokeKey(acme.fingerprint);
    expect(expectError(() => store.verifyCredential(backend, cred.encoded, inside), CredentialRevokedError, 'ERR_CREDENTIAL_REVOKED').reason).toBe('key');
  });
});

describe('TrustStore.verifyCredential: pins and self-signed credentials', () => {
  const soloFingerprint = (): string => fingerprintHex(backend, agentKey2.publicKey);

  it('a pinned self-signed credential is accepted', () => {
    for (const pin of [{ fingerprint: soloFingerprint(), agentId: 'agent://solo' }, { fingerprint: soloFingerprint().toUpperCase(), agentId: 'agent://solo' }]) {
      const peer = new TrustStore({ pinned: [pin] }).verifyCredential(backend, selfSigned.encoded, inside);
      expect(peer.selfSigned).toBe(true);
      expect(peer.issuer).toBe('agent://solo');
      expect(peer.agentId).toBe('agent://solo');
      expect(peer.fingerprint).toBe(soloFingerprint());
    }
  });

  it('an unpinned self-signed credential: CredentialInvalidError', () => {
    const store = trusted().addPin({ fingerprint: fingerprintHex(backend, agentKey.publicKey), agentId: 'agent://solo' });
    const err = expectError(() => store.verifyCredential(backend, selfSigned.encoded, inside), CredentialInvalidError, 'ERR_CREDENTIAL_INVALID');
    expect(err.message).toMatch(/self-signed.*not pinned/);
    expect(err.alert).toBe(42);
  });

  it('a self-signed credential whose key is pinned to another agent id: CredentialInvalidError', () => {
    const store = new TrustStore({ pinned: [{ fingerprint: soloFingerprint(), agentId: 'agent://someone-else' }] });
    expectError(() => store.verifyCredential(backend, selfSigned.encoded, inside), CredentialInvalidError, 'ERR_CREDENTIAL_INVALID');
  });

  it('a pin must name its agent id: an unbound pin would let its key self-sign as anyone', () => {
    expectError(() => new TrustStore({ pinned: [{ fingerprint: soloFingerprint() } as never] }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => TrustStore.fromJSON({ version: 1, pinned: [{ fingerprint: soloFingerprint() }] }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });

  it('a self-signed credential claiming an id other than its pin: CredentialInvalidError', () => {
    // The key is pinned for agent://solo; the same key self-signs as an issuer-managed id.
    const impersonation = selfSignedCredential(backend, { agentId: 'agent://acme/admin', keyPair: agentKey2, scopes: ['admin'], notBefore: T0, notAfter: T1 });
    const store = trusted().addPin({ fingerprint: soloFingerprint(), agentId: 'agent://solo' });
    expectError(() => store.verifyCredential(backend, impersonation.encoded, inside), CredentialInvalidError, 'ERR_CREDENTIAL_INVALID');
  });

  it('a pinned self-signed credential with a bad signature: BadSignatureError', () => {
    const store = new TrustStore({ pinned: [{ fingerprint: soloFingerprint(), agentId: 'agent://solo' }] });
    const tampered = flipped(selfSigned.encoded, selfSigned.encoded.length - 100);
    expectError(() => store.verifyCredential(backend, tampered, inside), BadSignatureError, 'ERR_BAD_SIGNATURE');
  });

  it('a self-signed credential goes through the window and revocation checks too', () => {
    const store = new TrustStore({ pinned: [{ fingerprint: soloFingerprint(), agentId: 'agent://solo' }] });
    expectError(() => store.verifyCredential(backend, selfSigned.encoded, { now: at(T1 + 61) }), CredentialExpiredError, 'ERR_CREDENTIAL_EXPIRED');
    store.revokeSerial({ issuer: 'agent://solo', serial: selfSigned.serial });
    expectError(() => store.verifyCredential(backend, selfSigned.encoded, inside), CredentialRevokedError, 'ERR_CREDENTIAL_REVOKED');
  });

  it('an agent id pinned to a different key: CredentialInvalidError', () => {
    const store = trusted().addPin({ fingerprint: fingerprintHex(backend, agentKey2.publicKey), agentId: AGENT });
    const err = expectError(() => store.verifyCredential(backend, cred.encoded, inside), CredentialInvalidError, 'ERR_CREDENTIAL_INVALID');
    expect(err.message).toMatch(/pinned key/);
  });

  it('an agent id pinned to its own key (among others) is accepted; pins for other ids do not constrain it', () => {
    const store = trusted()
      .addPin({ fingerprint: fingerprintHex(backend, agentKey2.publicKey), agentId: AGENT })
      .addPin({ fingerprint: fingerprintHex(backend, agentKey.publicKey), agentId: AGENT })
      .addPin({ fingerprint: fingerprintHex(backend, agentKey2.publicKey), agentId: 'agent://other' });
    expect(store.verifyCredential(backend, cred.encoded, inside).selfSigned).toBe(false);
  });

  it('a credential issued by a trusted issuer for a key equal to the issuer key is not self-signed', () => {
    const own = issueCredential(backend, acme, subject({ agentId: 'agent://acme/issuer-bot', publicKey: acme.publicKey }));
    const peer = trusted().verifyCredential(backend, own.encoded, inside);
    expect(peer.selfSigned).toBe(false);
    expect(peer.fingerprint).toBe(acme.fingerprint);
  });
});

describe('TrustStore.verifyCredential: expected peer and argument checks', () => {
  it('a different agent id than expected: UnexpectedPeerError', () => {
    const err = expectError(() => trusted().verifyCredential(backend, cred.encoded, { ...inside, expectedPeerId: 'agent://acme/other' }), UnexpectedPeerError, 'ERR_UNEXPECTED_PEER');
    expect(err.expected).toBe('agent://acme/other');
    expect(err.actual).toBe(AGENT);
    expect(err.alert).toBe(91);
  });

  it('the expected agent id passes', () => {
    expect(trusted().verifyCredential(backend, cred.encoded, { ...inside, expectedPeerId: AGENT }).agentId).toBe(AGENT);
  });

  it('refuses arguments that are not a credential, or a non-string expected id', () => {
    expectError(() => trusted().verifyCredential(backend, 'x' as unknown as Uint8Array, inside), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => trusted().verifyCredential(backend, { encoded: 'x' } as unknown as Credential, inside), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => trusted().verifyCredential(backend, cred.encoded, { ...inside, expectedPeerId: 5 as unknown as string }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });
});

describe('TrustStore.verifyCredential: the order of checks', () => {
  it('decode before issuer, issuer before signature, signature before window', () => {
    const expiredUntrusted = { now: at(T1 + 10_000) };
    expectError(() => new TrustStore().verifyCredential(backend, new Uint8Array(16385), expiredUntrusted), DecodeError, 'ERR_DECODE');
    expectError(() => trusted().verifyCredential(backend, fromOther.encoded, expiredUntrusted), UntrustedIssuerError, 'ERR_UNTRUSTED_ISSUER');
    expectError(() => trusted().verifyCredential(backend, signedByOtherKey, expiredUntrusted), BadSignatureError, 'ERR_BAD_SIGNATURE');
  });

  it('window before revocation, revocation before pins, pins before expected peer', () => {
    const agentFp = fingerprintHex(backend, agentKey.publicKey);
    const everything = trusted()
      .revokeKey(agentFp)
      .addPin({ fingerprint: fingerprintHex(backend, agentKey2.publicKey), agentId: AGENT });
    const wrongPeer = { expectedPeerId: 'agent://x' };
    expectError(() => everything.verifyCredential(backend, cred.encoded, { ...wrongPeer, now: at(T1 + 10_000) }), CredentialExpiredError, 'ERR_CREDENTIAL_EXPIRED');
    expectError(() => everything.verifyCredential(backend, cred.encoded, { ...wrongPeer, ...inside }), CredentialRevokedError, 'ERR_CREDENTIAL_REVOKED');
    const pinnedOnly = trusted().addPin({ fingerprint: fingerprintHex(backend, agentKey2.publicKey), agentId: AGENT });
    expectError(() => pinnedOnly.verifyCredential(backend, cred.encoded, { ...wrongPeer, ...inside }), CredentialInvalidError, 'ERR_CREDENTIAL_INVALID');
    expect(keyFingerprint(backend, agentKey.publicKey)).toHaveLength(32);
  });
});
