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
import { KAT_FILES, type KatVector } from '../helpers/kat.js';

const FILES = KAT_FILES.map((f) => f.file);
const load = (f: string): KatVector => JSON.parse(readFileSync(join(__dirname, '..', 'vectors', f), 'utf8'));
const noble = createNobleBackend();
const native = createNativeBackend();

describe.each([
  ['noble', 'noble', noble, noble],
  ['native', 'native', native, native],
  ['noble', 'native', noble, native],
  ['native', 'noble', native, noble],
])('known-answer sessions, client on %s, server on %s', (_c, _s, clientBackend, serverBackend) => {
  it.each(KAT_FILES)('$file replays byte for byte', ({ file, run }) => {
    expect(run(clientBackend, serverBackend)).toEqual(load(file));
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

  it('every protected record opens under the secret its label names, strips its padding, and carries what the label says', () => {
    const aead = v.suite === 2 ? 'aes-256-gcm' : 'chacha20-poly1305';
    const sent: string[] = [];
    for (const [side, records] of [['c', v.records.client_to_server], ['s', v.records.server_to_client]] as const) {
      for (const { label, hex } of records) {
        const r = fromHex(hex);
        expect(r.length, label).toBe(4 + ((r[1]! << 16) | (r[2]! << 8) | r[3]!));
        if (r[0] !== 0x17) continue;
        const [, secretName, seq] = / under ((?:c|s)_(?:hs|ap)_traffic(?:_\d+)?), seq (\d+) /.exec(label)!;
        expect(secretName!.startsWith(side), label).toBe(true);
        const s = fromHex(v.secrets[secretName!]!);
        const key = expandLabel(b, s, 'key', new Uint8Array(0), 32);
        const iv = expandLabel(b, s, 'iv', new Uint8Array(0), 12);
        const nonce = iv.slice();
        for (let i = 0; i < 8; i++) nonce[11 - i]! ^= Number((BigInt(seq!) >> BigInt(8 * i)) & 0xffn);
        const inner = b.aead(aead, key).open(nonce, r.subarray(4), r.subarray(0, 4))!;
        expect(inner, label).toBeDefined();
        // Section 3.2: the type is the last non-zero byte; the zeros after it are padding.
        let last = inner.length - 1;
        while (inner[last] === 0) last--;
        const [, contentLength, padding] = /content (\d+) bytes, padding (\d+) bytes/.exec(label)!;
        expect([last, inner.length - 1 - last], label).toEqual([Number(contentLength), Number(padding)]);
        const type = inner[last]!;
        if (type === 0x05 || type === 0x04) sent.push(`${side}:${toHex(inner.subarray(0, last))}:${type}`);
        // Section 3.6: length u16 || message, repeated, consuming the content exactly.
        for (let o = 0; type === 0x06 && o < last; ) {
          const n = (inner[o]! << 8) | inner[o + 1]!;
          expect(n > 0 && o + 2 + n <= last, label).toBe(true);
          sent.push(`${side}:${toHex(inner.subarray(o + 2, o + 2 + n))}:5`);
          o += 2 + n;
        }
        // Credential records are padded to a multiple of 1024 bytes (section 3.2).
        if (label.startsWith('Credential ')) expect(inner.length % 1024, label).toBe(0);
        // The client pads its last fragments to 256.
        if (side === 'c' && (type === 0x05 || type === 0x06)) expect(inner.length % v.client.application_padding, label).toBe(0);
      }
    }
    // Each direction carries one multi-message record (section 3.6).
    for (const records of [v.records.client_to_server, v.records.server_to_client]) expect(records.filter((r) => r.label.startsWith('multi-message record ')).length).toBe(1);
    // Reassemble and compare with the application messages, per direction, in order.
    for (const side of ['c', 's'] as const) {
      const messages: string[] = [];
      let parts: string[] = [];
      for (const x of sent.filter((e) => e.startsWith(side + ':'))) {
        const [, hex, type] = x.split(':');
        parts.push(hex!);
        if (type === '5') {
          messages.push(new TextDecoder().decode(fromHex(parts.join(''))));
          parts = [];
        }
      }
      expect(messages).toEqual(v.application.filter((m) => m.from === (side === 'c' ? 'client' : 'server')).map((m) => m.utf8));
    }
  });

  it('the secrets after each KeyUpdate are HKDF-Expand-Label(secret, "traffic upd", "", 32)', () => {
    expect(toHex(expandLabel(b, fromHex(v.secrets['c_ap_traffic_0']!), 'traffic upd', new Uint8Array(0), 32))).toBe(v.secrets['c_ap_traffic_1']);
    expect(toHex(expandLabel(b, fromHex(v.secrets['s_ap_traffic_0']!), 'traffic upd', new Uint8Array(0), 32))).toBe(v.secrets['s_ap_traffic_1']);
  });

  it('plaintext alerts are type 0x15, length 2, the code', () => {
    expect(v.plaintext_alerts).toEqual({ protocol_version: '150000020046', insufficient_security: '150000020047', close_notify_as_abort: '150000020000' });
  });
});
