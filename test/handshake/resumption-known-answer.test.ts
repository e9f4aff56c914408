/**
 * Resumption known-answer vectors (test/vectors/resumption-*.json, `npm run vectors`):
 * 1. the scenario replays byte for byte on each backend and across them;
 * 2. the vector agrees with docs/protocol.md section 15, recomputed here with raw
 *    primitives from the spec's formulas (PSK from the resumption master secret, binder,
 *    the PSK-salted handshake secret, Finished MACs, the sealed ticket), not with the
 *    project's key schedule.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { concat, fromHex, toHex, utf8Encode } from '../../src/bytes.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { RESUMPTION_KAT_FILES, type ResumptionVector } from '../helpers/kat-resumption.js';

const load = (f: string): ResumptionVector => JSON.parse(readFileSync(join(__dirname, '..', 'vectors', f), 'utf8'));
const noble = createNobleBackend();
const native = createNativeBackend();

describe.each([
  ['noble', 'noble', noble, noble],
  ['native', 'native', native, native],
  ['noble', 'native', noble, native],
  ['native', 'noble', native, noble],
])('resumption known-answer sessions, client on %s, server on %s', (_c, _s, clientBackend, serverBackend) => {
  it.each(RESUMPTION_KAT_FILES)('$file replays byte for byte', ({ file, run }) => {
    expect(run(clientBackend, serverBackend)).toEqual(load(file));
  });
});

const b = noble;
const EMPTY = new Uint8Array(0);
function expandLabel(secret: Uint8Array, label: string, context: Uint8Array, length: number): Uint8Array {
  const full = utf8Encode('pqmcp1 ' + label);
  return b.hkdfExpand(secret, concat(Uint8Array.of(length >> 8, length & 0xff, full.length), full, Uint8Array.of(context.length), context), length);
}
const derive = (s: Uint8Array, label: string, hash: Uint8Array) => expandLabel(s, label, hash, 32);
const hex = (s: string | undefined) => fromHex(s!);

/** Open a protected record at sequence 0 under `secret` and return (inner type, content). */
function openFirst(suite: number, secret: Uint8Array, recordHex: string): { type: number; content: Uint8Array } {
  const key = expandLabel(secret, 'key', EMPTY, 32);
  const iv = expandLabel(secret, 'iv', EMPTY, 12);
  const r = fromHex(recordHex);
  const inner = b.aead(suite === 2 ? 'aes-256-gcm' : 'chacha20-poly1305', key).open(iv, r.subarray(4), r.subarray(0, 4))!;
  let last = inner.length - 1;
  while (inner[last] === 0) last--;
  return { type: inner[last]!, content: inner.subarray(0, last) };
}

describe.each(RESUMPTION_KAT_FILES.map((f) => f.file))('%s agrees with the specification', (file) => {
  const v = load(file);
  const s = v.resumed.secrets;
  const c2s = v.resumed.records.client_to_server.map((r) => r.hex);
  const s2c = v.resumed.records.server_to_client.map((r) => r.hex);
  const ch = fromHex(c2s[0]!).subarray(4);
  const sh = fromHex(s2c[0]!).subarray(4);
  const serverFinished = openFirst(v.suite, hex(s['s_hs_traffic']), s2c[1]!);
  const clientFinished = openFirst(v.suite, hex(s['c_hs_traffic']), c2s[1]!);

  it('the PSK comes from the full session\'s resumption master secret and the ticket nonce', () => {
    expect(toHex(expandLabel(hex(v.full.secrets['resumption_master_secret']), 'resumption', hex(v.ticket.nonce), 32))).toBe(v.ticket.psk);
  });

  it('the binder is the HMAC over the ClientHello with the binder zeroed', () => {
    const early = b.hkdfExtract(b.sha256(utf8Encode('PQMCP/1')), hex(v.ticket.psk));
    expect(toHex(early)).toBe(s['early_secret']);
    // pre_shared_key (0x0020) is the last extension (after the endpoint, 0x0001): the binder is the ClientHello's last 32 bytes.
    const zeroed = ch.slice();
    zeroed.fill(0, zeroed.length - 32);
    const binderKey = derive(early, 'res binder', b.sha256(EMPTY));
    const binder = b.hmacSha256(expandLabel(binderKey, 'finished', EMPTY, 32), b.sha256(zeroed));
    expect(toHex(ch.subarray(ch.length - 32))).toBe(toHex(binder));
    // The ticket offered is the one the NewSessionTicket carried.
    expect(toHex(ch)).toContain(v.ticket.ticket);
  });

  it('the key schedule mixes the PSK and the fresh X-Wing secret', () => {
    const early = hex(s['early_secret']);
    const hs = b.hkdfExtract(derive(early, 'derived', b.sha256(EMPTY)), hex(s['xwing_shared_secret']));
    expect(toHex(hs)).toBe(s['handshake_secret']);
    const hellos = b.sha256(concat(ch, sh));
    expect(toHex(derive(hs, 'c hs traffic', hellos))).toBe(s['c_hs_traffic']);
    expect(toHex(derive(hs, 's hs traffic', hellos))).toBe(s['s_hs_traffic']);
    const master = b.hkdfExtract(derive(hs, 'derived', b.sha256(EMPTY)), new Uint8Array(32));
    expect(toHex(master)).toBe(s['master_secret']);
    const throughServerFinished = b.sha256(concat(ch, sh, serverFinished.content));
    expect(toHex(derive(master, 'c ap traffic', throughServerFinished))).toBe(s['c_ap_traffic_0']);
    expect(toHex(derive(master, 's ap traffic', throughServerFinished))).toBe(s['s_ap_traffic_0']);
    const all = b.sha256(concat(ch, sh, serverFinished.content, clientFinished.content));
    expect(toHex(derive(master, 'exp master', all))).toBe(s['exporter_secret']);
    expect(toHex(derive(master, 'res master', all))).toBe(s['resumption_master_secret']);
  });

  it('no Credential and no signature: each side sends its Finished only, with the right MAC', () => {
    expect(v.resumed.resumed).toBe(true);
    expect(serverFinished.content[0]).toBe(20);
    expect(clientFinished.content[0]).toBe(20);
    const mac = (secret: string | undefined, ...parts: Uint8Array[]) => toHex(b.hmacSha256(expandLabel(hex(secret), 'finished', EMPTY, 32), b.sha256(concat(...parts))));
    expect(toHex(serverFinished.content.subarray(4))).toBe(mac(s['s_hs_traffic'], ch, sh));
    expect(toHex(clientFinished.content.subarray(4))).toBe(mac(s['c_hs_traffic'], ch, sh, serverFinished.content));
    // Server: ServerHello, Finished, then under application keys a NewSessionTicket (type 4).
    const nst = openFirst(v.suite, hex(s['s_ap_traffic_0']), s2c[2]!);
    expect(nst.content[0]).toBe(4);
  });

  it('the ticket opens under the ticket key (pqmcp\'s format, section 15.6: TicketPlaintext version 3) and carries the PSK and the hash of the server credential', () => {
    const sealed = hex(v.ticket.ticket);
    expect(toHex(sealed.subarray(0, 8))).toBe(v.ticket_key.id);
    const salt = sealed.subarray(8, 24);
    const key = b.hkdfExpand(hex(v.ticket_key.key), concat(utf8Encode('pqmcp1 ticket'), salt), 32);
    const plain = b.aead('chacha20-poly1305', key).open(new Uint8Array(12), sealed.subarray(24), sealed.subarray(0, 24))!;
    // version u8 | suite u16 | auth_time u64 | expires_at u64 | psk [32] | endpoint vector<u16>
    // | server_agent_id vector<u8> | server_credential [32] | client_credential vector<u16> | padding vector<u16>
    const view = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
    let at = 0;
    const take = (n: number) => plain.subarray(at, (at += n));
    const vector = (prefix: 1 | 2) => take(prefix === 1 ? take(1)[0]! : view.getUint16((at += 2) - 2));
    expect(take(1)[0]).toBe(3);
    expect(view.getUint16(at)).toBe(v.suite);
    at += 2;
    expect(Number(view.getBigUint64(at))).toBe(v.full.now_ms / 1000);
    expect(Number(view.getBigUint64(at + 8))).toBe(v.ticket.expires_at);
    at += 16;
    expect(toHex(take(32))).toBe(v.ticket.psk);
    expect(new TextDecoder().decode(vector(2))).toBe(v.ticket_endpoint);
    expect(new TextDecoder().decode(vector(1))).toBe(v.server.agent_id);
    // SHA-256 of the server's credential as its full handshake presented it (15.4 step 4).
    expect(toHex(take(32))).toBe(toHex(b.sha256(hex(v.server.credential))));
    expect(toHex(vector(2))).toBe(v.client.credential);
    const padding = vector(2);
    expect(at).toBe(plain.length);
    expect(padding.every((x) => x === 0)).toBe(true);
    // The padding rule: the client's Credential record padding plus 255 - |server_agent_id|,
    // so the sealed ticket is 378 + |endpoint| + that record's inner plaintext length. The
    // full session's Credential record (the client's first under c_hs_traffic) says which.
    const credentialRecord = openFirst(v.suite, hex(v.full.secrets['c_hs_traffic']), v.full.records.client_to_server[1]!.hex);
    expect(credentialRecord.content[0]).toBe(11);
    const inner = fromHex(v.full.records.client_to_server[1]!.hex).length - 4 - 16;
    expect(inner % 1024).toBe(0);
    expect(sealed.length).toBe(378 + utf8Encode(v.ticket_endpoint).length + inner);
    expect(padding.length).toBe(inner - credentialRecord.content.length - 1 + 255 - utf8Encode(v.server.agent_id).length);
  });
});
