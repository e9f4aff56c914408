/**
 * Roles (issue 11 item 3): a credential's `usage` against the role its holder plays.
 *
 * - A client credential presented by a server, and a server credential presented by a
 *   client, are refused by the verifying side with ERR_CREDENTIAL_USAGE and alert 101; the
 *   other side hears the alert. 'both' plays either role.
 * - The usage byte is signed (flipping it breaks the issuer's signature) and strict (any
 *   value other than 1, 2, 3 is a decode error), and the check runs before any signature
 *   work (a wrong-role credential with a broken signature is refused for its role).
 * - The transports check their own credential when configured: a listener with a client
 *   credential and a client with a server credential fail at once, saying how to fix it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import { Alert, BadSignatureError, CredentialUsageError, DecodeError, InvalidArgumentError, PeerAlertError } from '../../src/errors.js';
import { decodeCredential } from '../../src/identity/index.js';
import type { SessionOptions } from '../../src/session/session.js';
import { PqmcpClientTransport } from '../../src/transport/client.js';
import { listen } from '../../src/transport/server.js';
import { expectError, expectRejection } from '../helpers/errors.js';
import { makeAgent, makeIssuer, trustFor, type Issuer, type TestAgent } from '../helpers/identities.js';
import { createPair, errorOf, expectEstablished, runPair, type PairResult } from '../helpers/pair.js';

const backend = createNobleBackend();
let issuer: Issuer;
let clientOnly: TestAgent;
let serverOnly: TestAgent;
let both: TestAgent;
let bothToo: TestAgent;

beforeAll(() => {
  issuer = makeIssuer(backend, 'issuer://acme');
  clientOnly = makeAgent(backend, issuer, 'agent://acme/planner', { usage: 'client' });
  serverOnly = makeAgent(backend, issuer, 'agent://acme/tools', { usage: 'server' });
  both = makeAgent(backend, issuer, 'agent://acme/relay', { usage: 'both' });
  bothToo = makeAgent(backend, issuer, 'agent://acme/relay-2', { usage: 'both' });
});

function handshake(client: TestAgent, server: TestAgent, c: Partial<SessionOptions> = {}): PairResult {
  const base = { backend, trust: trustFor(issuer) };
  return runPair(createPair({ ...base, identity: client.local, ...c }, { ...base, identity: server.local }));
}

function expectRefused(pair: PairResult, refuser: 'client' | 'server', usage: string, role: string): void {
  const [mine, theirs] = refuser === 'server' ? [pair.serverEvents, pair.clientEvents] : [pair.clientEvents, pair.serverEvents];
  const error = errorOf(mine);
  expect(error).toBeInstanceOf(CredentialUsageError);
  expect(error?.code).toBe('ERR_CREDENTIAL_USAGE');
  expect(error?.alert).toBe(Alert.wrongCredentialUsage);
  expect(error?.alert).toBe(101);
  expect(error?.message).toBe(`credential usage is ${usage}; it may not act as a ${role}`);
  const heard = errorOf(theirs);
  expect(heard).toBeInstanceOf(PeerAlertError);
  expect((heard as PeerAlertError).peerAlert).toBe(101);
  // The refuser never completes (the client of a 1-RTT handshake completes before the server
  // has checked it, so only the refuser's side is asserted), and never both.
  expect(mine.some((e) => e.type === 'handshake')).toBe(false);
  expect(pair.clientEvents.some((e) => e.type === 'handshake') && pair.serverEvents.some((e) => e.type === 'handshake')).toBe(false);
}

/** Offset of the usage byte in an encoded credential (layout: src/identity/credential.ts). */
function usageOffset(encoded: Uint8Array): number {
  let at = 4 + 1;
  at += 1 + encoded[at]!; // agent_id
  at += 1 + encoded[at]!; // display_name
  at += 2; // key_algorithm
  at += 2 + ((encoded[at]! << 8) | encoded[at + 1]!); // public_key
  return at;
}

describe('credential usage in the handshake', () => {
  it('client and server credentials in their roles, and both in either role, are accepted', () => {
    expectEstablished(handshake(clientOnly, serverOnly));
    expectEstablished(handshake(both, serverOnly));
    expectEstablished(handshake(clientOnly, both));
    expectEstablished(handshake(both, bothToo));
  });

  it('a server presenting a client credential is refused by the client (alert 101)', () => {
    const otherClient = makeAgent(backend, issuer, 'agent://acme/other-client', { usage: 'client' });
    expectRefused(handshake(clientOnly, otherClient), 'client', 'client', 'server');
  });

  it('a client presenting a server credential is refused by the server (alert 101)', () => {
    const otherServer = makeAgent(backend, issuer, 'agent://acme/other-tools', { usage: 'server' });
    expectRefused(handshake(otherServer, serverOnly), 'server', 'server', 'client');
  });

  it('a client credential issued for the very id the client expects still cannot serve', () => {
    // A stolen (or mis-issued) client credential named like the server passes the name
    // check; usage refuses it.
    const impostor = makeAgent(backend, issuer, 'agent://acme/tools', { usage: 'client' });
    expectRefused(handshake(clientOnly, impostor, { expectedPeerId: 'agent://acme/tools' }), 'client', 'client', 'server');
  });
});

describe('the usage byte', () => {
  it('is where the layout says, with codes 1, 2, 3', () => {
    expect(clientOnly.credential.encoded[usageOffset(clientOnly.credential.encoded)]).toBe(1);
    expect(serverOnly.credential.encoded[usageOffset(serverOnly.credential.encoded)]).toBe(2);
    expect(both.credential.encoded[usageOffset(both.credential.encoded)]).toBe(3);
    expect(decodeCredential(both.credential.encoded).usage).toBe('both');
  });

  it('is signed: raising client to both breaks the issuer signature', () => {
    const c = clientOnly.credential.encoded.slice(0);
    c[usageOffset(c)] = 3;
    expect(decodeCredential(c).usage).toBe('both');
    expectError(() => trustFor(issuer).verifyCredential(backend, c, { peerRole: 'server' }), BadSignatureError, 'ERR_BAD_SIGNATURE');
  });

  it('is strict: 0, 4 and 255 are decode errors naming the field', () => {
    for (const value of [0, 4, 255]) {
      const c = clientOnly.credential.encoded.slice(0);
      c[usageOffset(c)] = value;
      const error = expectError(() => decodeCredential(c), DecodeError, 'ERR_DECODE');
      expect(error.message).toBe(`credential usage ${value} is not 1 (client), 2 (server) or 3 (both)`);
    }
  });

  it('is checked before the signature: a wrong-role credential with a broken signature is refused for its role', () => {
    const c = clientOnly.credential.encoded.slice(0);
    c[c.length - 1] = c[c.length - 1]! ^ 0x01; // the signature's last byte
    expectError(() => trustFor(issuer).verifyCredential(backend, c, { peerRole: 'server' }), CredentialUsageError, 'ERR_CREDENTIAL_USAGE');
    expectError(() => trustFor(issuer).verifyCredential(backend, c, { peerRole: 'client' }), BadSignatureError, 'ERR_BAD_SIGNATURE');
  });

  it('a decoded peer reports its usage', () => {
    expect(trustFor(issuer).verifyCredential(backend, serverOnly.credential.encoded, { peerRole: 'server' }).usage).toBe('server');
    expectError(() => trustFor(issuer).verifyCredential(backend, serverOnly.credential.encoded, { peerRole: 'nobody' as never }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });
});

describe('the transports check their own credential when configured', () => {
  it('listen() with a client credential fails before listening, saying how to fix it', async () => {
    const error = await expectRejection(listen({ identity: clientOnly.identity, trust: trustFor(issuer), backend, port: 0 }), CredentialUsageError, 'ERR_CREDENTIAL_USAGE');
    expect(error.message).toContain('has usage client; it may not act as a server');
    expect(error.message).toContain('--usage server');
  });

  it('a client transport with a server credential fails in its constructor', () => {
    const error = expectError(
      () => new PqmcpClientTransport('ws://127.0.0.1:1/', { identity: serverOnly.identity, trust: trustFor(issuer), backend, expectedServerId: 'agent://acme/tools' }),
      CredentialUsageError,
      'ERR_CREDENTIAL_USAGE',
    );
    expect(error.message).toContain('has usage server; it may not act as a client');
  });

  it('both roles accept a credential with usage both', async () => {
    const server = await listen({ identity: both.identity, trust: trustFor(issuer), backend, port: 0 });
    try {
      expect(() => new PqmcpClientTransport(server.url, { identity: both.identity, trust: trustFor(issuer), backend, expectedServerId: both.agentId })).not.toThrow();
    } finally {
      await server.close();
    }
  });
});
