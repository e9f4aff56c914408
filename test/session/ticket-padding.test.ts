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
import type { ClientTicket } from '../../src/resumption/client-tickets.js';
import { TicketReplayGuard } from '../../src/resumption/replay.js';
import { openTicket, sealTicket, type TicketContents } from '../../src/resumption/ticket.js';
import { TicketKeys } from '../../src/resumption/ticket-keys.js';
import type { SessionEvent } from '../../src/session/session.js';
import { Writer } from '../../src/wire/writer.js';
import { makeAgent, makeIssuer, trustFor, type Issuer, type TestAgent } from '../helpers/identities.js';
import { createPair, expectEstablished, runPair, text } from '../helpers/pair.js';

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

/** A full handshake (or a resumption with `resumeTicket`) of `client` to `to`, one message from the client. */
function connect(client: TestAgent, options: { to?: TestAgent; resumeTicket?: ClientTicket } = {}) {
  const to = options.to ?? server;
  const refusals: PqmcpError[] = [];
  const pair = runPair(
    createPair(
      { backend: native, identity: client.local, trust: trustFor(issuer), now: () => NOW * 1000, expectedPeerId: to.agentId, ...(options.resumeTicket ? { resumeTicket: options.resumeTicket } : {}) },
      { backend: native, identity: to.local, trust: trustFor(issuer), now: () => NOW * 1000, tickets: { keys, replay: new TicketReplayGuard(), endpoint: ENDPOINT, onRefused: (e) => refusals.push(e) } },
    ),
    { clientMessages: [text('{"jsonrpc":"2.0","id":1,"method":"ping"}')] },
  );
  expectEstablished(pair);
  const tickets = pair.clientEvents.flatMap((e: SessionEvent) => (e.type === 'ticket' ? [e.ticket] : []));
  return { pair, tickets, refusals, resumed: pair.client.result!.resumed };
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

/** TicketPlaintext as docs/protocol.md 15.6 writes it: version 1 (no padding) or 2 (with `padding`). */
function ticketPlaintext(t: TicketContents, version: 1 | 2, padding?: Uint8Array): Uint8Array {
  const w = new Writer().u8(version).u16(t.suite).u64(t.authTime).u64(t.expiresAt).bytes(t.psk);
  w.vector(2, utf8Encode(t.endpoint)).vector(1, utf8Encode(t.serverAgentId)).bytes(t.serverFingerprint).vector(2, t.clientCredential);
  if (version === 2) w.vector(2, padding!);
  return w.finish();
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
      serverFingerprint: new Uint8Array(32),
      clientCredential: new Uint8Array(credentialLength).fill(7),
    });
    const ids = ['agent://s', `agent://${'s'.repeat(100)}`, `agent://${'s'.repeat(247)}`];
    for (const endpoint of ['', ENDPOINT, `//tools.example:8443/${'p'.repeat(300)}`]) {
      for (const length of [1, 1016, 1017, 1018, 5000, 5113, 5114, 6137, 6138, 16377, 16378, 16384]) {
        for (const id of ids) {
          const sealed = sealTicket(native, keys, contents(length, id, endpoint));
          expect(sealed.length, `credential ${length}, server id ${id.length}, endpoint ${endpoint.length}`).toBe(378 + utf8Encode(endpoint).length + credentialInner(length));
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
  it('a version-1 ticket (unpadded, issued before version 2) still opens and resumes', () => {
    const client = makeAgent(native, issuer, 'agent://acme/v1-client', WINDOW);
    const issued = connect(client).tickets[0]!;
    const contents = openTicket(native, keys, issued.ticket).contents;
    const v1 = withPlaintext(issued, ticketPlaintext(contents, 1));
    expect(v1.ticket.length).toBe(128 + ENDPOINT.length + server.agentId.length + client.credential.encoded.length);
    const r = connect(client, { resumeTicket: v1 });
    expect(r.refusals).toEqual([]);
    expect(r.resumed).toBe(true);
    expect(r.pair.server.result!.peer.agentId).toBe(client.agentId);
    // Its successor is a version-2 ticket.
    expect(r.tickets[0]!.ticket.length).toBe(378 + ENDPOINT.length + credentialInner(client.credential.encoded.length));
  });

  it('a version-2 ticket whose padding is not all zeros, or another version, is refused (ERR_TICKET_INVALID, full handshake)', () => {
    const client = makeAgent(native, issuer, 'agent://acme/v2-client', WINDOW);
    const issued = connect(client).tickets[0]!;
    const contents = openTicket(native, keys, issued.ticket).contents;
    const padLength = 378 + ENDPOINT.length + credentialInner(client.credential.encoded.length) - 40 - (ticketPlaintext(contents, 2, new Uint8Array(0)).length);
    const zeros = new Uint8Array(padLength);
    // Control: the same plaintext with zero padding, sealed here, resumes.
    expect(connect(client, { resumeTicket: withPlaintext(issued, ticketPlaintext(contents, 2, zeros)) }).resumed).toBe(true);
    for (const at of [0, padLength - 1]) {
      const padding = new Uint8Array(padLength);
      padding[at] = 1;
      const r = connect(client, { resumeTicket: withPlaintext(issued, ticketPlaintext(contents, 2, padding)) });
      expect(r.resumed).toBe(false);
      expect(r.refusals.map((e) => e.code)).toEqual(['ERR_TICKET_INVALID']);
    }
    const v3 = ticketPlaintext(contents, 2, zeros);
    v3[0] = 3;
    const r = connect(client, { resumeTicket: withPlaintext(issued, v3) });
    expect(r.refusals.map((e) => e.code)).toEqual(['ERR_TICKET_INVALID']);
  });
});

describe('ticket padding and the size limits', () => {
  it('a client whose padded ticket no longer fits one 8,192-byte ClientHello makes a full handshake (its unpadded version-1 ticket still fitted)', () => {
    // 6,137 bytes: the largest credential whose Credential record is padded to 6144; it
    // resumes. 6,138 bytes (a pqmcp credential with some 700 bytes of id, name and claims)
    // is padded to 7168, and so is its ticket: too long for a ClientHello.
    const fits = agentOfLength('agent://acme/claims-a', 6137);
    expect(connect(fits, { resumeTicket: connect(fits).tickets[0]! }).resumed).toBe(true);
    const client = agentOfLength('agent://acme/claims-b', 6138);
    expect([credentialInner(6137), credentialInner(6138)]).toEqual([6144, 7168]);
    const issued = connect(client).tickets[0]!;
    expect(issued.ticket.length).toBe(378 + ENDPOINT.length + 7168);
    const r = connect(client, { resumeTicket: issued });
    expect(r.resumed).toBe(false);
    expect(r.refusals, 'nothing offered, nothing refused').toEqual([]);
    expect(r.pair.wire.c2s[0]!.length).toBeLessThanOrEqual(4 + 8192);
    // The same ticket in version 1 (unpadded) fits, and resumes.
    const v1 = withPlaintext(issued, ticketPlaintext(openTicket(native, keys, issued.ticket).contents, 1));
    const r1 = connect(client, { resumeTicket: v1 });
    expect(r1.resumed).toBe(true);
    expect(r1.pair.wire.c2s[0]!.length).toBeLessThanOrEqual(4 + 8192);
  });

  it('a credential of 16,380 bytes (bucket 17408): the session completes and no ticket is sent (it would pass the 17,408-byte NewSessionTicket bound)', () => {
    const client = agentOfLength('agent://acme/huge', 16380);
    const r = connect(client);
    expect(r.tickets).toEqual([]);
    expect(r.pair.wire.s2c).toHaveLength(4);
    expect(r.pair.client.state).toBe('established');
  });
});
