/**
 * Identity attacks over real sockets, in both directions: a hostile client presenting a bad
 * credential to the real listener, and a hostile server presenting one to the real client
 * transport. Expired, not yet valid, revoked (by serial and by key), unknown issuer,
 * unpinned self-signed, the wrong agent id, and a credential for one key presented with
 * another key. Each case: the exact typed error on the honest side, the exact alert the
 * attacker received, close code 4002, no MCP handler ever ran, nothing left open.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { compositeKeygen } from '../../src/crypto/composite.js';
import { Alert, PqmcpError } from '../../src/errors.js';
import { fingerprintHex } from '../../src/identity/index.js';
import type { AgentIdentity } from '../../src/identity/index.js';
import type { TrustStore } from '../../src/identity/trust.js';
import { CloseCode, PqmcpClientTransport } from '../../src/transport/index.js';
import { agent, fixtureCrypto, makeAgent, makeIssuer, makeSelfSigned, seedFrom, testIssuer, trustFor } from '../helpers/identities.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { HostileClient, HostileServer } from './socket-harness.js';
import { SERVER_ID, attackerAs, connections, honestServer } from './socket-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const now = () => Math.floor(Date.now() / 1000);
const crypto = () => fixtureCrypto();

interface Case {
  what: string;
  /** The identity the attacker presents (its key pair and credential). */
  identity: () => AgentIdentity;
  /** The honest side's trust store (default: trusts the test issuer). */
  trust?: (attacker: AgentIdentity) => TrustStore;
  code: string;
  alert: number;
}

/** Another agent's credential with the attacker's own key: it signs, the credential names another key. */
function stolenCredential(victim: AgentIdentity): AgentIdentity {
  return { ...victim, keyPair: compositeKeygen(crypto(), seedFrom(`thief of ${victim.credential.agentId}`, 64)) };
}

function cases(role: 'client' | 'server'): Case[] {
  const id = role === 'client' ? 'agent://pqmcp-test/hostile-client' : SERVER_ID;
  return [
    { what: 'expired', identity: () => makeAgent(crypto(), testIssuer(), id, { notBefore: now() - 7200, notAfter: now() - 3600 }).identity, code: 'ERR_CREDENTIAL_EXPIRED', alert: Alert.credentialExpired },
    { what: 'not yet valid', identity: () => makeAgent(crypto(), testIssuer(), id, { notBefore: now() + 3600, notAfter: now() + 7200 }).identity, code: 'ERR_CREDENTIAL_NOT_YET_VALID', alert: Alert.badCredential },
    {
      what: 'revoked by serial',
      identity: () => makeAgent(crypto(), testIssuer(), id).identity,
      trust: (a) => trustFor().revokeSerial({ issuer: testIssuer().id, serial: a.credential.serial }),
      code: 'ERR_CREDENTIAL_REVOKED',
      alert: Alert.credentialRevoked,
    },
    {
      what: 'revoked by key',
      identity: () => makeAgent(crypto(), testIssuer(), id).identity,
      trust: (a) => trustFor().revokeKey(fingerprintHex(crypto(), a.keyPair.publicKey)),
      code: 'ERR_CREDENTIAL_REVOKED',
      alert: Alert.credentialRevoked,
    },
    { what: 'from an unknown issuer', identity: () => makeAgent(crypto(), makeIssuer(crypto(), 'issuer://unknown'), id).identity, code: 'ERR_UNTRUSTED_ISSUER', alert: Alert.unknownIssuer },
    { what: 'self-signed, not pinned', identity: () => makeSelfSigned(crypto(), id).identity, code: 'ERR_CREDENTIAL_INVALID', alert: Alert.badCredential },
    { what: 'for another key than the one that signs', identity: () => stolenCredential(agent(id)), code: 'ERR_BAD_SIGNATURE', alert: Alert.decryptError },
  ];
}

describe('a hostile client presents a bad credential to the listener', () => {
  it.each(cases('client').map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    const identity = c.identity();
    const log = await honestServer(cleanup, c.trust ? { trust: c.trust(identity) } : {});
    const h = await HostileClient.connect(log.url, attackerAs(identity), {}, cleanup);
    expect((await h.closed).code).toBe(CloseCode.authenticationFailed);
    // The server alerts under its application key, which the attacker shares.
    expect(h.attacker.alerts).toEqual([c.alert]);
    await waitFor(() => log.clientErrors.length === 1, 5_000, 'clientError');
    expect(log.clientErrors[0]!.code).toBe(c.code);
    expect(log.sessions).toEqual([]);
    expect(log.handlerCalls).toBe(0);
    await waitFor(() => log.server.pendingHandshakes === 0, 5_000, 'slot freed');
    await expect.poll(() => connections(log), { timeout: 5_000 }).toBe(0);
  });
});

describe('a hostile server presents a bad credential to the client transport', () => {
  const serverCases: Case[] = [
    ...cases('server'),
    { what: 'with another agent id than expected', identity: () => agent('agent://pqmcp-test/other-server'), code: 'ERR_UNEXPECTED_PEER', alert: Alert.unexpectedPeer },
  ];
  it.each(serverCases.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    const identity = c.identity();
    const hostile = await HostileServer.start(attackerAs(identity), {}, cleanup);
    const transport = new PqmcpClientTransport(hostile.url, {
      identity: agent('agent://pqmcp-test/client'),
      trust: c.trust ? c.trust(identity) : trustFor(),
      backend: 'native',
      expectedServerId: SERVER_ID,
    });
    cleanup.add(() => transport.close());
    const client = new Client({ name: 'honest', version: '1' });
    const error = await client.connect(transport).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PqmcpError);
    expect((error as PqmcpError).code).toBe(c.code);
    expect(transport.sessionId).toBeUndefined();
    await waitFor(() => hostile.drivers.length === 1, 5_000, 'connection');
    const driver = hostile.drivers[0]!;
    expect((await driver.closed).code).toBe(CloseCode.authenticationFailed);
    // The client alerts under its handshake key, which the attacker shares.
    expect(driver.attacker.alerts).toEqual([c.alert]);
    // The attacker never saw the client's identity: the client sends nothing protected
    // before the server is verified.
    expect(driver.attacker.hs.currentState).toBe('wait-credential');
  });
});
