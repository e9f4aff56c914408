/**
 * Trust-store changes (issue 10): onChange notifies once per microtask however many
 * changes, only for real changes; removeIssuer / removePin / replaceWith, and what
 * recheckCredential (the live-session re-check) then says: the typed error of each change.
 */
import { describe, expect, it } from 'vitest';
import { CredentialInvalidError, CredentialRevokedError, InvalidArgumentError, UntrustedIssuerError } from '../../src/errors.js';
import { fingerprintHex } from '../../src/identity/fingerprint.js';
import { createIssuer } from '../../src/identity/identity.js';
import { TrustStore } from '../../src/identity/trust.js';
import { makeAgent, makeSelfSigned } from '../helpers/identities.js';
import { backend, expectError } from './helpers.js';

const tick = () => new Promise<void>((r) => queueMicrotask(r));

describe('TrustStore change notification', () => {
  it('many changes in one turn notify once; a no-op change does not notify; unsubscribe stops it; a throwing listener does not stop others', async () => {
    const issuer = createIssuer(backend, { id: 'issuer://change' });
    const store = new TrustStore({ issuers: [{ id: issuer.id, publicKey: issuer.publicKey }] });
    let a = 0;
    let b = 0;
    store.onChange(() => {
      throw new Error('listener bug');
    });
    const stopA = store.onChange(() => void a++);
    store.onChange(() => void b++);
    store.revokeKey('00'.repeat(32));
    store.revokeSerial({ issuer: issuer.id, serial: '01' });
    store.addPin({ fingerprint: '11'.repeat(32), agentId: 'agent://x' });
    await tick();
    expect([a, b]).toEqual([1, 1]);
    // The same again changes nothing: no notification.
    store.revokeKey('00'.repeat(32));
    store.addIssuer({ id: issuer.id, publicKey: issuer.publicKey });
    expect(store.removeIssuer('issuer://nobody')).toBe(0);
    await tick();
    expect([a, b]).toEqual([1, 1]);
    stopA();
    expect(store.removePin({ fingerprint: '11'.repeat(32), agentId: 'agent://x' })).toBe(true);
    await tick();
    expect([a, b]).toEqual([1, 2]);
    expect(() => store.onChange(42 as never)).toThrow(InvalidArgumentError);
  });
});

describe('recheckCredential after a change', () => {
  const issuer = createIssuer(backend, { id: 'issuer://recheck' });
  const store = () => new TrustStore({ issuers: [{ id: issuer.id, publicKey: issuer.publicKey }] });
  const agentFixture = makeAgent(backend, issuer, 'agent://recheck/a');

  it('passes while nothing changed, then gives the typed error of each change', () => {
    const trust = store();
    const peer = trust.verifyCredential(backend, agentFixture.credential.encoded);
    const recheck = (store: TrustStore) => store.recheckCredential(backend, peer.credential.encoded);
    recheck(trust);

    const serial = store().revokeSerial({ issuer: issuer.id, serial: peer.serial });
    expect(expectError(() => recheck(serial), CredentialRevokedError, 'ERR_CREDENTIAL_REVOKED').reason).toBe('serial');
    const key = store().revokeKey(peer.fingerprint);
    expect(expectError(() => recheck(key), CredentialRevokedError, 'ERR_CREDENTIAL_REVOKED').reason).toBe('key');
    const issuerKey = store().revokeKey(fingerprintHex(backend, issuer.publicKey));
    expectError(() => recheck(issuerKey), CredentialRevokedError, 'ERR_CREDENTIAL_REVOKED');
    const removed = store();
    expect(removed.removeIssuer(issuer.id, issuer.publicKey)).toBe(1);
    expectError(() => recheck(removed), UntrustedIssuerError, 'ERR_UNTRUSTED_ISSUER');
    const pinned = store().addPin({ fingerprint: '22'.repeat(32), agentId: peer.agentId });
    expectError(() => recheck(pinned), CredentialInvalidError, 'ERR_CREDENTIAL_INVALID');
  });

  it('replaceWith takes the other store in place: a store that dropped the issuer fails the recheck; one that keeps it passes', () => {
    const trust = store();
    const peer = trust.verifyCredential(backend, agentFixture.credential.encoded);
    trust.replaceWith(store());
    trust.recheckCredential(backend, peer.credential.encoded);
    trust.replaceWith(new TrustStore());
    expectError(() => trust.recheckCredential(backend, peer.credential.encoded), UntrustedIssuerError, 'ERR_UNTRUSTED_ISSUER');
    expect(JSON.stringify(trust)).toBe(JSON.stringify(new TrustStore()));
  });

  it('a self-signed peer stays trusted only while its pin does', () => {
    const self = makeSelfSigned(backend, 'agent://recheck/self');
    const pin = { fingerprint: fingerprintHex(backend, self.keyPair.publicKey), agentId: self.agentId };
    const trust = new TrustStore({ pinned: [pin] });
    const peer = trust.verifyCredential(backend, self.credential.encoded);
    trust.recheckCredential(backend, peer.credential.encoded);
    trust.removePin(pin);
    expectError(() => trust.recheckCredential(backend, peer.credential.encoded), CredentialInvalidError, 'ERR_CREDENTIAL_INVALID');
  });
});
