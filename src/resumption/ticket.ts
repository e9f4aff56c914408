/**
 * Resumption tickets: what a server remembers about a session, sealed so that only servers
 * holding its ticket keys can read it, and handed to the client to bring back.
 *
 * Plaintext (TicketContents), version 3:
 *   ticket_version      u8           3 (the only version opened: 1 and 2 are refused)
 *   suite               u16          the suite of the session that issued it
 *   auth_time           u64          unix seconds of the full handshake that authenticated
 *                                    both sides (kept when a resumed session issues tickets)
 *   expires_at          u64          unix seconds: min(auth_time + lifetime, both not_afters)
 *   psk                 [32]         the resumption PSK (protocol.md 15.2)
 *   endpoint            vector<u16>  0..1024, UTF-8: the endpoint the session was made on
 *   server_agent_id     vector<u8>   1..255
 *   server_credential   [32]         SHA-256 of the credential the server presented in the
 *                                    full handshake (encoded): the one its client verified
 *   client_credential   vector<u16>  1..16384: the client's credential, as it verified
 *   padding             vector<u16>  zeros: the client Credential record's padding plus
 *                                    255 - |server_agent_id| (ticketPaddingLength)
 *
 * Sealed form (what the client holds and sends back):
 *   key_id   [8]        which ticket key
 *   salt     [16]       fresh per ticket
 *   sealed   ChaCha20-Poly1305(key = HKDF-Expand(ticket_key, "pqmcp1 ticket" || salt, 32),
 *                                nonce = 0^12, aad = key_id || salt, plaintext) || tag[16]
 *
 * Sharp edges:
 * - A ticket crosses the wire twice where its length shows (the NewSessionTicket record, and
 *   the resuming ClientHello in cleartext), so it is padded (review 13, R13-1): a sealed
 *   ticket is 378 + |endpoint| + the inner length of the client's Credential
 *   record (section 3.2's 1024-byte bucket). It shows the client's bucket, as a full
 *   handshake does, and neither the credential's exact length nor the server id's. The
 *   endpoint's length shows: the ClientHello names it in cleartext anyway.
 * - The ticket names the server credential, not only its key (review 19, R19-1): a server
 *   that presents another credential (renewed, same key and id) refuses it, however it
 *   learnt of the renewal (a restart, a replica sharing the ticket keys). Versions 1 and 2
 *   named the key; they are refused (ERR_TICKET_INVALID, a full handshake), so an upgrade
 *   costs each client one full handshake.
 * - One AEAD key per ticket (derived from a fresh 16-byte salt), so the zero nonce is never
 *   reused and no per-key ticket budget applies.
 * - key_id and salt are authenticated (AAD, and the salt also keys the AEAD); key_id || salt
 *   is the ticket's identity in the server's anti-replay record.
 * - `openTicket` returns typed errors only: TicketUnknownKeyError (no such key id) and
 *   TicketInvalidError (anything else, constant message; no hint which byte was wrong).
 * - The plaintext holds the PSK: wipe what you no longer need. Decoded fields are copies
 *   (`new Uint8Array`, never `.slice()`, which is a view on a Node Buffer), so wiping the
 *   decrypted plaintext leaves them intact.
 */
import { concat, utf8Encode, toHex } from '../bytes.js';
import type { CryptoBackend } from '../crypto/types.js';
import { DecodeError, TicketInvalidError, TicketUnknownKeyError } from '../errors.js';
import { CREDENTIAL_PADDING_BLOCK, paddingFor } from '../record/padding.js';
import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import { TICKET_KEY_ID_LENGTH } from './ticket-keys.js';
import type { TicketKeys } from './ticket-keys.js';

/** The version sealed, and the only one opened. */
export const TICKET_VERSION = 3;
export const TICKET_SALT_LENGTH = 16;
export const PSK_LENGTH = 32;
export const MAX_ENDPOINT_LENGTH = 1024;
const TAG_LENGTH = 16;
const SEAL_LABEL = utf8Encode('pqmcp1 ticket');
const ZERO_NONCE = new Uint8Array(12);
const MAX_SERVER_AGENT_ID_LENGTH = 255;
/** What a Credential handshake message adds to the credential: msg_type u8, length u24, vector<u16> length. */
const CREDENTIAL_MESSAGE_OVERHEAD = 6;
/** The most padding ticketPaddingLength gives: 1023 + (255 - 1). */
const MAX_TICKET_PADDING = CREDENTIAL_PADDING_BLOCK - 1 + MAX_SERVER_AGENT_ID_LENGTH - 1;

export interface TicketContents {
  suite: number;
  /** Unix seconds. */
  authTime: number;
  /** Unix seconds. */
  expiresAt: number;
  psk: Uint8Array;
  endpoint: string;
  serverAgentId: string;
  /** SHA-256 of the server's credential (encoded) as it presented it in the full handshake. */
  serverCredentialHash: Uint8Array;
  clientCredential: Uint8Array;
}

/**
 * The zero bytes a ticket carries: the padding of the client's Credential record
 * (protocol.md 3.2: its inner plaintext to a multiple of 1024) plus what the server id lacks
 * of 255 bytes. So a sealed ticket is 378 + |endpoint| + that record's inner length.
 */
export function ticketPaddingLength(serverAgentIdLength: number, clientCredentialLength: number): number {
  return paddingFor(CREDENTIAL_MESSAGE_OVERHEAD + clientCredentialLength, CREDENTIAL_PADDING_BLOCK) + (MAX_SERVER_AGENT_ID_LENGTH - serverAgentIdLength);
}

/**
 * The length of the ticket sealTicket makes for this endpoint and client credential length,
 * whatever the server id: 378 + |endpoint| + the client's Credential record inner length.
 * Known before anything is sealed (a server withholds tickets that could not be used).
 */
export function sealedTicketLength(endpoint: string, clientCredentialLength: number): number {
  // version, suite, auth_time, expires_at, psk; endpoint<2>; server_agent_id<1> and the
  // padding that fills it to 255 bytes; server_credential; client_credential<2>; padding<2>.
  const plaintext = 1 + 2 + 8 + 8 + PSK_LENGTH + 2 + utf8Encode(endpoint).length + 1 + MAX_SERVER_AGENT_ID_LENGTH + 32 + 2 + clientCredentialLength + 2 + ticketPaddingLength(MAX_SERVER_AGENT_ID_LENGTH, clientCredentialLength);
  return TICKET_KEY_ID_LENGTH + TICKET_SALT_LENGTH + plaintext + TAG_LENGTH;
}

export function encodeTicketContents(t: TicketContents): Uint8Array {
  const serverAgentId = utf8Encode(t.serverAgentId);
  return new Writer()
    .u8(TICKET_VERSION)
    .u16(t.suite)
    .u64(t.authTime)
    .u64(t.expiresAt)
    .bytes(t.psk)
    .vector(2, utf8Encode(t.endpoint))
    .vector(1, serverAgentId)
    .bytes(t.serverCredentialHash)
    .vector(2, t.clientCredential)
    .vector(2, new Uint8Array(ticketPaddingLength(serverAgentId.length, t.clientCredential.length)))
    .finish();
}

/** Version 3 only. Non-zero padding is a DecodeError. */
export function decodeTicketContents(bytes: Uint8Array): TicketContents {
  const r = new Reader(bytes);
  const version = r.u8('ticket_version');
  if (version !== TICKET_VERSION) throw new DecodeError(`unknown ticket version ${version}`);
  const suite = r.u16('ticket suite');
  const authTime = r.u64('ticket auth_time');
  const expiresAt = r.u64('ticket expires_at');
  const psk = new Uint8Array(r.fixed(PSK_LENGTH, 'ticket psk'));
  const endpoint = new TextDecoder('utf-8', { fatal: true }).decode(r.vector(2, 'ticket endpoint', 0, MAX_ENDPOINT_LENGTH));
  const serverAgentId = new TextDecoder('utf-8', { fatal: true }).decode(r.vector(1, 'ticket server_agent_id', 1, MAX_SERVER_AGENT_ID_LENGTH));
  const serverCredentialHash = new Uint8Array(r.fixed(32, 'ticket server_credential'));
  const clientCredential = new Uint8Array(r.vector(2, 'ticket client_credential', 1, 16384));
  const padding = r.vector(2, 'ticket padding', 0, MAX_TICKET_PADDING);
  if (padding.some((b) => b !== 0)) throw new DecodeError('ticket padding is not zeros');
  r.end('ticket');
  return { suite, authTime, expiresAt, psk, endpoint, serverAgentId, serverCredentialHash, clientCredential };
}

function sealKey(backend: CryptoBackend, ticketKey: Uint8Array, salt: Uint8Array): Uint8Array {
  return backend.hkdfExpand(ticketKey, concat(SEAL_LABEL, salt), 32);
}

/** Seal under the current ticket key. `salt` (16 bytes) is for known-answer tests only. */
export function sealTicket(backend: CryptoBackend, keys: TicketKeys, contents: TicketContents, salt?: Uint8Array): Uint8Array {
  const { id, key } = keys.current;
  const s = salt ?? backend.randomBytes(TICKET_SALT_LENGTH);
  if (s.length !== TICKET_SALT_LENGTH) throw new DecodeError(`ticket salt must be ${TICKET_SALT_LENGTH} bytes`);
  const k = sealKey(backend, key, s);
  const plaintext = encodeTicketContents(contents);
  const aad = concat(id, s);
  const sealed = backend.aead('chacha20-poly1305', k).seal(ZERO_NONCE, plaintext, aad);
  k.fill(0);
  plaintext.fill(0);
  return concat(aad, sealed);
}

export interface OpenedTicket {
  contents: TicketContents;
  /** key_id || salt in hex: the ticket's identity for anti-replay. */
  id: string;
}

/** Open a sealed ticket with whichever of `keys` it names. */
export function openTicket(backend: CryptoBackend, keys: TicketKeys, sealed: Uint8Array): OpenedTicket {
  const header = TICKET_KEY_ID_LENGTH + TICKET_SALT_LENGTH;
  if (sealed.length < header + TAG_LENGTH) throw new TicketInvalidError();
  const id = sealed.subarray(0, TICKET_KEY_ID_LENGTH);
  const ticketKey = keys.find(id);
  if (!ticketKey) throw new TicketUnknownKeyError();
  const salt = sealed.subarray(TICKET_KEY_ID_LENGTH, header);
  const k = sealKey(backend, ticketKey.key, salt);
  const plaintext = backend.aead('chacha20-poly1305', k).open(ZERO_NONCE, sealed.subarray(header), sealed.subarray(0, header));
  k.fill(0);
  if (!plaintext) throw new TicketInvalidError();
  try {
    return { contents: decodeTicketContents(plaintext), id: toHex(sealed.subarray(0, header)) };
  } catch {
    // Authentic but unreadable: another version's format. Same answer as a forgery.
    throw new TicketInvalidError();
  } finally {
    plaintext.fill(0);
  }
}
