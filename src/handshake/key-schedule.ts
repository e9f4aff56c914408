/**
 * The PQMCP/1 key schedule: TLS 1.3's (RFC 8446 section 7.1) shape with HKDF-SHA256, a
 * single KEM input (the X-Wing shared secret), an optional resumption PSK mixed in before
 * it (handshake/resumption.ts), and no 0-RTT.
 *
 *   HKDF-Expand-Label(S, L, C, n) = HKDF-Expand(S, u16 n || vector<u8>("pqmcp1 " + L) || vector<u8>(C), n)
 *   Derive-Secret(S, L, msgs)    = HKDF-Expand-Label(S, L, SHA-256(msgs), 32)
 *
 *   handshake_secret = HKDF-Extract(salt = SHA-256("PQMCP/1"), IKM = xwing_shared_secret)
 *   c_hs_traffic     = Derive-Secret(handshake_secret, "c hs traffic", CH..SH)
 *   s_hs_traffic     = Derive-Secret(handshake_secret, "s hs traffic", CH..SH)
 *   master_secret    = HKDF-Extract(salt = Derive-Secret(handshake_secret, "derived", ""), IKM = 0^32)
 *   c_ap_traffic_0   = Derive-Secret(master_secret, "c ap traffic", CH..server Finished)
 *   s_ap_traffic_0   = Derive-Secret(master_secret, "s ap traffic", CH..server Finished)
 *   exporter_secret  = Derive-Secret(master_secret, "exp master", CH..client Finished)
 *   finished_key     = HKDF-Expand-Label(hs_traffic, "finished", "", 32)
 *   verify_data      = HMAC-SHA256(finished_key, SHA-256(transcript so far))
 *   key / iv         = HKDF-Expand-Label(traffic, "key", "", 32) / HKDF-Expand-Label(traffic, "iv", "", 12)
 *   next traffic     = HKDF-Expand-Label(traffic, "traffic upd", "", 32)
 *   Export(L, C, n)  = HKDF-Expand-Label(Derive-Secret(exporter_secret, L, ""), "exporter", SHA-256(C), n)
 *
 * Differences from TLS 1.3: the label prefix is "pqmcp1 " (not "tls13 "), so no key can be
 * confused with a TLS key; there is no early secret; the exporter secret covers the
 * client's Finished, so exported values bind both authenticated identities.
 */
import { copyBytes, utf8Encode } from '../bytes.js';
import type { CryptoBackend, RunningHash } from '../crypto/types.js';
import { Writer } from '../wire/writer.js';

const LABEL_PREFIX = 'pqmcp1 ';
export const HASH_LENGTH = 32;
export const KEY_LENGTH = 32;
export const IV_LENGTH = 12;
const EMPTY = new Uint8Array(0);

export function expandLabel(backend: CryptoBackend, secret: Uint8Array, label: string, context: Uint8Array, length: number): Uint8Array {
  const info = new Writer()
    .u16(length)
    .vector(1, utf8Encode(LABEL_PREFIX + label))
    .vector(1, context)
    .finish();
  return backend.hkdfExpand(secret, info, length);
}

export function deriveSecret(backend: CryptoBackend, secret: Uint8Array, label: string, transcriptHash: Uint8Array): Uint8Array {
  return expandLabel(backend, secret, label, transcriptHash, HASH_LENGTH);
}

/**
 * SHA-256("PQMCP/1") and SHA-256(""): constants, computed once per backend object. Per
 * backend, not per process: a backend that computes them differently (a test double)
 * cannot change what another backend's handshakes use. Each caller gets its own copy (32
 * bytes), never the cached array: a backend whose hkdfExtract wipes its salt, or any caller
 * writing to what it got, cannot change what later handshakes on the same backend use.
 */
const CONSTANTS = new WeakMap<CryptoBackend, { salt: Uint8Array; empty: Uint8Array }>();
function constants(backend: CryptoBackend): { salt: Uint8Array; empty: Uint8Array } {
  let c = CONSTANTS.get(backend);
  if (c === undefined) CONSTANTS.set(backend, (c = { salt: backend.sha256(utf8Encode('PQMCP/1')), empty: backend.sha256(EMPTY) }));
  return c;
}
export const protocolSalt = (backend: CryptoBackend): Uint8Array => copyBytes(constants(backend).salt);
export const emptyHash = (backend: CryptoBackend): Uint8Array => copyBytes(constants(backend).empty);

export interface TrafficKeys {
  key: Uint8Array;
  iv: Uint8Array;
}

export function trafficKeys(backend: CryptoBackend, secret: Uint8Array): TrafficKeys {
  return { key: expandLabel(backend, secret, 'key', EMPTY, KEY_LENGTH), iv: expandLabel(backend, secret, 'iv', EMPTY, IV_LENGTH) };
}

export function nextTrafficSecret(backend: CryptoBackend, secret: Uint8Array): Uint8Array {
  return expandLabel(backend, secret, 'traffic upd', EMPTY, HASH_LENGTH);
}

export function finishedMac(backend: CryptoBackend, baseSecret: Uint8Array, transcriptHash: Uint8Array): Uint8Array {
  const finishedKey = expandLabel(backend, baseSecret, 'finished', EMPTY, HASH_LENGTH);
  return backend.hmacSha256(finishedKey, transcriptHash);
}

export interface HandshakeSecrets {
  handshakeSecret: Uint8Array;
  clientHandshake: Uint8Array;
  serverHandshake: Uint8Array;
}

/** `pskSalt`: with resumption, Derive-Secret(early_secret, "derived", "") (handshake/resumption.ts). */
export function handshakeSecrets(backend: CryptoBackend, sharedSecret: Uint8Array, helloHash: Uint8Array, pskSalt?: Uint8Array): HandshakeSecrets {
  const handshakeSecret = backend.hkdfExtract(pskSalt ?? protocolSalt(backend), sharedSecret);
  return {
    handshakeSecret,
    clientHandshake: deriveSecret(backend, handshakeSecret, 'c hs traffic', helloHash),
    serverHandshake: deriveSecret(backend, handshakeSecret, 's hs traffic', helloHash),
  };
}

export function masterSecret(backend: CryptoBackend, handshakeSecret: Uint8Array): Uint8Array {
  const salt = deriveSecret(backend, handshakeSecret, 'derived', emptyHash(backend));
  return backend.hkdfExtract(salt, new Uint8Array(HASH_LENGTH));
}

export interface ApplicationSecrets {
  client: Uint8Array;
  server: Uint8Array;
}

export function applicationSecrets(backend: CryptoBackend, master: Uint8Array, serverFinishedHash: Uint8Array): ApplicationSecrets {
  return {
    client: deriveSecret(backend, master, 'c ap traffic', serverFinishedHash),
    server: deriveSecret(backend, master, 's ap traffic', serverFinishedHash),
  };
}

export function exporterSecret(backend: CryptoBackend, master: Uint8Array, clientFinishedHash: Uint8Array): Uint8Array {
  return deriveSecret(backend, master, 'exp master', clientFinishedHash);
}

/** TLS-style exporter (RFC 8446 section 7.5) over the exporter secret. */
export function exportKeyingMaterial(backend: CryptoBackend, exporter: Uint8Array, label: string, context: Uint8Array, length: number): Uint8Array {
  const perLabel = deriveSecret(backend, exporter, label, backend.sha256(EMPTY));
  return expandLabel(backend, perLabel, 'exporter', backend.sha256(context), length);
}

/**
 * Running transcript: the framed handshake messages in order. Each message is hashed once
 * (a running SHA-256), however often the hash is read. The running hash lives beside the
 * object, not in it (RUNNING), so a copy of a Transcript (the adversarial tests fork state
 * machines) starts its own from the messages it holds.
 */
export class Transcript {
  private parts: Uint8Array[] = [];

  constructor(private readonly backend: CryptoBackend) {}

  add(message: Uint8Array): void {
    this.parts.push(message);
  }

  hash(): Uint8Array {
    let running = RUNNING.get(this);
    if (running === undefined) RUNNING.set(this, (running = { hash: this.backend.sha256Running(), absorbed: 0 }));
    while (running.absorbed < this.parts.length) running.hash.update(this.parts[running.absorbed++]!);
    return running.hash.digest();
  }
}

const RUNNING = new WeakMap<Transcript, { hash: RunningHash; absorbed: number }>();
