/**
 * The record layer on its own: framing over any stream split, per-direction AEAD state
 * with implicit sequence numbers, fragments and the message-size bound.
 */
import { describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { AeadAlgorithm } from '../../src/crypto/types.js';
import { CipherState, InnerType, MAX_CONTENT, MessageAssembler, RecordDeframer, RecordType, encodeRecord, fragmentMessage } from '../../src/record/index.js';

const backend = createNobleBackend();
const key = new Uint8Array(32).map((_, i) => i);
const iv = new Uint8Array(12).map((_, i) => 0xa0 + i);
const text = (s: string) => new TextEncoder().encode(s);

function pairOf(alg: AeadAlgorithm, limit?: number) {
  const opts = limit === undefined ? {} : { sequenceLimit: limit };
  return { tx: new CipherState(backend, alg, key, iv, opts), rx: new CipherState(backend, alg, key, iv, opts) };
}
const split = (rec: Uint8Array) => ({ header: rec.subarray(0, 4), body: rec.subarray(4) });

/** A small deterministic PRNG for random splits. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe.each(['chacha20-poly1305', 'aes-256-gcm'] as const)('CipherState (%s)', (alg) => {
  it('round-trips many records in order', () => {
    const { tx, rx } = pairOf(alg);
    for (let i = 0; i < 50; i++) {
      const rec = tx.seal(InnerType.applicationFinal, text(`m${i}`));
      const { header, body } = split(rec);
      expect(header[0]).toBe(RecordType.protected);
      expect((header[1]! << 16) | (header[2]! << 8) | header[3]!).toBe(body.length);
      const out = rx.open(header, body);
      expect(out.innerType).toBe(InnerType.applicationFinal);
      expect(new TextDecoder().decode(out.content)).toBe(`m${i}`);
    }
    expect(tx.sequence).toBe(50);
    expect(rx.sequence).toBe(50);
  });

  it('uses nonce = iv XOR seq and the header as AAD (independent computation)', () => {
    const { tx } = pairOf(alg);
    for (let i = 0; i < 3; i++) tx.seal(InnerType.applicationFinal, text('skip'));
    const rec = tx.seal(InnerType.alert, Uint8Array.of(0, 0)); // seq 3
    const nonce = iv.slice();
    nonce[11]! ^= 3;
    const inner = backend.aead(alg, key).open(nonce, rec.subarray(4), rec.subarray(0, 4));
    expect(inner).toBeDefined();
    expect([...inner!]).toEqual([0, 0, InnerType.alert]);
  });

  it('refuses a bit flip in header, ciphertext or tag with a constant-message bad_record_mac', () => {
    for (const where of [1, 3, 4, 10, -1]) {
      const { tx, rx } = pairOf(alg);
      const rec = tx.seal(InnerType.applicationFinal, text('secret payload'));
      const bad = rec.slice();
      const i = where < 0 ? bad.length + where : where;
      bad[i]! ^= 0x80;
      const { header, body } = split(bad);
      expect(() => rx.open(header, body)).toThrowError(expect.objectContaining({ code: 'ERR_BAD_RECORD_MAC', message: 'record authentication failed' }));
      // The sequence did not advance: the genuine record still opens.
      expect(new TextDecoder().decode(rx.open(...(Object.values(split(rec)) as [Uint8Array, Uint8Array])).content)).toBe('secret payload');
    }
  });

  it('detects replay, reorder and drop through the implicit sequence', () => {
    const { tx, rx } = pairOf(alg);
    const [a, b, c] = [tx.seal(5, text('a')), tx.seal(5, text('b')), tx.seal(5, text('c'))];
    rx.open(split(a).header, split(a).body);
    expect(() => rx.open(split(a).header, split(a).body)).toThrowError(expect.objectContaining({ code: 'ERR_BAD_RECORD_MAC' })); // replay
    expect(() => rx.open(split(c).header, split(c).body)).toThrowError(expect.objectContaining({ code: 'ERR_BAD_RECORD_MAC' })); // drop of b / reorder
    expect(new TextDecoder().decode(rx.open(split(b).header, split(b).body).content)).toBe('b');
  });

  it('refuses to seal or open past the sequence limit', () => {
    const { tx, rx } = pairOf(alg, 2);
    const r1 = tx.seal(5, text('1'));
    const r2 = tx.seal(5, text('2'));
    expect(() => tx.seal(5, text('3'))).toThrowError(expect.objectContaining({ code: 'ERR_SEQUENCE_EXHAUSTED' }));
    rx.open(split(r1).header, split(r1).body);
    rx.open(split(r2).header, split(r2).body);
    expect(() => rx.open(split(r2).header, split(r2).body)).toThrowError(expect.objectContaining({ code: 'ERR_SEQUENCE_EXHAUSTED' }));
  });

  it('takes content of exactly 65536 bytes and refuses 65537', () => {
    const { tx, rx } = pairOf(alg);
    const rec = tx.seal(5, new Uint8Array(MAX_CONTENT));
    expect(rx.open(split(rec).header, split(rec).body).content.length).toBe(MAX_CONTENT);
    expect(() => tx.seal(5, new Uint8Array(MAX_CONTENT + 1))).toThrowError(expect.objectContaining({ code: 'ERR_RECORD_OVERFLOW' }));
  });

  it('refuses an unknown inner type and an empty inner plaintext after authentication', () => {
    const aead = backend.aead(alg, key);
    for (const [inner, code] of [
      [Uint8Array.of(1, 2, 0x09), 'ERR_UNEXPECTED_MESSAGE'],
      [new Uint8Array(0), 'ERR_DECODE'],
    ] as const) {
      const header = Uint8Array.of(0x17, 0, 0, inner.length + 16);
      const body = aead.seal(iv, inner, header);
      expect(() => new CipherState(backend, alg, key, iv).open(header, body)).toThrowError(expect.objectContaining({ code }));
    }
  });
});

describe('RecordDeframer', () => {
  const stream = () => {
    const { tx } = pairOf('chacha20-poly1305');
    const records = [encodeRecord(RecordType.handshake, text('hello')), tx.seal(5, text('one')), tx.seal(5, new Uint8Array(3000)), encodeRecord(RecordType.alert, Uint8Array.of(0, 10))];
    return { records, bytes: new Uint8Array(Buffer.concat(records)) };
  };

  const collect = (chunks: Uint8Array[]) => {
    const d = new RecordDeframer();
    const got: Uint8Array[] = [];
    for (const c of chunks) {
      d.push(c);
      for (let r = d.next(); r; r = d.next()) got.push(new Uint8Array(Buffer.concat([r.header, r.body])));
    }
    expect(d.bufferedBytes).toBe(0);
    return got;
  };

  it('gives the same records for every fixed chunk size', () => {
    const { records, bytes } = stream();
    for (let size = 1; size <= 64; size++) {
      const chunks = [];
      for (let o = 0; o < bytes.length; o += size) chunks.push(bytes.subarray(o, o + size));
      expect(collect(chunks).map((r) => Buffer.from(r).toString('hex'))).toEqual(records.map((r) => Buffer.from(r).toString('hex')));
    }
  });

  it('gives the same records for random splits', () => {
    const { records, bytes } = stream();
    const rand = lcg(42);
    for (let trial = 0; trial < 200; trial++) {
      const chunks = [];
      let o = 0;
      while (o < bytes.length) {
        const n = 1 + Math.floor(rand() * 400);
        chunks.push(bytes.subarray(o, o + n));
        o += n;
      }
      expect(collect(chunks)).toEqual(records);
    }
  });

  it('refuses an oversize length from the header alone, buffering nothing', () => {
    const d = new RecordDeframer();
    d.push(Uint8Array.of(RecordType.protected, 0xff, 0xff, 0xff));
    expect(() => d.next()).toThrowError(expect.objectContaining({ code: 'ERR_RECORD_OVERFLOW' }));
    expect(d.bufferedBytes).toBe(0);
    // Dead after an error.
    expect(() => d.push(new Uint8Array(1))).toThrowError(expect.objectContaining({ code: 'ERR_RECORD_OVERFLOW' }));
  });

  it('refuses unknown types, zero and undersize lengths', () => {
    for (const [header, code] of [
      [[0x42, 0, 0, 1], 'ERR_UNEXPECTED_MESSAGE'],
      [[RecordType.handshake, 0, 0, 0], 'ERR_DECODE'],
      [[RecordType.protected, 0, 0, 16], 'ERR_DECODE'],
      [[RecordType.alert, 0, 0, 3], 'ERR_RECORD_OVERFLOW'],
      [[RecordType.handshake, 0, 0x20, 0x01], 'ERR_RECORD_OVERFLOW'],
    ] as const) {
      const d = new RecordDeframer();
      d.push(Uint8Array.from(header));
      expect(() => d.next(), header.join(',')).toThrowError(expect.objectContaining({ code }));
    }
  });
});

describe('fragments', () => {
  it.each([0, 1, 65535, 65536, 65537, 3 * 65536 + 5])('round-trips a message of %i bytes', (size) => {
    const msg = new Uint8Array(size).map((_, i) => i % 251);
    const frags = fragmentMessage(msg);
    expect(frags).toHaveLength(Math.max(1, Math.ceil(size / MAX_CONTENT)));
    expect(frags.slice(0, -1).every((f) => f.innerType === InnerType.applicationFragment)).toBe(true);
    expect(frags[frags.length - 1]!.innerType).toBe(InnerType.applicationFinal);
    const asm = new MessageAssembler(1 << 20);
    let out: Uint8Array | undefined;
    for (const f of frags) out = asm.add(f.innerType, f.content);
    expect(Buffer.from(out!).equals(Buffer.from(msg))).toBe(true);
    expect(asm.pending).toBe(false);
  });

  it('refuses a non-final fragment that is not exactly 65536 bytes', () => {
    for (const size of [0, 1, 65535]) {
      const asm = new MessageAssembler(1 << 20);
      expect(() => asm.add(InnerType.applicationFragment, new Uint8Array(size))).toThrowError(expect.objectContaining({ code: 'ERR_DECODE' }));
      expect(asm.pending).toBe(false);
    }
  });

  it('refuses a message past the limit before buffering the fragment that crosses it', () => {
    const asm = new MessageAssembler(100_000);
    asm.add(InnerType.applicationFragment, new Uint8Array(65536));
    expect(asm.pending).toBe(true);
    expect(() => asm.add(InnerType.applicationFragment, new Uint8Array(65536))).toThrowError(expect.objectContaining({ code: 'ERR_MESSAGE_TOO_LARGE' }));
    expect(asm.pending).toBe(false);
  });
});
