/**
 * Resumption secrets are wiped as soon as they are not needed (review 13, R13-5):
 * - the server wipes an opened ticket's PSK and the early secret on every path: accepted
 *   (once the handshake secret's salt is derived), refused after it opened (expired, wrong
 *   endpoint, replayed: a full handshake follows), and a bad binder (fatal);
 * - the client wipes the PSK of the ticket it offers once the binder and early secret are
 *   derived: the handshake consumes the ticket. The same object given to a second
 *   handshake is not offered (a full handshake, not a fatal bad binder); a ticket the
 *   handshake did not offer keeps its PSK.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import type { PqmcpError } from '../../src/errors.js';
import type { ClientTicket } from '../../src/resumption/client-tickets.js';
import { TicketReplayGuard } from '../../src/resumption/replay.js';
import { TicketKeys } from '../../src/resumption/ticket-keys.js';
import type { SessionEvent } from '../../src/session/session.js';
import { makeAgent, makeIssuer, trustFor, type Issuer, type TestAgent } from '../helpers/identities.js';
import { binderTamper, createPair, errorOf, expectEstablished, runPair, type Tamper } from '../helpers/pair.js';

const base = createNobleBackend();
const NOW = Date.UTC(2026, 5, 1) / 1000;
const at = (s: number) => () => s * 1000;

let issuer: Issuer;
let server: TestAgent;
let client: TestAgent;
let keys: TicketKeys;

beforeAll(() => {
  issuer = makeIssuer(base);
  const window = { notBefore: NOW - 3600, notAfter: NOW + 30 * 86400 };
  server = makeAgent(base, issuer, 'agent://acme/server', window);
  client = makeAgent(base, issuer, 'agent://acme/client', window);
  keys = TicketKeys.generate(base, NOW * 1000);
});

/** Every HKDF-Extract a server makes: its IKM (the array itself and its bytes then) and its output. */
interface Extract {
  ikm: Uint8Array;
  ikmThen: Uint8Array;
  out: Uint8Array;
}

function spying(): { backend: CryptoBackend; extracts: Extract[] } {
  const extracts: Extract[] = [];
  const hkdfExtract = (salt: Uint8Array, ikm: Uint8Array): Uint8Array => {
    const out = base.hkdfExtract(salt, ikm);
    extracts.push({ ikm, ikmThen: ikm.slice(), out });
    return out;
  };
  return { backend: { ...base, hkdfExtract }, extracts };
}

interface Connect {
  resumeTicket?: ClientTicket;
  serverBackend?: CryptoBackend;
  serverNow?: number;
  endpoint?: string;
  replay?: TicketReplayGuard;
  tamper?: Tamper;
}

function connect(opts: Connect = {}) {
  const refused: PqmcpError[] = [];
  const pair = runPair(
    createPair(
      { backend: base, identity: client.local, trust: trustFor(issuer), now: at(NOW), expectedPeerId: server.agentId, ...(opts.resumeTicket ? { resumeTicket: opts.resumeTicket } : {}) },
      {
        backend: opts.serverBackend ?? base,
        identity: server.local,
        trust: trustFor(issuer),
        now: at(opts.serverNow ?? NOW),
        tickets: { keys, replay: opts.replay ?? new TicketReplayGuard(), endpoint: opts.endpoint ?? '/mcp', onRefused: (e) => refused.push(e) },
      },
    ),
    opts.tamper ? { tamper: opts.tamper } : {},
  );
  const tickets = pair.clientEvents.flatMap((e: SessionEvent) => (e.type === 'ticket' ? [e.ticket] : []));
  return { pair, refused, ticket: tickets[0]! };
}

const zero = (b: Uint8Array): boolean => b.every((x) => x === 0);
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Offer `ticket` to a spying server (`opts` say how it refuses it, if it does) and return
 * the server's early-secret extracts: those whose IKM was the ticket's PSK.
 */
function serverSide(ticket: ClientTicket, opts: Omit<Connect, 'resumeTicket' | 'serverBackend'> = {}) {
  const psk = ticket.psk.slice();
  const spy = spying();
  const r = connect({ ...opts, resumeTicket: ticket, serverBackend: spy.backend });
  const early = spy.extracts.filter((e) => same(e.ikmThen, psk));
  expect(early).toHaveLength(1);
  return { r, early: early[0]! };
}

describe('server: an opened ticket leaves no secret behind (R13-5)', () => {
  it('accepted: the PSK copy and the early secret are wiped once used', () => {
    const { r, early } = serverSide(connect().ticket);
    expectEstablished(r.pair);
    expect(r.pair.server.result!.resumed).toBe(true);
    expect(zero(early.ikm)).toBe(true);
    expect(zero(early.out)).toBe(true);
  });

  it.each([
    ['a wrong endpoint', 'ERR_TICKET_ENDPOINT', { endpoint: '/other' }],
    ['expired on the server clock', 'ERR_TICKET_EXPIRED', { serverNow: NOW + 13 * 3600 }],
  ] as const)('refused after it opened (%s): a full handshake, and the PSK and early secret are wiped', (_, code, opts) => {
    const { r, early } = serverSide(connect().ticket, opts);
    expectEstablished(r.pair);
    expect(r.pair.server.result!.resumed).toBe(false);
    expect(r.refused.map((e) => e.code)).toEqual([code]);
    expect(zero(early.ikm), 'the PSK copy').toBe(true);
    expect(zero(early.out), 'the early secret').toBe(true);
  });

  it('replayed (the last check, after the client credential passed): wiped too', () => {
    const replay = new TicketReplayGuard();
    const ticket = connect().ticket;
    const again = { ...ticket, psk: ticket.psk.slice() };
    expect(connect({ resumeTicket: ticket, replay }).pair.server.result!.resumed).toBe(true);
    const { r, early } = serverSide(again, { replay });
    expect(r.refused.map((e) => e.code)).toEqual(['ERR_TICKET_REPLAYED']);
    expect(zero(early.ikm)).toBe(true);
    expect(zero(early.out)).toBe(true);
  });

  it('a bad binder (fatal): the PSK copy and the early secret are wiped before the error leaves', () => {
    const { r, early } = serverSide(connect().ticket, { tamper: binderTamper });
    expect(errorOf(r.pair.serverEvents)?.code).toBe('ERR_BAD_BINDER');
    expect(zero(early.ikm), 'the PSK copy').toBe(true);
    expect(zero(early.out), 'the early secret').toBe(true);
  });
});

describe('client: the handshake consumes the ticket it offers (R13-5)', () => {
  it('resumed: the offered ticket\'s PSK is wiped (the Session keeps no usable copy in its options)', () => {
    const ticket = connect().ticket;
    expect(zero(ticket.psk)).toBe(false);
    const r = connect({ resumeTicket: ticket });
    expectEstablished(r.pair);
    expect(r.pair.client.result!.resumed).toBe(true);
    expect(zero(ticket.psk)).toBe(true);
  });

  it('offered and refused by the server (full handshake): wiped as well; offered again, it is not offered (a full handshake, not a bad binder)', () => {
    const ticket = connect().ticket;
    const refusedOnce = connect({ resumeTicket: ticket, endpoint: '/other' });
    expectEstablished(refusedOnce.pair);
    expect(refusedOnce.refused.map((e) => e.code)).toEqual(['ERR_TICKET_ENDPOINT']);
    expect(zero(ticket.psk)).toBe(true);
    const again = connect({ resumeTicket: ticket });
    expectEstablished(again.pair);
    expect(again.pair.client.result!.resumed).toBe(false);
    expect(again.refused).toEqual([]);
  });

  it('a ticket the handshake does not offer (expired on the client clock) keeps its PSK', () => {
    const ticket = connect().ticket;
    const late = runPair(
      createPair(
        { backend: base, identity: client.local, trust: trustFor(issuer), now: at(ticket.expiresAt), expectedPeerId: server.agentId, resumeTicket: ticket },
        { backend: base, identity: server.local, trust: trustFor(issuer), now: at(ticket.expiresAt), tickets: { keys, replay: new TicketReplayGuard(), endpoint: '/mcp' } },
      ),
    );
    expectEstablished(late);
    expect(late.client.result!.resumed).toBe(false);
    expect(zero(ticket.psk)).toBe(false);
  });
});
