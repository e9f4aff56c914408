/**
 * Who may connect: every identity failure, seen end to end through two Sessions. The side
 * that refuses raises the exact typed error and sends the matching alert; the other side
 * gets ERR_PEER_ALERT with that alert code. Neither side ever reports an established session.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { concat } from '../../src/bytes.js';
import { compositeKeygen } from '../../src/crypto/composite.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import { Alert, PeerAlertError } from '../../src/errors.js';
import { fingerprintHex, TrustStore } from '../../src/identity/index.js';
import type { SessionOptions } from '../../src/session/session.js';
import { makeAgent, makeIssuer, makeSelfSigned, seedFrom, trustFor, type Issuer, type TestAgent } from '../helpers/identities.js';
import { createPair, errorOf, expectEstablished, runPair, type PairResult } from '../helpers/pair.js';

const backend = createNobleBackend();
const NOW = Date.UTC(2026, 5, 1) / 1000;
let issuer: Issuer;
let rogueIssuer: Issuer;
let server: TestAgent;
let client: TestAgent;

beforeAll(() => {
  issuer = makeIssuer(backend);
  rogueIssuer = makeIssuer(backend, 'agent://test/rogue-issuer');
  server = makeAgent(backend, issuer, 'agent://acme/server', { notBefore: NOW - 3600, notAfter: NOW + 86400 });
  client = makeAgent(backend, issuer, 'agent://acme/client', { notBefore: NOW - 3600, notAfter: NOW + 86400 });
});

const at = (seconds: number) => () => seconds * 1000;

function handshake(clientAgent: TestAgent, serverAgent: TestAgent, c: Partial<SessionOptions> = {}, s: Partial<SessionOptions> = {}): PairResult {
  const base = { backend, trust: trustFor(issuer), now: at(NOW) };
  const pair = createPair({ ...base, identity: clientAgent.local, ...c }, { ...base, identity: serverAgent.local, ...s });
  return runPair(pair);
}

/** `refuser` failed with `code`; the other side got the alert `alert`; nobody is established. */
function expectRefused(pair: PairResult, refuser: 'client' | 'server', code: string, alert: number): void {
  const [mine, theirs] = refuser === 'server' ? [pair.serverEvents, pair.clientEvents] : [pair.clientEvents, pair.serverEvents];
  expect(errorOf(mine)?.code, errorOf(mine)?.message).toBe(code);
  const peerError = errorOf(theirs);
  expect(peerError).toBeInstanceOf(PeerAlertError);
  expect((peerError as PeerAlertError).peerAlert).toBe(alert);
  expect(pair.client.state).toBe('failed');
  expect(pair.server.state).toBe('failed');
  expect(pair.clientEvents.some((e) => e.type === 'handshake') && pair.serverEvents.some((e) => e.type === 'handshake')).toBe(false);
}

describe('credential checks, end to end', () => {
  it('accepts valid credentials within the window', () => {
    expectEstablished(handshake(client, server));
  });

  it('refuses a client whose issuer the server does not trust', () => {
    const stranger = makeAgent(backend, issuer, 'agent://evil/client', { issuer: rogueIssuer, notBefore: NOW - 10, notAfter: NOW + 10 });
    expectRefused(handshake(stranger, server), 'server', 'ERR_UNTRUSTED_ISSUER', Alert.unknownIssuer);
  });

  it('refuses a server whose issuer the client does not trust', () => {
    const stranger = makeAgent(backend, issuer, 'agent://evil/server', { issuer: rogueIssuer, notBefore: NOW - 10, notAfter: NOW + 10 });
    expectRefused(handshake(client, stranger), 'client', 'ERR_UNTRUSTED_ISSUER', Alert.unknownIssuer);
  });

  it('refuses an expired credential, and one not yet valid, beyond the clock skew', () => {
    expectRefused(handshake(client, server, {}, { now: at(NOW + 86400 + 61) }), 'server', 'ERR_CREDENTIAL_EXPIRED', Alert.credentialExpired);
    expectRefused(handshake(client, server, { now: at(NOW - 3600 - 61) }), 'client', 'ERR_CREDENTIAL_NOT_YET_VALID', Alert.badCredential);
    // Within the 60 s default skew both still pass.
    expectEstablished(handshake(client, server, { now: at(NOW + 86400 + 59) }, { now: at(NOW + 86400 + 59) }));
  });

  it('refuses a revoked serial and a revoked key', () => {
    const bySerial = trustFor(issuer).revokeSerial({ issuer: issuer.id, serial: client.credential.serial });
    expectRefused(handshake(client, server, {}, { trust: bySerial }), 'server', 'ERR_CREDENTIAL_REVOKED', Alert.credentialRevoked);
    const byKey = trustFor(issuer).revokeKey(fingerprintHex(backend, server.credential.publicKey));
    expectRefused(handshake(client, server, { trust: byKey }), 'client', 'ERR_CREDENTIAL_REVOKED', Alert.credentialRevoked);
  });

  it('refuses a server other than the expected one', () => {
    const pair = handshake(client, server, { expectedPeerId: 'agent://acme/other-server' });
    expectRefused(pair, 'client', 'ERR_UNEXPECTED_PEER', Alert.unexpectedPeer);
    expect(errorOf(pair.clientEvents)!.message).toContain('agent://acme/server');
    expectEstablished(handshake(client, server, { expectedPeerId: 'agent://acme/server' }));
  });

  it('refuses a server that presents another agent credential without its key', () => {
    // The impostor has its own key but presents the real server's credential.
    const impostorKey = compositeKeygen(backend, seedFrom('impostor', 64));
    const impostor: TestAgent = { ...server, local: { keyPair: impostorKey, credential: server.credential } };
    expectRefused(handshake(client, impostor), 'client', 'ERR_BAD_SIGNATURE', Alert.decryptError);
  });

  it('refuses a client that signs with another key', () => {
    const otherKey = compositeKeygen(backend, seedFrom('other client key', 64));
    const forger: TestAgent = { ...client, local: { keyPair: otherKey, credential: client.credential } };
    expectRefused(handshake(forger, server), 'server', 'ERR_BAD_SIGNATURE', Alert.decryptError);
  });

  it('refuses a composite signature whose halves come from two keys', () => {
    // ML-DSA half from the real client key, Ed25519 half from another key.
    const real = client.local.keyPair;
    const other = compositeKeygen(backend, seedFrom('ed25519 swap', 64));
    const mixed = { ...real, ed25519: other.ed25519, publicKey: concat(real.mldsa.publicKey, other.ed25519.publicKey) };
    const forger: TestAgent = { ...client, local: { keyPair: mixed, credential: client.credential } };
    expectRefused(handshake(forger, server), 'server', 'ERR_BAD_SIGNATURE', Alert.decryptError);
  });

  it('accepts a self-signed client only when its fingerprint is pinned', () => {
    const selfSigned = makeSelfSigned(backend, 'agent://solo/client');
    expectRefused(handshake(selfSigned, server, {}, { now: undefined }), 'server', 'ERR_CREDENTIAL_INVALID', Alert.badCredential);
    const pinned = trustFor(issuer).addPin({ fingerprint: fingerprintHex(backend, selfSigned.credential.publicKey), agentId: 'agent://solo/client' });
    const pair = handshake(selfSigned, server, {}, { trust: pinned, now: undefined });
    expectEstablished(pair);
    expect(pair.server.result!.peer.selfSigned).toBe(true);
  });

  it('an empty trust store trusts nobody', () => {
    expectRefused(handshake(client, server, {}, { trust: new TrustStore() }), 'server', 'ERR_UNTRUSTED_ISSUER', Alert.unknownIssuer);
  });
});
