/**
 * A client's ticket store is not a trust anchor (review 13, R13-2). A client re-checks a
 * stored ticket's server credential without the issuer's signature only when this process
 * received that ticket itself and kept it in memory since; a ticket read back from a file
 * (ticketFromJson, pqmcp connect's FileTicketStore) or handed over by a custom TicketStore
 * has its server credential verified in full. One that fails is not offered: the client
 * runs a full handshake (docs/protocol.md 15.5), which a server without the credential's
 * key cannot complete.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileTicketStore } from '../../src/cli/tickets.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import type { PqmcpError } from '../../src/errors.js';
import { encodeCredentialTbs } from '../../src/identity/credential.js';
import { generateIdentitySeed, identityFromSeed, keyFingerprint } from '../../src/identity/index.js';
import type { TrustStore } from '../../src/identity/trust.js';
import { MemoryTicketStore, ticketFromJson, ticketToJson, type ClientTicket } from '../../src/resumption/client-tickets.js';
import { TicketReplayGuard } from '../../src/resumption/replay.js';
import { TicketKeys } from '../../src/resumption/ticket-keys.js';
import { sealTicket } from '../../src/resumption/ticket.js';
import type { SessionEvent, SessionOptions } from '../../src/session/session.js';
import { Suite } from '../../src/wire/messages.js';
import { Writer } from '../../src/wire/writer.js';
import { makeAgent, makeIssuer, trustFor, type Issuer, type TestAgent } from '../helpers/identities.js';
import { createPair, errorOf, expectEstablished, runPair, text } from '../helpers/pair.js';

const base = createNobleBackend();
// Real time: FileTicketStore drops what has expired by the wall clock when it loads.
const NOW = Math.floor(Date.now() / 1000);
const at = (s: number) => () => s * 1000;
const BANK = 'agent://acme/bank';
const SUITE = Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256;

let issuer: Issuer;
let bank: TestAgent;
let client: TestAgent;
let bankKeys: TicketKeys;
let dir: string;

beforeAll(() => {
  issuer = makeIssuer(base);
  const window = { notBefore: NOW - 3600, notAfter: NOW + 30 * 86400 };
  bank = makeAgent(base, issuer, BANK, window);
  client = makeAgent(base, issuer, 'agent://acme/client', window);
  bankKeys = TicketKeys.generate(base, NOW * 1000);
  dir = mkdtempSync(join(tmpdir(), 'pqmcp-ticket-store-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A client backend counting ML-DSA verifications (the issuer signature's expensive half). */
function counting(): { backend: CryptoBackend; verifies: () => number } {
  let v = 0;
  return { backend: { ...base, mldsa65: { ...base.mldsa65, verify: (...a) => (v++, base.mldsa65.verify(...a)) } }, verifies: () => v };
}

interface Server {
  identity: SessionOptions['identity'];
  keys: TicketKeys;
}

/** One connection: the client (resuming with `ticket` if given) to `server`, which issues and accepts tickets. */
function connect(opts: { ticket?: ClientTicket; server?: Server; clientBackend?: CryptoBackend; clientTrust?: TrustStore } = {}) {
  const server = opts.server ?? { identity: bank.local, keys: bankKeys };
  const refused: PqmcpError[] = [];
  const pair = runPair(
    createPair(
      { backend: opts.clientBackend ?? base, identity: client.local, trust: opts.clientTrust ?? trustFor(issuer), now: at(NOW), expectedPeerId: BANK, suites: [SUITE], ...(opts.ticket ? { resumeTicket: opts.ticket } : {}) },
      { backend: base, identity: server.identity, trust: trustFor(issuer), now: at(NOW), tickets: { keys: server.keys, replay: new TicketReplayGuard(), endpoint: '/mcp', onRefused: (e) => refused.push(e) } },
    ),
    { clientMessages: [text('{"jsonrpc":"2.0","id":1,"method":"ping"}')] },
  );
  const tickets = pair.clientEvents.flatMap((e: SessionEvent) => (e.type === 'ticket' ? [e.ticket] : []));
  return { pair, refused, ticket: tickets[0] };
}

/**
 * What whoever can write the client's store plants: a credential for BANK naming the trusted
 * issuer (its id and key fingerprint) but signed by no one, the attacker's key in it, and a
 * ticket sealed under the attacker's own ticket keys with a PSK it chose.
 */
function plant(): { ticket: ClientTicket; attacker: Server; forged: Uint8Array } {
  const attackerKey = identityFromSeed(base, generateIdentitySeed(base));
  const tbs = encodeCredentialTbs({
    agentId: BANK, displayName: '', publicKey: attackerKey.publicKey, usage: 'server', scopes: [], attributes: {},
    notBefore: NOW - 60, notAfter: NOW + 86400, serial: new Uint8Array(16).fill(7),
    issuerId: issuer.id, issuerFingerprint: keyFingerprint(base, issuer.publicKey),
  });
  const forged = new Writer().bytes(tbs).u16(1).vector(2, new Uint8Array(3373).fill(0x55)).finish();
  const keys = TicketKeys.generate(base, NOW * 1000);
  const psk = new Uint8Array(32).fill(9);
  const sealed = sealTicket(base, keys, {
    suite: SUITE, authTime: NOW, expiresAt: NOW + 3600, psk: psk.slice(), endpoint: '/mcp',
    serverAgentId: BANK, serverCredentialHash: base.sha256(forged), clientCredential: client.credential.encoded,
  });
  const ticket = { ticket: sealed, psk, suite: SUITE, expiresAt: NOW + 3600, serverCredential: forged, clientCredentialHash: base.sha256(client.credential.encoded) };
  return { ticket, attacker: { identity: { keyPair: attackerKey, credential: forged }, keys }, forged };
}

const viaJson = (t: ClientTicket): ClientTicket => ticketFromJson(JSON.parse(JSON.stringify(ticketToJson(t))));

describe('a ticket store is not a trust anchor (R13-2)', () => {
  it('a planted ticket with an unsigned server credential (through the JSON form) is not offered: the full handshake fails against the attacker', () => {
    const { ticket, attacker } = plant();
    const r = connect({ ticket: viaJson(ticket), server: attacker });
    expect(r.pair.client.state).not.toBe('established');
    expect(r.pair.client.result).toBeUndefined();
    // The attacker's server saw no ticket (none refused, none accepted): a full handshake,
    // and the client refused the forged credential's signature.
    expect(r.refused).toEqual([]);
    expect(errorOf(r.pair.clientEvents)?.code).toBe('ERR_BAD_SIGNATURE');
  });

  it('the same planted ticket before the genuine server: not offered, a full handshake that succeeds', () => {
    const r = connect({ ticket: viaJson(plant().ticket) });
    expectEstablished(r.pair);
    expect(r.pair.client.result!.resumed).toBe(false);
    expect(r.pair.client.result!.peer.agentId).toBe(BANK);
    expect(r.refused).toEqual([]);
  });

  it('a ticket kept in memory whose server credential was replaced since is verified in full too: not offered', () => {
    const genuine = connect().ticket!;
    genuine.serverCredential = plant().forged;
    const r = connect({ ticket: genuine });
    expectEstablished(r.pair);
    expect(r.pair.client.result!.resumed).toBe(false);
    expect(r.refused).toEqual([]);
  });

  it('a genuine ticket read back from its JSON form resumes, after one verification of the server credential (none with the verified-credential cache warm)', () => {
    const trust = trustFor(issuer);
    const cold = counting();
    const first = connect({ ticket: viaJson(connect().ticket!), clientBackend: cold.backend, clientTrust: trust });
    expectEstablished(first.pair);
    expect(first.pair.client.result!.resumed).toBe(true);
    expect(first.pair.client.result!.peer.agentId).toBe(BANK);
    expect(cold.verifies()).toBe(1);
    const warm = counting();
    const second = connect({ ticket: viaJson(connect().ticket!), clientBackend: warm.backend, clientTrust: trust });
    expect(second.pair.client.result!.resumed).toBe(true);
    expect(warm.verifies()).toBe(0);
    // The resumed session's own new ticket was received in memory: re-checked, no verification.
    const third = counting();
    const again = connect({ ticket: second.ticket!, clientBackend: third.backend });
    expect(again.pair.client.result!.resumed).toBe(true);
    expect(third.verifies()).toBe(0);
  });

  it("pqmcp connect's ticket file (FileTicketStore): a genuine ticket resumes with the full check, a planted one is not offered", () => {
    const key = `${BANK} ws://127.0.0.1:1/mcp`;
    const path = join(dir, 'tickets.json');
    new FileTicketStore(path, () => {}).put(key, connect().ticket!);
    const counted = counting();
    const genuine = connect({ ticket: new FileTicketStore(path, () => {}).take(key, NOW * 1000)!, clientBackend: counted.backend });
    expect(genuine.pair.client.result!.resumed).toBe(true);
    expect(counted.verifies()).toBe(1);
    // Whoever can write the file plants a ticket (the file kept 0600, as the CLI wants it).
    const store = new MemoryTicketStore();
    store.put(key, plant().ticket);
    writeFileSync(path, JSON.stringify(store.toJSON()), { mode: 0o600 });
    const planted = new FileTicketStore(path, () => {}).take(key, NOW * 1000)!;
    expect(planted).toBeDefined();
    const r = connect({ ticket: planted });
    expectEstablished(r.pair);
    expect(r.pair.client.result!.resumed).toBe(false);
    expect(r.refused).toEqual([]);
  });
});
