import { describe, expect, it } from 'vitest';
import { compositeKeygen } from '../../src/crypto/composite.js';
import { DecodeError, InvalidArgumentError } from '../../src/errors.js';
import { issueCredential, selfSignedCredential } from '../../src/identity/credential.js';
import { fingerprintHex } from '../../src/identity/fingerprint.js';
import { createAgentIdentity, createIssuer, generateIdentitySeed, identityFromSeed } from '../../src/identity/identity.js';
import * as api from '../../src/identity/index.js';
import { TrustStore } from '../../src/identity/trust.js';
import { backend, expectError, seedFor } from './helpers.js';

describe('identity seeds and key pairs', () => {
  it('generateIdentitySeed gives 64 fresh random bytes', () => {
    const a = generateIdentitySeed(backend);
    const b = generateIdentitySeed(backend);
    expect(a).toHaveLength(64);
    expect(a).not.toEqual(b);
  });

  it('identityFromSeed is deterministic and equals compositeKeygen', () => {
    const seed = seedFor('identity');
    const a = identityFromSeed(backend, seed);
    expect(identityFromSeed(backend, seed.slice()).publicKey).toEqual(a.publicKey);
    expect(a.publicKey).toEqual(compositeKeygen(backend, seed).publicKey);
    expect(a.publicKey).toHaveLength(1984);
  });

  it('identityFromSeed refuses a seed that is not 64 bytes, without echoing it', () => {
    const err = expectError(() => identityFromSeed(backend, new Uint8Array(32)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(/64 bytes/);
    expectError(() => identityFromSeed(backend, 'seed' as unknown as Uint8Array), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });
});

describe('createIssuer', () => {
  it('from a seed: deterministic id, key and fingerprint', () => {
    const seed = seedFor('issuer');
    const issuer = createIssuer(backend, { id: 'issuer://acme', seed });
    expect(issuer.id).toBe('issuer://acme');
    expect(issuer.publicKey).toEqual(identityFromSeed(backend, seed).publicKey);
    expect(issuer.keyPair.publicKey).toBe(issuer.publicKey);
    expect(issuer.fingerprint).toBe(fingerprintHex(backend, issuer.publicKey));
    expect(createIssuer(backend, { id: 'issuer://acme', seed }).fingerprint).toBe(issuer.fingerprint);
  });

  it('without a seed: a fresh key each time', () => {
    expect(createIssuer(backend, { id: 'issuer://a' }).fingerprint).not.toBe(createIssuer(backend, { id: 'issuer://a' }).fingerprint);
  });

  it('refuses an id that is not a URI', () => {
    for (const id of ['acme', '', 'issuer://a b', 7 as unknown as string]) {
      expectError(() => createIssuer(backend, { id, seed: seedFor('issuer') }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    }
  });

  it('issues credentials that a store trusting it accepts', () => {
    const issuer = createIssuer(backend, { id: 'issuer://acme', seed: seedFor('issuer') });
    const agent = identityFromSeed(backend, seedFor('agent'));
    const cred = issueCredential(backend, issuer, { agentId: 'agent://acme/a', publicKey: agent.publicKey });
    const peer = new TrustStore().addIssuer(issuer).verifyCredential(backend, cred.encoded);
    expect(peer.agentId).toBe('agent://acme/a');
    expect(peer.issuer).toBe('issuer://acme');
  });
});

describe('createAgentIdentity', () => {
  const agent = identityFromSeed(backend, seedFor('agent-identity'));
  const stranger = identityFromSeed(backend, seedFor('stranger'));

  it('pairs a key pair with its credential (bytes or decoded)', () => {
    const cred = selfSignedCredential(backend, { agentId: 'agent://me', keyPair: agent });
    for (const credential of [cred, cred.encoded]) {
      const identity = createAgentIdentity({ keyPair: agent, credential });
      expect(identity.agentId).toBe('agent://me');
      expect(identity.keyPair).toBe(agent);
      expect(identity.credential.encoded).toEqual(cred.encoded);
    }
  });

  it('refuses a credential issued for another key', () => {
    const cred = selfSignedCredential(backend, { agentId: 'agent://me', keyPair: stranger });
    const err = expectError(() => createAgentIdentity({ keyPair: agent, credential: cred }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(/different public key/);
  });

  it('refuses malformed input', () => {
    expectError(() => createAgentIdentity({ keyPair: agent, credential: new Uint8Array(10) }), DecodeError, 'ERR_DECODE');
    expectError(() => createAgentIdentity({ keyPair: agent, credential: 'x' as never }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => createAgentIdentity({ keyPair: undefined as never, credential: new Uint8Array(10) }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });
});

describe('public API (src/identity/index.ts)', () => {
  it('re-exports the functions and classes', () => {
    for (const name of [
      'keyFingerprint',
      'fingerprintHex',
      'encodeCredentialTbs',
      'decodeCredential',
      'issueCredential',
      'selfSignedCredential',
      'generateIdentitySeed',
      'identityFromSeed',
      'createIssuer',
      'createAgentIdentity',
      'TrustStore',
      'base64urlEncode',
      'base64urlDecode',
    ]) {
      expect(typeof (api as Record<string, unknown>)[name], name).toBe('function');
    }
    expect(api.MAX_CREDENTIAL_LENGTH).toBe(16384);
    expect(api.DEFAULT_CLOCK_SKEW_SECONDS).toBe(60);
  });
});
