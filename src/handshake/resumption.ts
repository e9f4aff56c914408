/**
 * Resumption inside the handshake (docs/protocol.md section 15): the PSK key schedule and
 * binder, the server's ticket checks, ticket issuance, and the client's handling of
 * NewSessionTicket. The state machines in handshake.ts call these; nothing here does I/O.
 *
 *   early_secret     = HKDF-Extract(salt = SHA-256("PQMCP/1"), IKM = psk)
 *   binder_key       = Derive-Secret(early_secret, "res binder", "")
 *   binder           = HMAC-SHA256(HKDF-Expand-Label(binder_key, "finished", "", 32),
 *                                  SHA-256(ClientHello with the binder zeroed))
 *   handshake_secret = HKDF-Extract(salt = Derive-Secret(early_secret, "derived", ""), IKM = xwing_shared_secret)
 *   (then as a full handshake)
 *   res_master       = Derive-Secret(master_secret, "res master", CH..client Finished)
 *   psk (per ticket) = HKDF-Expand-Label(res_master, "resumption", ticket_nonce, 32)
 *
 * Sharp edges:
 * - The X-Wing exchange is fresh in every resumed handshake: the PSK alone never makes a
 *   traffic key, so a stolen ticket key or PSK does not expose recorded sessions' traffic
 *   (forward secrecy against a passive attacker), and a quantum attacker needs X-Wing
 *   broken as for a full handshake. An ACTIVE holder of the ticket key or PSK is the server
 *   to a resuming client (a resumed server proves itself by a PSK Finished only):
 *   docs/protocol.md 15.7.
 * - The binder is checked before anything else is done with the ticket's contents: a
 *   wrong binder is fatal (BadBinderError), every other refusal falls back to a full
 *   handshake (the ticket is ignored; `onRefused` reports why).
 * - Tickets are single use (anti-replay) and never outlive auth_time + lifetime nor either
 *   original credential; both credentials are re-checked against the current trust stores
 *   (issuer, revocation, pins, expected peer) at every resumption.
 * - A ticket that could never be offered is neither issued nor kept: one longer than the
 *   server's own maxTicketLength, or than what fits a ClientHello like this session's in one
 *   plaintext record (longestOfferableTicket). A ticket carries its client's credential
 *   padded to its bucket, so a large client credential gets none (protocol.md 15.5).
 */
import { equalBytes } from '../bytes.js';
import type { CryptoBackend } from '../crypto/types.js';
import {
  BadBinderError,
  InternalError,
  TicketEndpointError,
  TicketExpiredError,
  TicketInvalidError,
  TicketMismatchError,
  TicketReplayFullError,
  TicketReplayedError,
  UnexpectedMessageError,
  toPqmcpError,
} from '../errors.js';
import type { PqmcpError } from '../errors.js';
import { decodeCredential } from '../identity/credential.js';
import type { TrustStore, VerifiedPeer, VerifyCredentialOptions } from '../identity/trust.js';
import type { ClientTicket } from '../resumption/client-tickets.js';
import type { TicketReplayGuard } from '../resumption/replay.js';
import { MAX_PLAINTEXT_HANDSHAKE } from '../record/constants.js';
import { openTicket, sealTicket, sealedTicketLength, type TicketContents } from '../resumption/ticket.js';
import type { TicketKeys } from '../resumption/ticket-keys.js';
import { MsgType, unframeHandshake } from '../wire/messages.js';
import type { Extension } from '../wire/messages.js';
import { BINDER_LENGTH, MAX_TICKET_LIFETIME_SECONDS, decodeNewSessionTicket, decodePskOffer, encodeNewSessionTicket, encodePskOffer, pskOfferExtensionLength, zeroBinder } from '../wire/resumption.js';
import { deriveSecret, emptyHash, expandLabel, finishedMac, protocolSalt } from './key-schedule.js';

export const DEFAULT_TICKET_LIFETIME_SECONDS = 12 * 3600;
/**
 * Offered tickets longer than this are refused unopened (ERR_TICKET_INVALID, full handshake).
 * A ticket is 378 bytes plus the endpoint plus its client's Credential record padded to
 * 1024 (protocol.md 15.6): ~6.5 KB for a pqmcp ML-DSA-65 + Ed25519 credential. Over the
 * wire a ClientHello is one plaintext record (<= 8192 bytes), so this default changes
 * nothing there; it bounds what a direct caller of the handshake can make us open (the
 * decoder allows 17 KB), and a server may set it lower, to the sizes its clients'
 * credentials give (review F2). A server issues no ticket above it (issueTickets).
 */
export const DEFAULT_MAX_TICKET_LENGTH = 8 * 1024;

/** A server's resumption settings (the listener builds one per connection). */
export interface ServerTicketConfig {
  /** Keys tickets are sealed under (current) and opened with (all). */
  keys: TicketKeys;
  /** The anti-replay record, shared by every connection of this server. */
  replay: TicketReplayGuard;
  /**
   * The endpoint this connection was made on (tickets bind it). The server handshake
   * replaces it with the endpoint the client named in its ClientHello once that was checked
   * against `acceptEndpoints` (tighter: it carries the authority).
   */
  endpoint: string;
  /** Ticket lifetime from the full handshake, seconds (1..604800). Default 12 h. */
  lifetimeSeconds?: number;
  /** Tickets sent after each handshake. Default 1; 0 issues none (but still accepts). */
  ticketsPerSession?: number;
  /** A ticket was refused and a full handshake follows (never for a bad binder, which is fatal). */
  onRefused?: (error: PqmcpError) => void;
  /** Offered tickets above this many bytes are refused unopened, and none is issued. Default DEFAULT_MAX_TICKET_LENGTH (8 KiB). */
  maxTicketLength?: number;
  /**
   * Whether the credential this session presented is still the one the server presents;
   * false (renewed while the handshake ran): the session gets no ticket ('credential-renewed'),
   * since its ticket would name the credential before and be refused at every offer.
   */
  stillPresented?: () => boolean;
}

/**
 * The longest ticket a resuming ClientHello can carry in one plaintext record (8,192 bytes),
 * given that ClientHello's length without its pre_shared_key extension: the client offers
 * a ticket only within it (ClientHandshake.start), so neither side keeps a longer one.
 */
export function longestOfferableTicket(helloWithoutTicket: number): number {
  return MAX_PLAINTEXT_HANDSHAKE - helloWithoutTicket - pskOfferExtensionLength(0);
}

export function earlySecret(backend: CryptoBackend, psk: Uint8Array): Uint8Array {
  return backend.hkdfExtract(protocolSalt(backend), psk);
}

/** The salt of HKDF-Extract for the handshake secret when a PSK is in use. */
export function pskHandshakeSalt(backend: CryptoBackend, early: Uint8Array): Uint8Array {
  return deriveSecret(backend, early, 'derived', emptyHash(backend));
}

export function computeBinder(backend: CryptoBackend, early: Uint8Array, zeroedClientHello: Uint8Array): Uint8Array {
  const binderKey = deriveSecret(backend, early, 'res binder', emptyHash(backend));
  const mac = finishedMac(backend, binderKey, backend.sha256(zeroedClientHello));
  binderKey.fill(0);
  return mac;
}

export function resumptionMasterSecret(backend: CryptoBackend, master: Uint8Array, clientFinishedHash: Uint8Array): Uint8Array {
  return deriveSecret(backend, master, 'res master', clientFinishedHash);
}

export function ticketPsk(backend: CryptoBackend, resumptionMaster: Uint8Array, nonce: Uint8Array): Uint8Array {
  return expandLabel(backend, resumptionMaster, 'resumption', nonce, 32);
}

// --- client --------------------------------------------------------------------------------

/** A ticket the client will offer, with the server identity it stands for. */
export interface ClientOffer {
  ticket: ClientTicket;
  serverPeer: VerifiedPeer;
}

/**
 * Tickets this process made in receiveNewSessionTicket, each with SHA-256 of the server
 * credential it carried then: a credential this client verified (a full handshake) or
 * re-checked from such a ticket (a resumed one), and kept in memory since. Only those are
 * re-checked without the issuer's signature (TrustStore.recheckCredential's precondition);
 * any other ticket, one read back from a file (ticketFromJson) or a custom TicketStore, is
 * a new object, and its server credential is verified in full (review 13, R13-2). The
 * hash also catches a kept ticket whose serverCredential was replaced since.
 */
const RECEIVED_TICKETS = new WeakMap<ClientTicket, Uint8Array>();

/**
 * Whether `ticket` may be offered now: unexpired, for this suite list and this client
 * credential, and the server's credential still passes this client's trust store (revocation,
 * issuer, pins, expected id; and the issuer's signature, unless this process received the
 * ticket itself: RECEIVED_TICKETS). Undefined when not: the client then runs a full
 * handshake (docs/protocol.md 15.5).
 */
export function prepareOffer(
  backend: CryptoBackend,
  trust: TrustStore,
  ticket: ClientTicket,
  ownCredential: Uint8Array,
  offeredSuites: readonly number[],
  verify: VerifyCredentialOptions,
  nowMs: number,
): ClientOffer | undefined {
  if (ticket.expiresAt * 1000 <= nowMs) return undefined;
  // Offered before: its PSK was wiped (spendTicket). Offering it would end in a bad binder.
  if (ticketSpent(ticket)) return undefined;
  if (!offeredSuites.includes(ticket.suite)) return undefined;
  if (!equalBytes(ticket.clientCredentialHash, backend.sha256(ownCredential))) return undefined;
  try {
    const kept = RECEIVED_TICKETS.get(ticket);
    const received = kept !== undefined && equalBytes(kept, backend.sha256(ticket.serverCredential));
    const serverPeer = received ? trust.recheckCredential(backend, ticket.serverCredential, verify) : trust.verifyCredential(backend, ticket.serverCredential, verify);
    return { ticket, serverPeer };
  } catch {
    return undefined;
  }
}

/** The pre_shared_key extension, binder filled in over `encode`'s ClientHello with it zeroed. */
export function bindOffer(backend: CryptoBackend, offer: ClientOffer, encode: (psk: Extension) => Uint8Array): { hello: Uint8Array; early: Uint8Array } {
  const early = earlySecret(backend, offer.ticket.psk);
  const zeroed = encode(encodePskOffer({ ticket: offer.ticket.ticket, binder: new Uint8Array(BINDER_LENGTH) }));
  const binder = computeBinder(backend, early, zeroed);
  return { hello: encode(encodePskOffer({ ticket: offer.ticket.ticket, binder })), early };
}

/**
 * The ticket went out in a ClientHello, and its early secret (all the handshake needs of
 * the PSK) is derived: wipe its PSK (review 13, R13-5). The handshake consumes the ticket
 * it offers; a second handshake given the same object does not offer it (prepareOffer:
 * an all-zero PSK) and runs a full handshake instead.
 */
export function spendTicket(ticket: ClientTicket): void {
  ticket.psk.fill(0);
}

/** Whether a handshake offered `ticket` already (spendTicket wiped its PSK): it is never offered again. */
export function ticketSpent(ticket: ClientTicket): boolean {
  return ticket.psk.every((b) => b === 0);
}

/**
 * A NewSessionTicket received after the handshake: the ClientTicket to keep, or undefined
 * when the server says not to keep it (lifetime 0) or when it is longer than `longestTicket`
 * (longestOfferableTicket of this client's ClientHello: it could never be offered; a server
 * that does not follow protocol.md 15.5's SHOULD, pqmcp's before it did, sends such tickets). Anything but NewSessionTicket is
 * UnexpectedMessageError; a malformed one DecodeError.
 */
export function receiveNewSessionTicket(
  backend: CryptoBackend,
  resumptionMaster: Uint8Array,
  framed: Uint8Array,
  serverPeer: VerifiedPeer,
  suite: number,
  ownCredential: Uint8Array,
  nowMs: number,
  longestTicket: number,
): ClientTicket | undefined {
  const { type, body } = unframeHandshake(framed);
  if (type !== MsgType.newSessionTicket) throw new UnexpectedMessageError('handshake message after the handshake completed');
  const nst = decodeNewSessionTicket(body);
  if (nst.lifetime === 0 || nst.ticket.length > longestTicket) return undefined;
  const lifetime = Math.min(nst.lifetime, MAX_TICKET_LIFETIME_SECONDS);
  const expiresAt = Math.min(Math.floor(nowMs / 1000) + lifetime, serverPeer.notAfter);
  const ticket: ClientTicket = {
    ticket: new Uint8Array(nst.ticket),
    psk: ticketPsk(backend, resumptionMaster, nst.nonce),
    suite,
    expiresAt,
    serverCredential: serverPeer.credential.encoded,
    clientCredentialHash: backend.sha256(ownCredential),
  };
  RECEIVED_TICKETS.set(ticket, backend.sha256(ticket.serverCredential));
  return ticket;
}

// --- server --------------------------------------------------------------------------------

export interface AcceptedTicket {
  contents: TicketContents;
  /** The client, re-checked against the server's trust store now. */
  peer: VerifiedPeer;
  early: Uint8Array;
}

/** What tickets bind of the server's own identity: its credential, decoded and hashed. */
export interface OwnTicketIdentity {
  agentId: string;
  notAfter: number;
  /** SHA-256 of the credential (encoded) the server presents. */
  credentialHash: Uint8Array;
}

export interface ServerContext {
  backend: CryptoBackend;
  trust: TrustStore;
  tickets: ServerTicketConfig;
  /**
   * The server's own identity as tickets bind it. A function: it is computed only once a
   * ticket opened or is issued, and the handshake computes it once for both (ownTicketIdentity).
   */
  own: () => OwnTicketIdentity;
  verify: VerifyCredentialOptions;
  nowMs: number;
}

/** OwnTicketIdentity of the credential (encoded bytes) a server presents. */
export function ownTicketIdentity(backend: CryptoBackend, ownCredential: Uint8Array): OwnTicketIdentity {
  const { agentId, notAfter } = decodeCredential(ownCredential);
  return { agentId, notAfter, credentialHash: backend.sha256(ownCredential) };
}

/**
 * Check an offered ticket (protocol.md 15.4), in order: open it (unknown key, invalid),
 * the binder (fatal), expiry, the server identity, the endpoint, the suite, the client's
 * credential against the trust store now, then single use. Returns the accepted ticket, or
 * undefined after reporting the refusal to `onRefused`. Throws only BadBinderError. On
 * every path but acceptance, the opened ticket's PSK and the early secret are wiped here
 * (review 13, R13-5); an accepted ticket's are the caller's to wipe once used.
 */
export function acceptTicket(
  ctx: ServerContext,
  pskExtension: Extension,
  framedClientHello: Uint8Array,
  offeredSuites: readonly number[],
  acceptedSuites: readonly number[],
): AcceptedTicket | undefined {
  const { backend, tickets } = ctx;
  let early: Uint8Array | undefined;
  let psk: Uint8Array | undefined;
  let accepted = false;
  try {
    // A malformed extension is a ticket that does not open (15.4 step 1): ERR_TICKET_INVALID.
    const offer = tryDecode(() => decodePskOffer(pskExtension.data));
    if (offer.ticket.length > (tickets.maxTicketLength ?? DEFAULT_MAX_TICKET_LENGTH)) throw new TicketInvalidError();
    const opened = openTicket(backend, tickets.keys, offer.ticket);
    const t = opened.contents;
    psk = t.psk;
    early = earlySecret(backend, t.psk);
    if (offer.binder.buffer !== framedClientHello.buffer) throw new InternalError('binder is not a view of the ClientHello');
    const binderOffset = offer.binder.byteOffset - framedClientHello.byteOffset;
    const expected = computeBinder(backend, early, zeroBinder(framedClientHello, binderOffset));
    if (!equalBytes(expected, offer.binder)) throw new BadBinderError();
    if (ctx.nowMs >= t.expiresAt * 1000) throw new TicketExpiredError(t.expiresAt);
    const own = ctx.own();
    if (t.serverAgentId !== own.agentId) throw new TicketMismatchError('server identity');
    // Another credential for this id (renewed, or another key): its client verified the one
    // the ticket names, so a full handshake shows it this one (review 19, R19-1).
    if (!equalBytes(t.serverCredentialHash, own.credentialHash)) throw new TicketMismatchError('server credential');
    if (t.endpoint !== tickets.endpoint) throw new TicketEndpointError();
    if (!offeredSuites.includes(t.suite) || !acceptedSuites.includes(t.suite)) throw new TicketMismatchError('suite');
    const peer = ctx.trust.recheckCredential(backend, t.clientCredential, ctx.verify);
    const verdict = tickets.replay.consume(opened.id, t.expiresAt * 1000, ctx.nowMs, peer.agentId);
    if (verdict === 'replayed') throw new TicketReplayedError();
    if (verdict === 'full') throw new TicketReplayFullError();
    if (verdict === 'quota') throw new TicketReplayFullError('this client agent holds its share of the anti-replay record; resumption refused');
    accepted = true;
    return { contents: t, peer, early };
  } catch (err) {
    if (err instanceof BadBinderError) throw err;
    const error = toPqmcpError(err);
    try {
      tickets.onRefused?.(error);
    } catch {
      // A throwing listener must not break the handshake.
    }
    return undefined;
  } finally {
    // Refused (a bad binder included): neither the PSK nor the early secret is needed again.
    if (!accepted) {
      psk?.fill(0);
      early?.fill(0);
    }
  }
}

function tryDecode<T>(decode: () => T): T {
  try {
    return decode();
  } catch {
    throw new TicketInvalidError();
  }
}

/**
 * Why a session got no ticket although its server issues them (HandshakeResult.ticketsWithheld):
 * its ticket would be longer than the server's own maxTicketLength ('max-ticket-length'), or
 * than a ClientHello like this session's can carry in one record ('client-hello'); or it would
 * already be expired ('expired': a credential of either side at or past its notAfter, accepted
 * within the clock skew, or a resumed session whose original authentication's ticket lifetime
 * has run out); or the server renewed its own credential while this session's handshake ran
 * ('credential-renewed': its client verified the one before, and a ticket would resume under
 * the renewed one).
 */
export type TicketsWithheld = 'max-ticket-length' | 'client-hello' | 'expired' | 'credential-renewed';

/** What issueTickets gives: the NewSessionTicket messages, and why there are none when withheld. */
export interface IssuedTickets {
  messages: Uint8Array[];
  withheld?: TicketsWithheld;
}

/**
 * NewSessionTicket messages for a session that just completed. `authTime` is now for a
 * full handshake and the ticket's for a resumed one, so chained tickets never extend the
 * original authentication. None (`withheld`) when the result would already be expired, or
 * when the ticket could not be used: longer than `longestTicket`
 * (longestOfferableTicket of this session's ClientHello) or than the server's own
 * maxTicketLength. Every ticket of a session has one length (sealedTicketLength), so this
 * is decided once, before any PSK is derived or ticket sealed.
 */
export function issueTickets(
  ctx: ServerContext,
  resumptionMaster: Uint8Array,
  suite: number,
  clientPeer: VerifiedPeer,
  authTime: number,
  random: (n: number) => Uint8Array,
  longestTicket: number,
): IssuedTickets {
  const { backend, tickets } = ctx;
  const count = tickets.ticketsPerSession ?? 1;
  const lifetime = tickets.lifetimeSeconds ?? DEFAULT_TICKET_LIFETIME_SECONDS;
  const nowS = Math.floor(ctx.nowMs / 1000);
  if (count === 0) return { messages: [] };
  if (tickets.stillPresented?.() === false) return { messages: [], withheld: 'credential-renewed' };
  const own = ctx.own();
  const expiresAt = Math.min(authTime + lifetime, clientPeer.notAfter, own.notAfter);
  if (expiresAt <= nowS) return { messages: [], withheld: 'expired' };
  // Both bounds are at most the NewSessionTicket's 17,408 bytes (MAX_TICKET_LENGTH): a
  // client credential near 16 KiB gets no ticket here, rather than one the client would refuse.
  const length = sealedTicketLength(tickets.endpoint, clientPeer.credential.encoded.length);
  if (length > longestTicket) return { messages: [], withheld: 'client-hello' };
  if (length > (tickets.maxTicketLength ?? DEFAULT_MAX_TICKET_LENGTH)) return { messages: [], withheld: 'max-ticket-length' };
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const nonce = Uint8Array.of(i);
    const psk = ticketPsk(backend, resumptionMaster, nonce);
    const sealed = sealTicket(
      backend,
      tickets.keys,
      {
        suite,
        authTime,
        expiresAt,
        psk,
        endpoint: tickets.endpoint,
        serverAgentId: own.agentId,
        serverCredentialHash: own.credentialHash,
        clientCredential: clientPeer.credential.encoded,
      },
      random(16),
    );
    psk.fill(0);
    out.push(encodeNewSessionTicket({ lifetime: expiresAt - nowS, nonce, ticket: sealed, extensions: [] }));
  }
  return { messages: out };
}

/** Check a ServerTicketConfig once (InvalidArgumentError naming the field). */
export { checkTicketConfig } from './resumption-config.js';
