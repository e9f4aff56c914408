/**
 * Ticket padding (review 13, R13-1; docs/protocol.md 9 "Lengths", 15.6, 15.7 "Privacy"): a
 * ticket carries the client's credential, and crosses the wire twice (in the server's
 * NewSessionTicket record, and in cleartext in the resuming ClientHello). Unpadded, its
 * length gave a passive observer the client credential's exact length and the server id's,
 * defeating the Credential record padding and linking one client's resumptions. Version-2
 * tickets are padded so that a sealed ticket is 378 + |endpoint| + the inner length of the
 * client's Credential record: they show the client's bucket, as a full handshake does.
 * Lengths are read off the records as they cross (what a passive observer sees).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { concat, utf8Encode } from '../../src/bytes.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import type { PqmcpError } from '../../src/errors.js';
import { trafficKeys } from '../../src/handshake/key-schedule.js';
import { DEFAULT_TICKET_LIFETIME_SECONDS, ticketPsk, type ServerTicketConfig } from '../../src/handshake/resumption.js';
import { keyFingerprint } from '../../src/identity/fingerprint.js';
import { CipherState, InnerType } from '../../src/record/index.js';
import type { ClientTicket } from '../../src/resumption/client-tickets.js';
import { TicketReplayGuard } from '../../src/resumption/replay.js';
import { openTicket, sealTicket, sealedTicketLength, type TicketContents } from '../../src/resumption/ticket.js';
import { TicketKeys } from '../../src/resumption/ticket-keys.js';
import { aeadFor } from '../../src/session/options.js';
import type { SessionEvent } from '../../src/session/session.js';
import { encodeNewSessionTicket } from '../../src/wire/resumption.js';
import { Writer } from '../../src/wire/writer.js';
import { makeAgent, makeIssuer, trustFor, type Issuer, type TestAgent } from '../helpers/identities.js';
import { createPair, deliver, expectEstablished, runPair, text } from '../helpers/pair.js';

const native = createNativeBackend();
const NOW = Date.UTC(2026, 5, 1) / 1000;
const WINDOW = { notBefore: NOW - 3600, notAfter: NOW + 30 * 86400 };
const ENDPOINT = '/mcp';

let issuer: Issuer;
let server: TestAgent;
let keys: TicketKeys;

beforeAll(() => {
  issuer = makeIssuer(native, 'issuer://ticket-padding');
  server = makeAgent(native, issuer, 'agent://acme/server', WINDOW);
  keys = TicketKeys.generate(native, NOW * 1000);
});

/** The inner plaintext length of the Credential record carrying `credentialLength` bytes (section 3.2): framing 6 + type 1, to 1024. */
const credentialInner = (credentialLength: number) => Math.ceil((credentialLength + 7) / 1024) * 1024;

/**
 * A full handshake (or a resumption with `resumeTicket`) of `client` to `to`, one message
 * from the client; `tickets` overrides the server's ticket settings. `secrets`: the server's
 * key log.
 */
function connect(client: TestAgent, options: { to?: TestAgent; resumeTicket?: ClientTicket; tickets?: Partial<ServerTicketConfig> } = {}) {
  const to = options.to ?? server;
  const refusals: PqmcpError[] = [];
  const secrets = new Map<string, Uint8Array>();
  const pair = runPair(
    createPair(
      { backend: native, identity: client.local, trust: trustFor(issuer), now: () => NOW * 1000, expectedPeerId: to.agentId, ...(options.resumeTicket ? { resumeTicket: options.resumeTicket } : {}) },
      {
        backend: native,
        identity: to.local,
        trust: trustFor(issuer),
        now: () => NOW * 1000,
        keyLog: (label, secret) => void secrets.set(label, secret),
        tickets: { keys, replay: new TicketReplayGuard(), endpoint: ENDPOINT, onRefused: (e) => refusals.push(e), ...options.tickets },
      },
    ),
    { clientMessages: [text('{"jsonrpc":"2.0","id":1,"method":"ping"}')] },
  );
  expectEstablished(pair);
  const tickets = pair.clientEvents.flatMap((e: SessionEvent) => (e.type === 'ticket' ? [e.ticket] : []));
  return { pair, tickets, refusals, resumed: pair.client.result!.resumed, secrets };
}

/**
 * The ticket a server before this revision issued for `r`'s session even when it could not
 * be used (none is issued now): sealed as issueTickets did, with the session's PSK for nonce
 * 0. As the ClientTicket a client kept, and as the NewSessionTicket record that carried it
 * (the server's first record under its application keys: `r`'s server must have sent none).
 */
function ticketAsIssuedBefore(r: ReturnType<typeof connect>, client: TestAgent): { ticket: ClientTicket; record: Uint8Array } {
  const suite = r.pair.server.result!.suite;
  const nonce = Uint8Array.of(0);
  const psk = ticketPsk(native, r.secrets.get('resumption_master_secret')!, nonce);
  const expiresAt = NOW + DEFAULT_TICKET_LIFETIME_SECONDS;
  const contents = { suite, authTime: NOW, expiresAt, psk, endpoint: ENDPOINT, serverAgentId: server.agentId, serverCredentialHash: native.sha256(server.credential.encoded), clientCredential: client.credential.encoded };
  const sealed = sealTicket(native, keys, contents);
  const { key, iv } = trafficKeys(native, r.secrets.get('s_ap_traffic_0')!);
  const record = new CipherState(native, aeadFor(suite), key, iv).seal(InnerType.handshake, encodeNewSessionTicket({ lifetime: expiresAt - NOW, nonce, ticket: sealed, extensions: [] }));
  const ticket: ClientTicket = { ticket: sealed, psk, suite, expiresAt, serverCredential: server.credential.encoded, clientCredentialHash: native.sha256(client.credential.encoded) };
  return { ticket, record };
}

/** An agent whose credential is exactly `length` bytes (attributes of up to 1024 bytes fill it up). */
function agentOfLength(agentId: string, length: number): TestAgent {
  const attributes = (fill: number, less = 0) => Object.fromEntries(Array.from({ length: Math.ceil(fill / 1024) }, (_, i) => [`p${i}`, 'x'.repeat(Math.min(1024, fill - i * 1024) - (i === 0 ? less : 0))]));
  const make = (attrs: Record<string, string>) => makeAgent(native, issuer, agentId, { ...WINDOW, attributes: attrs });
  const fill = length - make({}).credential.encoded.length;
  // Each attribute adds its key and two lengths (under 8 bytes): start short, then fill the gap.
  const less = 8 * Math.ceil(fill / 1024);
  const agent = make(attributes(fill, less - (length - make(attributes(fill, less)).credential.encoded.length)));
  expect(agent.credential.encoded.length).toBe(length);
  return agent;
}

/**
 * TicketPlaintext as docs/protocol.md 15.6 writes it (version 3, with `padding`), or as the
 * versions before it did: 2 (the server's key fingerprint where 3 has its credential's hash)
 * and 1 (2 without `padding`). `serverField` is those 32 bytes (default: the contents' hash).
 */
function ticketPlaintext(t: TicketContents, version: 1 | 2 | 3, padding?: Uint8Array, serverField = t.serverCredentialHash): Uint8Array {
  const w = new Writer().u8(version).u16(t.suite).u64(t.authTime).u64(t.expiresAt).bytes(t.psk);
  w.vector(2, utf8Encode(t.endpoint)).vector(1, utf8Encode(t.serverAgentId)).bytes(serverField).vector(2, t.clientCredential);
  if (version !== 1) w.vector(2, padding!);
  return w.finish();
}

/** The zero padding of `issued` (sealed: key id, salt, plaintext, tag), given its contents. */
function paddingOf(issued: ClientTicket, contents: TicketContents): Uint8Array {
  return new Uint8Array(issued.ticket.length - 40 - ticketPlaintext(contents, 3, new Uint8Array(0)).length);
}

/** Seal a plaintext under the current ticket key with raw primitives (section 15.6's SealedTicket). */
function sealRaw(plaintext: Uint8Array): Uint8Array {
  const { id, key } = keys.current;
  const salt = native.randomBytes(16);
  const k = native.hkdfExpand(key, concat(utf8Encode('pqmcp1 ticket'), salt), 32);
  const aad = concat(id, salt);
  return concat(aad, native.aead('chacha20-poly1305', k).seal(new Uint8Array(12), plaintext, aad));
}

/**
 * `ticket` with its sealed bytes replaced by `plaintext` sealed afresh (a new salt: a new ticket
 * for anti-replay), and its own copy of the PSK: the handshake wipes the PSK of the ticket it
 * offers (R13-5), and one issued ticket is the base of several here.
 */
const withPlaintext = (ticket: ClientTicket, plaintext: Uint8Array): ClientTicket => ({ ...ticket, psk: ticket.psk.slice(), ticket: sealRaw(plaintext) });

describe('ticket padding: what a passive observer sees of a ticket (R13-1)', () => {
  it('two clients whose credentials share a Credential bucket: one Credential, NewSessionTicket and resuming ClientHello length', () => {
    // Same issuer, same claims; ids 10 bytes apart: one 1024-byte Credential bucket.
    const alice = makeAgent(native, issuer, 'agent://acme/a', WINDOW);
    const bob = makeAgent(native, issuer, 'agent://acme/abcdefghijk', WINDOW);
    expect(bob.credential.encoded.length - alice.credential.encoded.length).toBe(10);
    const [a, b] = [connect(alice), connect(bob)];
    // c2s: ClientHello, Credential, ...; s2c: ServerHello, Credential, CredentialVerify, Finished, NewSessionTicket.
    expect(a.pair.wire.c2s[1]!.length).toBe(b.pair.wire.c2s[1]!.length);
    expect(a.pair.wire.s2c).toHaveLength(5);
    expect(b.pair.wire.s2c).toHaveLength(5);
    expect(a.pair.wire.s2c[4]!.length, 'NewSessionTicket record').toBe(b.pair.wire.s2c[4]!.length);
    const [ra, rb] = [connect(alice, { resumeTicket: a.tickets[0]! }), connect(bob, { resumeTicket: b.tickets[0]! })];
    expect([ra.resumed, rb.resumed]).toEqual([true, true]);
    expect(ra.pair.wire.c2s[0]!.length, 'resuming ClientHello (cleartext)').toBe(rb.pair.wire.c2s[0]!.length);
    // A resumed session's NewSessionTicket (its 3rd record: ServerHello, Finished, ticket) too.
    expect(ra.pair.wire.s2c[2]!.length).toBe(rb.pair.wire.s2c[2]!.length);
  });

  it("the server id's length does not show either: one client, two servers with ids 40 bytes apart", () => {
    const client = makeAgent(native, issuer, 'agent://acme/client', WINDOW);
    const short = makeAgent(native, issuer, 'agent://acme/s', WINDOW);
    const long = makeAgent(native, issuer, `agent://acme/s${'x'.repeat(40)}`, WINDOW);
    const [a, b] = [connect(client, { to: short }), connect(client, { to: long })];
    expect(a.pair.wire.s2c[1]!.length, "the servers' Credential records").toBe(b.pair.wire.s2c[1]!.length);
    expect(a.tickets[0]!.ticket.length).toBe(b.tickets[0]!.ticket.length);
    expect(a.pair.wire.s2c[4]!.length).toBe(b.pair.wire.s2c[4]!.length);
  });

  it("a sealed ticket is 378 + |endpoint| + the client's Credential record inner length, on both sides of each bucket boundary, for any server id", () => {
    const contents = (credentialLength: number, serverAgentId: string, endpoint: string): TicketContents => ({
      suite: 1,
      authTime: NOW,
      expiresAt: NOW + 3600,
      psk: new Uint8Array(32),
      endpoint,
      serverAgentId,
      serverCredentialHash: new Uint8Array(32),
      clientCredential: new Uint8Array(credentialLength).fill(7),
    });
    const ids = ['agent://s', `agent://${'s'.repeat(100)}`, `agent://${'s'.repeat(247)}`];
    for (const endpoint of ['', ENDPOINT, `//tools.example:8443/${'p'.repeat(300)}`]) {
      for (const length of [1, 1016, 1017, 1018, 5000, 5113, 5114, 6137, 6138, 16377, 16378, 16384]) {
        for (const id of ids) {
          const sealed = sealTicket(native, keys, contents(length, id, endpoint));
          expect(sealed.length, `credential ${length}, server id ${id.length}, endpoint ${endpoint.length}`).toBe(378 + utf8Encode(endpoint).length + credentialInner(length));
          // Known before sealing (a server withholds a ticket that could not be used).
          expect(sealedTicketLength(endpoint, length)).toBe(sealed.length);
          // It opens to what was sealed.
          const opened = openTicket(native, keys, sealed).contents;
          expect(opened.clientCredential.length === length && opened.clientCredential.every((b) => b === 7)).toBe(true);
          expect(opened.serverAgentId).toBe(id);
          expect(opened.endpoint).toBe(endpoint);
        }
      }
    }
  });
});

describe('ticket versions', () => {
  it("names the server's credential: the hash of the one it presented, which the client verified (review 19, R19-1)", () => {
    const client = makeAgent(native, issuer, 'agent://acme/v3-client', WINDOW);
    const issued = connect(client).tickets[0]!;
    const contents = openTicket(native, keys, issued.ticket).contents;
    expect(Buffer.from(contents.serverCredentialHash).equals(Buffer.from(native.sha256(server.credential.encoded)))).toBe(true);
    expect(Buffer.from(contents.serverCredentialHash).equals(Buffer.from(keyFingerprint(native, server.keyPair.publicKey)))).toBe(false);
  });

  it('tickets of versions 1 and 2 (they named the server key, not its credential) are refused (ERR_TICKET_INVALID): a full handshake, and a version-3 ticket after it', () => {
    const client = makeAgent(native, issuer, 'agent://acme/v1-client', WINDOW);
    const issued = connect(client).tickets[0]!;
    const contents = openTicket(native, keys, issued.ticket).contents;
    const fingerprint = keyFingerprint(native, server.keyPair.publicKey);
    // Control: the same fields as version 3, sealed here, resume.
    expect(connect(client, { resumeTicket: withPlaintext(issued, ticketPlaintext(contents, 3, paddingOf(issued, contents))) }).resumed).toBe(true);
    for (const old of [ticketPlaintext(contents, 1, undefined, fingerprint), ticketPlaintext(contents, 2, paddingOf(issued, contents), fingerprint)]) {
      const r = connect(client, { resumeTicket: withPlaintext(issued, old) });
      expect(r.resumed).toBe(false);
      expect(r.refusals.map((e) => e.code)).toEqual(['ERR_TICKET_INVALID']);
      expect(r.pair.server.result!.peer.agentId).toBe(client.agentId);
      expect(r.tickets[0]!.ticket.length).toBe(378 + ENDPOINT.length + credentialInner(client.credential.encoded.length));
      expect(openTicket(native, keys, r.tickets[0]!.ticket).contents.serverCredentialHash).toEqual(native.sha256(server.credential.encoded));
    }
  });

  it('a ticket whose padding is not all zeros, or another version, is refused (ERR_TICKET_INVALID, full handshake)', () => {
    const client = makeAgent(native, issuer, 'agent://acme/v2-client', WINDOW);
    const issued = connect(client).tickets[0]!;
    const contents = openTicket(native, keys, issued.ticket).contents;
    const zeros = paddingOf(issued, contents);
    const padLength = zeros.length;
    // Control: the same plaintext with zero padding, sealed here, resumes.
    expect(connect(client, { resumeTicket: withPlaintext(issued, ticketPlaintext(contents, 3, zeros)) }).resumed).toBe(true);
    for (const at of [0, padLength - 1]) {
      const padding = new Uint8Array(padLength);
      padding[at] = 1;
      const r = connect(client, { resumeTicket: withPlaintext(issued, ticketPlaintext(contents, 3, padding)) });
      expect(r.resumed).toBe(false);
      expect(r.refusals.map((e) => e.code)).toEqual(['ERR_TICKET_INVALID']);
    }
    const v4 = ticketPlaintext(contents, 3, zeros);
    v4[0] = 4;
    const r = connect(client, { resumeTicket: withPlaintext(issued, v4) });
    expect(r.refusals.map((e) => e.code)).toEqual(['ERR_TICKET_INVALID']);
  });
});

describe('ticket padding and the size limits', () => {
  it('a client whose padded ticket would not fit one 8,192-byte ClientHello gets no ticket (withheld), and does not offer one issued before', () => {
    // 6,137 bytes: the largest credential whose Credential record is padded to 6144; it gets
    // a ticket and resumes. 6,138 bytes (a pqmcp credential with some 700 bytes of id, name
    // and claims) is padded to 7168, and so is its ticket: too long for a ClientHello.
    const fits = agentOfLength('agent://acme/claims-a', 6137);
    const fitting = connect(fits);
    expect(fitting.pair.server.result!.ticketsWithheld).toBeUndefined();
    expect(connect(fits, { resumeTicket: fitting.tickets[0]! }).resumed).toBe(true);
    const client = agentOfLength('agent://acme/claims-b', 6138);
    expect([credentialInner(6137), credentialInner(6138)]).toEqual([6144, 7168]);
    const full = connect(client);
    expect(full.tickets, 'no ticket issued').toEqual([]);
    expect(full.pair.wire.s2c, 'ServerHello, Credential, CredentialVerify, Finished: no NewSessionTicket').toHaveLength(4);
    expect(full.pair.server.result!.ticketsWithheld).toBe('client-hello');
    expect(full.pair.client.state).toBe('established');
    // A ticket a server issued before this revision: the client does not offer it.
    const { ticket } = ticketAsIssuedBefore(full, client);
    expect(ticket.ticket.length).toBe(378 + ENDPOINT.length + 7168);
    const r = connect(client, { resumeTicket: ticket });
    expect(r.resumed).toBe(false);
    expect(r.refusals, 'nothing offered, nothing refused').toEqual([]);
    expect(r.pair.wire.c2s[0]!.length).toBeLessThanOrEqual(4 + 8192);
  });

  it("the server's estimate is the resuming ClientHello's real length: a ticket that makes it exactly 8,192 bytes is issued and resumes (and so does its successor), one byte more is withheld", () => {
    const client = makeAgent(native, issuer, 'agent://acme/boundary', WINDOW);
    const probe = connect(client);
    const resumed = connect(client, { resumeTicket: probe.tickets[0]! });
    expect(resumed.resumed).toBe(true);
    // The record body is the framed ClientHello. Each byte of the endpoint the server binds
    // (its tickets.endpoint: this client names none) is one more byte of ticket, and of it.
    const fill = 8192 - (resumed.pair.wire.c2s[0]!.length - 4);
    expect(fill).toBeGreaterThan(0);
    const endpoint = (extra: number) => ENDPOINT + 'x'.repeat(extra);
    const exact = connect(client, { tickets: { endpoint: endpoint(fill) } });
    expect(exact.tickets).toHaveLength(1);
    expect(exact.pair.server.result!.ticketsWithheld).toBeUndefined();
    const r = connect(client, { resumeTicket: exact.tickets[0]!, tickets: { endpoint: endpoint(fill) } });
    expect(r.resumed).toBe(true);
    expect(r.pair.wire.c2s[0]!.length, 'the resuming ClientHello record').toBe(4 + 8192);
    // The resumed session's ClientHello carried a ticket: the estimate replaces it, and its
    // successor (one length for every ticket) is issued and kept too.
    expect(r.tickets.map((t) => t.ticket.length)).toEqual([exact.tickets[0]!.ticket.length]);
    expect(connect(client, { resumeTicket: r.tickets[0]!, tickets: { endpoint: endpoint(fill) } }).pair.wire.c2s[0]!.length).toBe(4 + 8192);
    const over = connect(client, { tickets: { endpoint: endpoint(fill + 1) } });
    expect(over.tickets).toEqual([]);
    expect(over.pair.wire.s2c, 'no NewSessionTicket sent').toHaveLength(4);
    expect(over.pair.server.result!.ticketsWithheld).toBe('client-hello');
  });

  it("a server issues no ticket longer than its own maxTicketLength (it would refuse it unopened); at that length it issues one, which resumes", () => {
    const client = makeAgent(native, issuer, 'agent://acme/max-length', WINDOW);
    const length = 378 + ENDPOINT.length + credentialInner(client.credential.encoded.length);
    const low = connect(client, { tickets: { maxTicketLength: length - 1 } });
    expect(low.tickets).toEqual([]);
    expect(low.pair.wire.s2c, 'no NewSessionTicket sent').toHaveLength(4);
    expect(low.pair.server.result!.ticketsWithheld).toBe('max-ticket-length');
    expect(low.pair.client.state).toBe('established');
    const at = connect(client, { tickets: { maxTicketLength: length } });
    expect(at.tickets.map((t) => t.ticket.length)).toEqual([length]);
    const r = connect(client, { resumeTicket: at.tickets[0]!, tickets: { maxTicketLength: length } });
    expect(r.refusals).toEqual([]);
    expect(r.resumed).toBe(true);
  });

  it("a ticket that would already be expired is not issued, and the server says so ('expired'): a client credential past its notAfter but within the clock skew", () => {
    // Accepted: not_after + skew (60 s) >= now. The ticket would expire at not_after, before now.
    const late = makeAgent(native, issuer, 'agent://acme/late', { notBefore: NOW - 3600, notAfter: NOW - 30 });
    const r = connect(late);
    expect(r.pair.client.state).toBe('established');
    expect(r.tickets).toEqual([]);
    expect(r.pair.wire.s2c, 'no NewSessionTicket sent').toHaveLength(4);
    expect(r.pair.server.result!.ticketsWithheld).toBe('expired');
    // At its notAfter + 1 s it gets one (lifetime 1 s), as every ticket that can still be used.
    const edge = connect(makeAgent(native, issuer, 'agent://acme/edge', { notBefore: NOW - 3600, notAfter: NOW + 1 }));
    expect(edge.tickets.map((t) => t.expiresAt)).toEqual([NOW + 1]);
    expect(edge.pair.server.result!.ticketsWithheld).toBeUndefined();
  });

  it('a client keeps no ticket it could never offer in its ClientHello (as a server before this revision sent them); one that fits it keeps', () => {
    // The servers here send no ticket of their own (ticketsPerSession 0): the record made
    // below is their first under their application keys.
    for (const [length, kept] of [[6137, 1], [6138, 0]] as const) {
      const client = agentOfLength(`agent://acme/kept-${length}`, length);
      const r = connect(client, { tickets: { ticketsPerSession: 0 } });
      const { record } = ticketAsIssuedBefore(r, client);
      const { events } = deliver(r.pair, 's2c', [record]);
      expect(events.filter((e) => e.type === 'ticket'), `credential ${length}`).toHaveLength(kept);
      expect(events.filter((e) => e.type !== 'ticket')).toEqual([]);
      expect(r.pair.client.state).toBe('established');
    }
  });

  it('a credential of 16,380 bytes (bucket 17408): the session completes and no ticket is sent (it would pass the 17,408-byte NewSessionTicket bound)', () => {
    const client = agentOfLength('agent://acme/huge', 16380);
    const r = connect(client);
    expect(r.tickets).toEqual([]);
    expect(r.pair.wire.s2c).toHaveLength(4);
    expect(r.pair.server.result!.ticketsWithheld).toBe('client-hello');
    expect(r.pair.client.state).toBe('established');
  });
});
