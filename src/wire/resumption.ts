/**
 * Resumption on the wire: the `pre_shared_key` hello extensions and NewSessionTicket.
 * Normative text: docs/protocol.md section 15.
 *
 * Sharp edges:
 * - The ticket is opaque to the client: only the server that sealed it (or one sharing its
 *   ticket key) can read it. Its size is bounded here (MAX_TICKET_LENGTH) before anything
 *   else looks at it.
 * - The binder sits at a fixed place (the last 32 bytes of the extension data), so the
 *   binder input "the ClientHello with the binder zeroed" is well defined wherever the
 *   extension sits among the others.
 */
import { DecodeError } from '../errors.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';
import { MsgType, frameHandshake } from './messages.js';
import type { Extension } from './messages.js';

/** ClientHello: the ticket offered and its binder. ServerHello: empty, "the ticket is accepted". */
export const EXT_PRE_SHARED_KEY = 0x0020;
export const BINDER_LENGTH = 32;
/**
 * A pqmcp ticket carries the client's credential (<= 16384) padded to its Credential bucket,
 * plus 378 bytes and the endpoint (protocol.md 15.6); a pqmcp server sends none above this.
 */
export const MAX_TICKET_LENGTH = 17 * 1024;
/** Clients never keep a ticket longer than this, whatever the server says (as TLS 1.3). */
export const MAX_TICKET_LIFETIME_SECONDS = 7 * 24 * 3600;

export interface PskOffer {
  ticket: Uint8Array;
  binder: Uint8Array;
}

/**
 * pre_shared_key extension data in a ClientHello:
 *   ticket  vector<u16>  1..17408, the sealed ticket exactly as received in NewSessionTicket
 *   binder  [32]         HMAC over the ClientHello with these 32 bytes zeroed (protocol.md 15.3)
 */
export function encodePskOffer(offer: PskOffer): Extension {
  return { type: EXT_PRE_SHARED_KEY, data: new Writer().vector(2, offer.ticket).bytes(offer.binder).finish() };
}

/**
 * What the pre_shared_key extension carrying a ticket of `ticketLength` bytes adds to a
 * ClientHello: its type u16 and data length u16 in the extension list, then encodePskOffer's
 * ticket<2> and binder. A resuming ClientHello is the same ClientHello without it plus this.
 */
export function pskOfferExtensionLength(ticketLength: number): number {
  return 2 + 2 + 2 + ticketLength + BINDER_LENGTH;
}

export function decodePskOffer(data: Uint8Array): PskOffer {
  const r = new Reader(data);
  const ticket = r.vector(2, 'pre_shared_key ticket', 1, MAX_TICKET_LENGTH);
  const binder = r.fixed(BINDER_LENGTH, 'pre_shared_key binder');
  r.end('pre_shared_key');
  return { ticket, binder };
}

/** pre_shared_key extension data in a ServerHello: empty (the one ticket offered is accepted). */
export function encodePskAccepted(): Extension {
  return { type: EXT_PRE_SHARED_KEY, data: new Uint8Array(0) };
}

export function checkPskAccepted(data: Uint8Array): void {
  if (data.length !== 0) throw new DecodeError('ServerHello pre_shared_key must be empty');
}

/** A copy of a framed ClientHello with the 32 binder bytes at `binderOffset` zeroed: the binder's input. */
export function zeroBinder(framedClientHello: Uint8Array, binderOffset: number): Uint8Array {
  const copy = new Uint8Array(framedClientHello); // a copy even when given a Node Buffer
  copy.fill(0, binderOffset, binderOffset + BINDER_LENGTH);
  return copy;
}

export interface NewSessionTicket {
  /** Seconds the client may keep the ticket (0: do not keep it). */
  lifetime: number;
  nonce: Uint8Array;
  ticket: Uint8Array;
  extensions: Extension[];
}

/**
 * NewSessionTicket body (msg_type 4, post-handshake, server to client, application epoch):
 *   ticket_lifetime  u32          seconds; clients keep it at most min(this, 604800)
 *   ticket_nonce     vector<u8>   1..255, unique per ticket within the session
 *   ticket           vector<u16>  1..17408, opaque to the client
 *   extensions       vector<u16>  none defined; ignored
 */
export function encodeNewSessionTicket(nst: NewSessionTicket): Uint8Array {
  const w = new Writer().u32(nst.lifetime).vector(1, nst.nonce).vector(2, nst.ticket);
  const exts = new Writer();
  for (const e of nst.extensions) exts.u16(e.type).vector(2, e.data);
  w.vector(2, exts.finish());
  return frameHandshake(MsgType.newSessionTicket, w.finish());
}

export function decodeNewSessionTicket(body: Uint8Array): NewSessionTicket {
  const r = new Reader(body);
  const lifetime = r.u32('ticket_lifetime');
  const nonce = r.vector(1, 'ticket_nonce', 1, 255);
  const ticket = r.vector(2, 'ticket', 1, MAX_TICKET_LENGTH);
  const raw = r.vector(2, 'extensions');
  r.end('NewSessionTicket');
  const er = new Reader(raw);
  const extensions: Extension[] = [];
  while (er.remaining > 0) extensions.push({ type: er.u16('extension type'), data: er.vector(2, 'extension data') });
  return { lifetime, nonce, ticket, extensions };
}
