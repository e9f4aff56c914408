/**
 * Resumption (docs/protocol.md section 11) through two real Sessions: tickets, the PSK +
 * fresh X-Wing handshake without signatures, and every refusal. A refused ticket falls
 * back to a full handshake (reported with its typed error); a bad binder is fatal.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { Alert, PeerAbortedError, PqmcpError, ServerBusyError } from '../../src/errors.js';
import { DEFAULT_MAX_TICKET_LENGTH, type ServerTicketConfig } from '../../src/handshake/resumption.js';
import { fingerprintHex } from '../../src/identity/index.js';
import type { ClientTicket } from '../../src/resumption/client-tickets.js';
import { TicketReplayGuard } from '../../src/resumption/replay.js';
import { TicketKeys } from '../../src/resumption/ticket-keys.js';
import { Session, type SessionEvent, type SessionOptions } from '../../src/session/session.js';
import { RecordType, encodeRecord } from '../../src/record/index.js';
import { decodeServerHello, encodeServerHello, unframeHandshake } from '../../src/wire/messages.js';
import { EXT_PRE_SHARED_KEY, encodePskAccepted } from '../../src/wire/resumption.js';
import { makeAgent, makeIssuer, trustFor, type Issuer, type TestAgent } from '../helpers/identities.js';
import { binderTamper, createPair, errorOf, expectEstablished, messagesOf, runPair, text, type PairResult, type Tamper } from '../helpers/pair.js';

const base = createNobleBackend();
const NOW = Date.UTC(2026, 5, 1) / 1000;
const at = (seconds: number) => () => seconds * 1000;

let issuer: Issuer;
let server: TestAgent;
let client: TestAgent;
let keys: TicketKeys;

beforeAll(() => {
  issuer = makeIssuer(base);
  server = makeAgent(base, issuer, 'agent://acme/server', { notBefore: NOW - 3600, notAfter: NOW + 30 * 86400 });
  client = makeAgent(base, issuer, 'agent://acme/client', { notBefore: NOW - 3600, notAfter: NOW + 30 * 86400, scopes: ['tools:call'] });
  keys = TicketKeys.generate(base, NOW * 1000);
});

/** A backend counting signatures made and verified. */
function counting(): { backend: CryptoBackend; signs: () => number; verifies: () => number } {
  let s = 0;
  let v = 0;
  const backend: CryptoBackend = {
    ...base,
    mldsa65: { ...base.mldsa65, sign: (...a) => (s++, base.mldsa65.sign(...a)), verify: (...a) => (v++, base.mldsa65.verify(...a)) },
  };
  return { backend, signs: () => s, verifies: () => v };
}

interface Setup {
  backend?: CryptoBackend;
  clientNow?: number;
  serverNow?: number;
  tickets?: Partial<ServerTicketConfig>;
  serverTrust?: ReturnType<typeof trustFor>;
  clientTrust?: ReturnType<typeof trustFor>;
  clientAgent?: TestAgent;
  resumeTicket?: ClientTicket;
  tamper?: Tamper;
  /** The endpoint the client names (ClientHello 0x0001) and the endpoints the server accepts. */
  clientEndpoint?: string;
  acceptEndpoints?: string[];
}

interface Run {
  pair: PairResult;
  refusals: PqmcpError[];
  tickets: ClientTicket[];
}

function run(setup: Setup = {}): Run {
  const backend = setup.backend ?? base;
  const refusals: PqmcpError[] = [];
  const tickets: ServerTicketConfig = { keys, replay: new TicketReplayGuard(), endpoint: '/mcp', onRefused: (e) => refusals.push(e), ...setup.tickets };
  const c: SessionOptions = {
    backend,
    identity: (setup.clientAgent ?? client).local,
    trust: setup.clientTrust ?? trustFor(issuer),
    now: at(setup.clientNow ?? NOW),
    expectedPeerId: server.agentId,
    ...(setup.resumeTicket ? { resumeTicket: setup.resumeTicket } : {}),
    ...(setup.clientEndpoint !== undefined ? { endpoint: setup.clientEndpoint } : {}),
  };
  const s: SessionOptions = {
    backend,
    identity: server.local,
    trust: setup.serverTrust ?? trustFor(issuer),
    now: at(setup.serverNow ?? NOW),
    tickets,
    ...(setup.acceptEndpoints !== undefined ? { acceptEndpoints: setup.acceptEndpoints } : {}),
  };
  const pair = runPair(createPair(c, s), { clientMessages: [text('{"jsonrpc":"2.0","id":1,"method":"ping"}')], ...(setup.tamper ? { tamper: setup.tamper } : {}) });
  return { pair, refusals, tickets: ticketsOf(pair.clientEvents) };
}

function ticketsOf(events: SessionEvent[]): ClientTicket[] {
  return events.flatMap((e) => (e.type === 'ticket' ? [e.ticket] : []));
}

/** A fresh ticket from a full handshake, sharing `replay` with later servers. */
function freshTicket(setup: Setup = {}): ClientTicket {
  const r = run(setup);
  expectEstablished(r.pair);
  expect(r.tickets).toHaveLength(1);
  return r.tickets[0]!;
}

/**
 * A copy of `ticket` with its own PSK, made before it is offered: the handshake wipes the PSK
 * of the ticket it offers (review 13, R13-5), so a test that offers one ticket twice (a
 * replay, or a refusal then a resumption) offers a copy the second time.
 */
function copyOf(ticket: ClientTicket, changes: Partial<ClientTicket> = {}): ClientTicket {
  return { ...ticket, psk: ticket.psk.slice(), ...changes };
}

function expectResumed(r: Run, resumed: boolean): void {
  expectEstablished(r.pair);
  expect(r.pair.client.result!.resumed).toBe(resumed);
  expect(r.pair.server.result!.resumed).toBe(resumed);
  expect(messagesOf(r.pair.serverEvents)).toEqual(['{"jsonrpc":"2.0","id":1,"method":"ping"}']);
}

/** The ticket was refused with exactly `code` and the session completed as a full handshake. */
function expectFallback(r: Run, code: string): void {
  expect(r.refusals.map((e) => e.code)).toEqual([code]);
  expectResumed(r, false);
}

describe('resumption: the honest path', () => {
  it('a full handshake issues a ticket; resuming with it makes no signature and verifies none, and exposes the same peers', () => {
    const first = run();
    expectResumed(first, false);
    const ticket = first.tickets[0]!;
    expect(ticket.expiresAt).toBe(NOW + 12 * 3600);
    const c = counting();
    const replay = new TicketReplayGuard();
    const second = run({ backend: c.backend, resumeTicket: ticket, tickets: { replay } });
    expectResumed(second, true);
    expect(c.signs()).toBe(0);
    expect(c.verifies()).toBe(0);
    expect(second.refusals).toEqual([]);
    // The same verified peers, from the tickets.
    expect(second.pair.server.result!.peer.agentId).toBe(client.agentId);
    expect(second.pair.server.result!.peer.scopes).toEqual(['tools:call']);
    expect(second.pair.server.result!.peer.fingerprint).toBe(first.pair.server.result!.peer.fingerprint);
    expect(second.pair.client.result!.peer.agentId).toBe(server.agentId);
    // A fresh X-Wing exchange: the resumed session's keys are not the first one's.
    expect(toHex(second.pair.client.exportKeyingMaterial('x', new Uint8Array(0), 32))).not.toBe(toHex(first.pair.client.exportKeyingMaterial('x', new Uint8Array(0), 32)));
    // Three records from the server (hello, Finished, ticket), the Finished the only protected handshake record.
    expect(second.pair.wire.s2c.length).toBeGreaterThanOrEqual(3);
    // A resumed session issues a new ticket (single use), still bound to the first authentication.
    expect(second.tickets).toHaveLength(1);
  });

  it('a client whose credential makes its ticket too large for one ClientHello record gets none (withheld), and its sessions complete with full handshakes', () => {
    // Attributes of 3 KiB: a credential of about 8.5 KB, within the 16 KiB limit; the ticket
    // that carries it cannot fit the 8,192-byte plaintext ClientHello record. (A client given
    // such a ticket does not offer it: test/session/ticket-padding.test.ts.)
    const attributes = Object.fromEntries(['a', 'b', 'c'].map((k) => [k, k.repeat(1000)]));
    const big = makeAgent(base, issuer, 'agent://acme/big-client', { notBefore: NOW - 3600, notAfter: NOW + 30 * 86400, attributes });
    const first = run({ clientAgent: big });
    expectResumed(first, false);
    expect(first.tickets).toEqual([]);
    expect(first.pair.server.result!.ticketsWithheld).toBe('client-hello');
    const again = run({ clientAgent: big });
    expectResumed(again, false);
    expect(again.refusals).toEqual([]);
  });

  it('chained tickets keep the original auth_time: they never extend the first authentication', () => {
    const ticket = freshTicket();
    const later = NOW + 3600;
    const r = run({ resumeTicket: ticket, clientNow: later, serverNow: later });
    expectResumed(r, true);
    expect(r.tickets[0]!.expiresAt).toBe(NOW + 12 * 3600);
  });

  it('a ticket never outlives either credential', () => {
    const shortLived = makeAgent(base, issuer, 'agent://acme/short', { notBefore: NOW - 10, notAfter: NOW + 100 });
    const ticket = freshTicket({ clientAgent: shortLived });
    expect(ticket.expiresAt).toBe(NOW + 100);
  });

  it('the client offers a ticket only with the credential it was issued to', () => {
    const ticket = freshTicket();
    const other = makeAgent(base, issuer, 'agent://acme/other-client', { notBefore: NOW - 10, notAfter: NOW + 86400 });
    const r = run({ resumeTicket: ticket, clientAgent: other });
    expect(r.refusals).toEqual([]);
    expectResumed(r, false);
    expect(r.pair.server.result!.peer.agentId).toBe('agent://acme/other-client');
  });

  it('a rotated key still opens tickets sealed before the rotation (overlap); dropping it refuses them', () => {
    const ticket = freshTicket();
    const rotated = keys.rotate(base, { nowMs: NOW * 1000 });
    expectResumed(run({ resumeTicket: ticket, tickets: { keys: rotated } }), true);
    const dropped = rotated.rotate(base, { keep: 0, nowMs: NOW * 1000 });
    expectFallback(run({ resumeTicket: freshTicket(), tickets: { keys: dropped } }), 'ERR_TICKET_UNKNOWN_KEY');
  });
});

describe.each([
  ['native', 'native'],
  ['noble', 'native'],
  ['native', 'noble'],
] as const)('resumption on the %s client and %s server backends', (clientName, serverName) => {
  it('full handshake, ticket, resumed handshake', () => {
    const pick = (n: string): CryptoBackend => (n === 'native' ? createNativeBackend() : base);
    const replay = new TicketReplayGuard();
    const go = (resumeTicket?: ClientTicket) =>
      runPair(
        createPair(
          { backend: pick(clientName), identity: client.local, trust: trustFor(issuer), now: at(NOW), expectedPeerId: server.agentId, ...(resumeTicket ? { resumeTicket } : {}) },
          { backend: pick(serverName), identity: server.local, trust: trustFor(issuer), now: at(NOW), tickets: { keys, replay, endpoint: '/mcp' } },
        ),
      );
    const first = go();
    expectEstablished(first);
    const ticket = ticketsOf(first.clientEvents)[0]!;
    const second = go(ticket);
    expectEstablished(second);
    expect(second.client.result!.resumed).toBe(true);
    expect(second.server.result!.resumed).toBe(true);
  });
});

describe('resumption: refused tickets fall back to a full handshake', () => {
  it('replayed: a ticket used once is refused the second time', () => {
    const replay = new TicketReplayGuard();
    const ticket = freshTicket();
    const replayed = copyOf(ticket);
    expectResumed(run({ resumeTicket: ticket, tickets: { replay } }), true);
    expectFallback(run({ resumeTicket: replayed, tickets: { replay } }), 'ERR_TICKET_REPLAYED');
  });

  it('tampered: any byte of the sealed ticket changed', () => {
    const ticket = freshTicket();
    for (const offset of [0, 8, 30, ticket.ticket.length - 1]) {
      const bad = ticket.ticket.slice();
      bad[offset]! ^= 0x01;
      expectFallback(run({ resumeTicket: copyOf(ticket, { ticket: bad }) }), offset < 8 ? 'ERR_TICKET_UNKNOWN_KEY' : 'ERR_TICKET_INVALID');
    }
  });

  it('expired (on the server clock; the client would not offer it either)', () => {
    const ticket = freshTicket();
    expectFallback(run({ resumeTicket: ticket, serverNow: ticket.expiresAt }), 'ERR_TICKET_EXPIRED');
    const r = run({ resumeTicket: ticket, clientNow: ticket.expiresAt, serverNow: ticket.expiresAt });
    expect(r.refusals).toEqual([]);
    expectResumed(r, false);
  });

  it('foreign key: a ticket from a server with other ticket keys', () => {
    const ticket = freshTicket();
    expectFallback(run({ resumeTicket: ticket, tickets: { keys: TicketKeys.generate(base) } }), 'ERR_TICKET_UNKNOWN_KEY');
  });

  it('the ticket binds the endpoint the client named, authority included: one listener serving /mcp for any host', () => {
    const acceptEndpoints = ['/mcp'];
    const ticket = freshTicket({ clientEndpoint: '//a.example/mcp', acceptEndpoints });
    // Another authority on the same listener and path: refused, full handshake.
    expectFallback(run({ resumeTicket: ticket, clientEndpoint: '//b.example/mcp', acceptEndpoints }), 'ERR_TICKET_ENDPOINT');
    // The endpoint it was issued for: resumes (the listener's own tickets.endpoint is the same '/mcp' both times).
    const again = freshTicket({ clientEndpoint: '//a.example/mcp', acceptEndpoints });
    expectResumed(run({ resumeTicket: again, clientEndpoint: '//a.example/mcp', acceptEndpoints }), true);
  });

  it('wrong endpoint: a ticket from /mcp presented to /admin', () => {
    const ticket = freshTicket();
    expectFallback(run({ resumeTicket: ticket, tickets: { endpoint: '/admin' } }), 'ERR_TICKET_ENDPOINT');
  });

  it('another server identity holding the same ticket keys', () => {
    const ticket = freshTicket();
    const twin = makeAgent(base, issuer, 'agent://acme/server', { notBefore: NOW - 10, notAfter: NOW + 86400 });
    const refusals: PqmcpError[] = [];
    const tickets: ServerTicketConfig = { keys, replay: new TicketReplayGuard(), endpoint: '/mcp', onRefused: (e) => refusals.push(e) };
    const pair = runPair(
      createPair(
        { backend: base, identity: client.local, trust: trustFor(issuer), now: at(NOW), expectedPeerId: server.agentId, resumeTicket: ticket },
        { backend: base, identity: twin.local, trust: trustFor(issuer), now: at(NOW), tickets },
      ),
    );
    expect(refusals.map((e) => e.code)).toEqual(['ERR_TICKET_MISMATCH']);
    expectEstablished(pair);
    expect(pair.client.result!.resumed).toBe(false);
  });

  it('post-revocation (client): the ticket is refused, and the full handshake then refuses the revoked client', () => {
    const ticket = freshTicket();
    const serverTrust = trustFor(issuer).revokeSerial({ issuer: issuer.id, serial: client.credential.serial });
    const r = run({ resumeTicket: ticket, serverTrust });
    expect(r.refusals.map((e) => e.code)).toEqual(['ERR_CREDENTIAL_REVOKED']);
    expect(errorOf(r.pair.serverEvents)?.code).toBe('ERR_CREDENTIAL_REVOKED');
    expect(r.pair.server.state).toBe('failed');
    expect(r.pair.client.state).toBe('failed');
  });

  it('post-revocation (server): the client does not offer the ticket, and the full handshake refuses the revoked server', () => {
    const ticket = freshTicket();
    const clientTrust = trustFor(issuer).revokeKey(fingerprintHex(base, server.keyPair.publicKey));
    const r = run({ resumeTicket: ticket, clientTrust });
    expect(r.refusals).toEqual([]);
    expect(errorOf(r.pair.clientEvents)?.code).toBe('ERR_CREDENTIAL_REVOKED');
    expect(r.pair.client.state).toBe('failed');
  });

  it('one agent resuming in a loop takes at most its share of the anti-replay record: another agent still resumes (review F5)', () => {
    const replay = new TicketReplayGuard(10, 3);
    const other = makeAgent(base, issuer, 'agent://acme/other-client', { notBefore: NOW - 3600, notAfter: NOW + 30 * 86400 });
    const greedy = Array.from({ length: 10 }, () => run({ resumeTicket: freshTicket(), tickets: { replay } }));
    expect(greedy.map((r) => r.pair.server.result!.resumed)).toEqual([true, true, true, false, false, false, false, false, false, false]);
    for (const r of greedy.slice(3)) expectFallback(r, 'ERR_TICKET_REPLAY_FULL');
    expect(greedy[3]!.refusals[0]!.message).toMatch(/share/);
    expectResumed(run({ clientAgent: other, resumeTicket: freshTicket({ clientAgent: other }), tickets: { replay } }), true);
    expect(replay.size).toBe(4);
    // The default share is a sixteenth of the capacity.
    expect(new TicketReplayGuard(100_000).perAgent).toBe(6250);
    // Expired entries give the share back.
    const later = NOW + 12 * 3600 + 1;
    const t = freshTicket({ clientNow: later - 60, serverNow: later - 60 });
    expectResumed(run({ resumeTicket: t, clientNow: later, serverNow: later, tickets: { replay } }), true);
  });

  it('the anti-replay record full of live tickets fails safe: resumption refused, full handshake', () => {
    const replay = new TicketReplayGuard(1);
    expectResumed(run({ resumeTicket: freshTicket(), tickets: { replay } }), true);
    expectFallback(run({ resumeTicket: freshTicket(), tickets: { replay } }), 'ERR_TICKET_REPLAY_FULL');
    // Once the first ticket has expired its entry goes, and resumption works again.
    const t = freshTicket({ clientNow: NOW + 3600, serverNow: NOW + 3600 });
    const later = NOW + 12 * 3600 + 1;
    expectResumed(run({ resumeTicket: t, clientNow: later, serverNow: later, tickets: { replay } }), true);
  });
});

describe('resumption: a forged ticket costs no unadmitted work (review F2)', () => {
  /** A ClientHello offering `forged` (a live key id, then noise) to a server that defers its crypto. */
  function offer(forged: Uint8Array, extra: Partial<ServerTicketConfig> = {}) {
    const genuine = freshTicket();
    const refusals: PqmcpError[] = [];
    const c = Session.client({ backend: base, identity: client.local, trust: trustFor(issuer), now: at(NOW), expectedPeerId: server.agentId, resumeTicket: { ...genuine, ticket: forged } });
    const tickets: ServerTicketConfig = { keys, replay: new TicketReplayGuard(), endpoint: '/mcp', onRefused: (e) => refusals.push(e), ...extra };
    const s = Session.server({ backend: base, identity: server.local, trust: trustFor(issuer), now: at(NOW), deferCrypto: true, tickets });
    const events = c.start().send.flatMap((r) => s.receive(r).events);
    return { s, events, refusals };
  }
  const forged = (length: number) => {
    const t = new Uint8Array(length);
    crypto.getRandomValues(t);
    t.set(keys.current.id);
    return t;
  };

  it('the ticket is opened only after the handshake was admitted (its encapsulation computed): a refused one never opens it', () => {
    const refused = offer(forged(6500)); // about the most one ClientHello record can carry
    expect(refused.events.map((e) => e.type)).toEqual(['compute']);
    expect(refused.refusals).toEqual([]); // not opened yet
    refused.s.abort(new ServerBusyError('server busy: too many new handshakes from this address, try again later'));
    expect(refused.refusals).toEqual([]); // the pool refused it (rate, queue): never opened
    const admitted = offer(forged(6500));
    const compute = admitted.events[0]!;
    if (compute.type !== 'compute' || compute.request.op !== 'encapsulate') throw new Error('expected an encapsulation request');
    const out = admitted.s.resume({ op: 'encapsulate', ...base.xwing.encapsulate(compute.request.publicKey) });
    expect(admitted.refusals.map((e) => e.code)).toEqual(['ERR_TICKET_INVALID']); // opened now, refused: full handshake
    expect(out.events.map((e) => e.type)).toEqual(['compute']); // the signature
  });

  it('a malformed pre_shared_key extension is ERR_TICKET_INVALID (15.4 step 1), then a full handshake', () => {
    const genuine = freshTicket();
    const refusals: PqmcpError[] = [];
    const c = Session.client({ backend: base, identity: client.local, trust: trustFor(issuer), now: at(NOW), expectedPeerId: server.agentId, resumeTicket: genuine });
    const s = Session.server({ backend: base, identity: server.local, trust: trustFor(issuer), now: at(NOW), deferCrypto: true, tickets: { keys, replay: new TicketReplayGuard(), endpoint: '/mcp', onRefused: (e) => refusals.push(e) } });
    const [hello] = c.start().send;
    const bad = hello!.slice();
    // The extension is ticket<2> || binder[32], at the very end of the ClientHello: make the ticket's length overrun.
    const prefix = bad.length - 32 - genuine.ticket.length - 2;
    expect((bad[prefix]! << 8) | bad[prefix + 1]!).toBe(genuine.ticket.length);
    const longer = genuine.ticket.length + 1;
    bad[prefix] = longer >> 8;
    bad[prefix + 1] = longer & 0xff;
    const compute = s.receive(bad).events[0]!;
    if (compute.type !== 'compute' || compute.request.op !== 'encapsulate') throw new Error('expected an encapsulation request');
    s.resume({ op: 'encapsulate', ...base.xwing.encapsulate(compute.request.publicKey) });
    expect(refusals.map((e) => e.code)).toEqual(['ERR_TICKET_INVALID']);
    expect(s.state).toBe('handshaking'); // a full handshake goes on
  });

  it('tickets above maxTicketLength are refused unopened with ERR_TICKET_INVALID, even a genuine one', () => {
    const ticket = freshTicket();
    expect(ticket.ticket.length).toBeLessThan(DEFAULT_MAX_TICKET_LENGTH);
    expectFallback(run({ resumeTicket: copyOf(ticket), tickets: { maxTicketLength: 1024 } }), 'ERR_TICKET_INVALID');
    expectResumed(run({ resumeTicket: ticket }), true);
    const long = offer(forged(4097), { maxTicketLength: 4096 });
    const compute = long.events[0]!;
    if (compute.type !== 'compute' || compute.request.op !== 'encapsulate') throw new Error('expected an encapsulation request');
    long.s.resume({ op: 'encapsulate', ...base.xwing.encapsulate(compute.request.publicKey) });
    expect(long.refusals.map((e) => e.code)).toEqual(['ERR_TICKET_INVALID']);
  });
});

describe('resumption: fatal failures (no fallback)', () => {
  it('a bad binder: the sender does not hold the PSK; refused with psk_binder_invalid', () => {
    const ticket = freshTicket();
    const r = run({ resumeTicket: ticket, tamper: binderTamper });
    expect(errorOf(r.pair.serverEvents)?.code).toBe('ERR_BAD_BINDER');
    // In plaintext (the server has no keys yet): reported as unauthenticated, with its code.
    const alert = errorOf(r.pair.clientEvents);
    expect(alert?.code).toBe('ERR_PEER_ABORTED');
    expect(alert).toBeInstanceOf(PeerAbortedError);
    expect((alert as PeerAbortedError).peerAlert).toBe(Alert.pskBinderInvalid);
    expect(r.refusals).toEqual([]);
  });

  it('a replayed resuming ClientHello gets the attacker nothing: binder ok, ticket already used, full handshake it cannot finish', () => {
    const replay = new TicketReplayGuard();
    const ticket = freshTicket();
    const honest = run({ resumeTicket: ticket, tickets: { replay } });
    expectResumed(honest, true);
    // The attacker replays the honest ClientHello record into a new connection.
    const refusals: PqmcpError[] = [];
    const pair = createPair(
      { backend: base, identity: client.local, trust: trustFor(issuer), now: at(NOW), expectedPeerId: server.agentId },
      { backend: base, identity: server.local, trust: trustFor(issuer), now: at(NOW), tickets: { keys, replay, endpoint: '/mcp', onRefused: (e) => refusals.push(e) } },
    );
    const out = pair.server.receive(honest.pair.wire.c2s[0]!);
    expect(refusals.map((e) => e.code)).toEqual(['ERR_TICKET_REPLAYED']);
    // The server answered with a full handshake flight (ServerHello + Credential + CredentialVerify + Finished).
    expect(out.send).toHaveLength(4);
    expect(pair.server.state).toBe('handshaking');
  });

  it('a ServerHello accepting a ticket that was not offered is refused', () => {
    const inject: Tamper = (dir, records, flight) => {
      if (dir !== 's2c' || flight !== 1) return records;
      const { body } = unframeHandshake(records[0]!.subarray(4));
      const sh = decodeServerHello(body);
      return [encodeRecord(RecordType.handshake, encodeServerHello({ ...sh, extensions: [encodePskAccepted()] })), ...records.slice(1)];
    };
    const r = run({ tamper: inject });
    expect(errorOf(r.pair.clientEvents)?.code).toBe('ERR_UNSUPPORTED_EXTENSION');
  });

  it('a network attacker stripping the acceptance from the ServerHello breaks the handshake (transcript)', () => {
    const ticket = freshTicket();
    const strip: Tamper = (dir, records, flight) => {
      if (dir !== 's2c' || flight !== 1) return records;
      const { body } = unframeHandshake(records[0]!.subarray(4));
      const sh = decodeServerHello(body);
      expect(sh.extensions.map((e) => e.type)).toEqual([EXT_PRE_SHARED_KEY]);
      return [encodeRecord(RecordType.handshake, encodeServerHello({ ...sh, extensions: [] })), ...records.slice(1)];
    };
    const r = run({ resumeTicket: ticket, tamper: strip });
    expect(r.pair.client.state).toBe('failed');
    expect(r.pair.server.state).not.toBe('established');
  });
});
