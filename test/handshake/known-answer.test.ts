/**
 * Known-answer vectors (test/vectors/handshake-*.json, written by `npm run vectors`):
 * 1. replaying the scenario on every backend reproduces every byte;
 * 2. the vector is consistent with docs/protocol.md, recomputed here from the spec's
 *    formulas with raw primitives (not the project's key schedule), so the file is
 *    useful to another implementation, not just a snapshot of this one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { concat, fromHex, toHex, utf8Encode } from '../../src/bytes.js';
import { compositeVerify } from '../../src/crypto/composite.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { decodeCredential } from '../../src/identity/index.js';
import { runKatScenario, type KatVector } from '../helpers/kat.js';

const FILES = ['handshake-chacha20poly1305.json', 'handshake-aes256gcm.json'];
const load = (f: string): KatVector => JSON.parse(readFileSync(join(__dirname, '..', 'vectors', f), 'utf8'));

describe.each([
  ['noble', createNobleBackend()],
  ['native', createNativeBackend()],
])('known-answer session on the %s backend', (_name, backend) => {
  it.each(FILES)('%s replays byte for byte', (file) => {
    const expected = load(file);
    expect(runKatScenario(backend, expected.suite)).toEqual(expected);
  });
});

/** HKDF-Expand-Label exactly as docs/protocol.md section 5.3 writes it. */
function expandLabel(b: CryptoBackend, secret: Uint8Array, label: string, context: Uint8Array, length: number): Uint8Array {
  const full = utf8Encode('pqmcp1 ' + label);
  const info = concat(Uint8Array.of(length >> 8, length & 0xff, full.length), full, Uint8Array.of(context.length), context);
  return b.hkdfExpand(secret, info, length);
}

describe.each(FILES)('%s agrees with the specification', (file) => {
  const b = createNobleBackend();
  const v = load(file);
  const m = Object.fromEntries(Object.entries(v.transcript).map(([k, h]) => [k, fromHex(h)]));
  const th = (...names: string[]) => b.sha256(concat(...names.map((n) => m[n]!)));
  const hellos = ['client_hello', 'server_hello'];
  const throughServerFinished = [...hellos, 'server_credential', 'server_credential_verify', 'server_finished'];
  const all = [...throughServerFinished, 'client_credential', 'client_credential_verify', 'client_finished'];
  const derive = (s: Uint8Array, label: string, hash: Uint8Array) => expandLabel(b, s, label, hash, 32);

  it('transcript hash covers the eight framed messages', () => {
    expect(Object.keys(v.transcript)).toHaveLength(8);
    expect(toHex(th(...all))).toBe(v.transcript_hash);
  });

  it('key schedule from the X-Wing shared secret', () => {
    const hs = b.hkdfExtract(b.sha256(utf8Encode('PQMCP/1')), fromHex(v.secrets['xwing_shared_secret']!));
    expect(toHex(hs)).toBe(v.secrets['handshake_secret']);
    expect(toHex(derive(hs, 'c hs traffic', th(...hellos)))).toBe(v.secrets['c_hs_traffic']);
    expect(toHex(derive(hs, 's hs traffic', th(...hellos)))).toBe(v.secrets['s_hs_traffic']);
    const master = b.hkdfExtract(derive(hs, 'derived', b.sha256(new Uint8Array(0))), new Uint8Array(32));
    expect(toHex(master)).toBe(v.secrets['master_secret']);
    expect(toHex(derive(master, 'c ap traffic', th(...throughServerFinished)))).toBe(v.secrets['c_ap_traffic_0']);
    expect(toHex(derive(master, 's ap traffic', th(...throughServerFinished)))).toBe(v.secrets['s_ap_traffic_0']);
    expect(toHex(derive(master, 'exp master', th(...all)))).toBe(v.secrets['exporter_secret']);
  });

  it('Finished MACs, CredentialVerify signatures and the exporter', () => {
    const finished = (secret: string, upTo: string[]) => b.hmacSha256(expandLabel(b, fromHex(secret), 'finished', new Uint8Array(0), 32), th(...upTo));
    expect(toHex(m['server_finished']!.subarray(4))).toBe(toHex(finished(v.secrets['s_hs_traffic']!, [...hellos, 'server_credential', 'server_credential_verify'])));
    expect(toHex(m['client_finished']!.subarray(4))).toBe(toHex(finished(v.secrets['c_hs_traffic']!, [...throughServerFinished, 'client_credential', 'client_credential_verify'])));

    const serverKey = decodeCredential(fromHex(v.server.credential)).publicKey;
    const serverSig = m['server_credential_verify']!.subarray(4 + 4); // msg header, alg u16, len u16
    expect(compositeVerify(b, serverKey, th(...hellos, 'server_credential'), serverSig, utf8Encode('PQMCP/1 server CredentialVerify'))).toBe(true);
    const clientKey = decodeCredential(fromHex(v.client.credential)).publicKey;
    const clientSig = m['client_credential_verify']!.subarray(8);
    expect(compositeVerify(b, clientKey, th(...throughServerFinished, 'client_credential'), clientSig, utf8Encode('PQMCP/1 client CredentialVerify'))).toBe(true);

    const perLabel = derive(fromHex(v.secrets['exporter_secret']!), v.exporter.label, b.sha256(new Uint8Array(0)));
    expect(toHex(expandLabel(b, perLabel, 'exporter', b.sha256(fromHex(v.exporter.context)), v.exporter.length))).toBe(v.exporter.value);
  });

  it('the first application record each way decrypts to the application messages', () => {
    const aead = v.suite === 2 ? 'aes-256-gcm' : 'chacha20-poly1305';
    const open = (secret: string, record: string) => {
      const s = fromHex(secret);
      const key = expandLabel(b, s, 'key', new Uint8Array(0), 32);
      const iv = expandLabel(b, s, 'iv', new Uint8Array(0), 12); // seq 0: nonce = iv
      const r = fromHex(record);
      const inner = b.aead(aead, key).open(iv, r.subarray(4), r.subarray(0, 4))!;
      expect(inner[inner.length - 1]).toBe(0x05); // final application fragment
      return new TextDecoder().decode(inner.subarray(0, -1));
    };
    // Client: ClientHello, then its three protected handshake records, then the message.
    expect(open(v.secrets['c_ap_traffic_0']!, v.records.client_to_server[4]!)).toBe(v.application.client_message);
    // Server: ServerHello and three handshake records, then the message.
    expect(open(v.secrets['s_ap_traffic_0']!, v.records.server_to_client[4]!)).toBe(v.application.server_message);
  });
});
