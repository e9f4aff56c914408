/**
 * CipherState on the portable backend, for both AEADs: round trips, the nonce and AAD
 * checked against an independent computation, tampering, replay / reorder / drop, the
 * sequence limit, content bounds and wiping.
 */
import { describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { AeadAlgorithm } from '../../src/crypto/types.js';
import { BadRecordMacError, ClosedError, DecodeError, InvalidArgumentError, RecordOverflowError, SequenceExhaustedError, UnexpectedMessageError } from '../../src/errors.js';
import { writeNonce } from '../../src/record/_nonce.js';
import { CipherState, InnerType, MAX_CONTENT, MAX_PROTECTED_BODY, RecordType, TAG_LENGTH, type InnerTypeId } from '../../src/record/index.js';
import { expectError, hex, prng, randomBytes } from './_helpers.js';

const backend = createNobleBackend();
const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
const iv = Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i * 3);
const ALGORITHMS = ['chacha20-poly1305', 'aes-256-gcm'] as const satisfies readonly AeadAlgorithm[];

const split = (rec: Uint8Array): [Uint8Array, Uint8Array] => [rec.subarray(0, 4), rec.subarray(4)];

/** Independent nonce: iv XOR seq as 96-bit big-endian integers (BigInt, not the module's code). */
function expectedNonce(seq: number | bigint): Uint8Array {
  const x = BigInt('0x' + hex(iv)) ^ BigInt(seq);
  return Uint8Array.from(Buffer.from(x.toString(16).padStart(24, '0'), 'hex'));
}

describe('writeNonce', () => {
  it('is iv XOR (0^32 || seq u64) for seq up to 2^48 and beyond 2^32', () => {
    const out = new Uint8Array(12);
    for (const seq of [0, 1, 2, 255, 256, 65535, 2 ** 24 + 3, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, 2 ** 48 - 1, 2 ** 48, 2 ** 53 - 1]) {
      expect(hex(writeNonce(out, iv, seq)), `seq ${seq}`).toBe(hex(expectedNonce(seq)));
    }
    // The first 4 bytes of the IV are never touched.
    expect(hex(out.subarray(0, 4))).toBe(hex(iv.subarray(0, 4)));
  });
});

describe.each(ALGORITHMS)('CipherState (%s)', (alg) => {
  const make = (sequenceLimit?: number) => new CipherState(backend, alg, key, iv, sequenceLimit === undefined ? {} : { sequenceLimit });

  it('round-trips many records of varied sizes and inner types in order', () => {
    const tx = make();
    const rx = make();
    const rand = prng(1);
    const sizes = [0, 1, 15, 16, 17, 255, 1000, 4096, MAX_CONTENT - 1, MAX_CONTENT];
    for (let i = 0; i < 120; i++) {
      const size = i < sizes.length ? sizes[i]! : Math.floor(rand() * 3000);
      const innerType = (1 + (i % 5)) as InnerTypeId;
      const content = randomBytes(rand, size);
      const rec = tx.seal(innerType, content);
      expect(rec.length).toBe(4 + size + 1 + TAG_LENGTH);
      expect(rec[0]).toBe(RecordType.protected);
      expect((rec[1]! << 16) | (rec[2]! << 8) | rec[3]!).toBe(size + 1 + TAG_LENGTH);
      const out = rx.open(...split(rec));
      expect(out.innerType).toBe(innerType);
      expect(hex(out.content)).toBe(hex(content));
      expect(tx.sequence).toBe(i + 1);
      expect(rx.sequence).toBe(i + 1);
    }
  });

  it('seals exactly AEAD(key, iv XOR seq, content || type, header): independent computation', () => {
    const tx = make();
    const aead = backend.aead(alg, key);
    const rand = prng(2);
    for (let seq = 0; seq < 300; seq++) {
      const content = randomBytes(rand, seq % 40);
      const innerType = (1 + (seq % 5)) as InnerTypeId;
      const rec = tx.seal(innerType, content);
      const header = Uint8Array.of(0x17, 0, 0, content.length + 17);
      const inner = Uint8Array.from([...content, innerType]);
      const manual = aead.seal(expectedNonce(seq), inner, header);
      expect(hex(rec), `seq ${seq}`).toBe(hex(header) + hex(manual));
    }
  });

  it('opens a record sealed by hand with the independently computed nonce', () => {
    const aead = backend.aead(alg, key);
    const rx = make();
    for (let seq = 0; seq < 5; seq++) {
      const header = Uint8Array.of(0x17, 0, 0, 3 + 17);
      const body = aead.seal(expectedNonce(seq), Uint8Array.of(9, 8, seq, InnerType.applicationFinal), header);
      const out = rx.open(header, body);
      expect([...out.content]).toEqual([9, 8, seq]);
    }
  });

  it('refuses a bit flip in the header, the ciphertext or the tag, without advancing seq', () => {
    const tx = make();
    const rec = tx.seal(InnerType.applicationFinal, new TextEncoder().encode('secret payload, forty bytes of it......'));
    const positions = [0, 1, 2, 3, 4, 5, 20, rec.length - TAG_LENGTH - 1, rec.length - TAG_LENGTH, rec.length - 8, rec.length - 1];
    const rx = make();
    for (const pos of positions) {
      for (const bit of [0x01, 0x80]) {
        const bad = rec.slice();
        bad[pos]! ^= bit;
        const err = expectError(() => rx.open(...split(bad)), BadRecordMacError, 'ERR_BAD_RECORD_MAC');
        expect(err.message).toBe('record authentication failed');
        expect(rx.sequence).toBe(0);
      }
    }
    // A header that does not frame the body (same type and tag, but a different length).
    expectError(() => rx.open(Uint8Array.of(0x17, 0, 0, 17), rec.subarray(4)), BadRecordMacError, 'ERR_BAD_RECORD_MAC');
    // The genuine record still opens at seq 0.
    expect(rx.open(...split(rec)).innerType).toBe(InnerType.applicationFinal);
  });

  it('refuses a record from another key or IV', () => {
    const rec = make().seal(InnerType.applicationFinal, Uint8Array.of(1, 2, 3));
    const otherIv = iv.slice();
    otherIv[11]! ^= 1;
    expectError(() => new CipherState(backend, alg, key, otherIv).open(...split(rec)), BadRecordMacError, 'ERR_BAD_RECORD_MAC');
    const otherKey = key.slice();
    otherKey[0]! ^= 1;
    expectError(() => new CipherState(backend, alg, otherKey, iv).open(...split(rec)), BadRecordMacError, 'ERR_BAD_RECORD_MAC');
  });

  it('detects replay, reorder and a dropped record through the implicit sequence', () => {
    const tx = make();
    const rx = make();
    const [a, b, c, d, e, f] = ['a', 'b', 'c', 'd', 'e', 'f'].map((s) => tx.seal(InnerType.applicationFinal, new TextEncoder().encode(s))) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    const text = (r: Uint8Array) => new TextDecoder().decode(rx.open(...split(r)).content);
    expect(text(a)).toBe('a');
    expectError(() => rx.open(...split(a)), BadRecordMacError, 'ERR_BAD_RECORD_MAC'); // replay
    expect(text(b)).toBe('b');
    expectError(() => rx.open(...split(d)), BadRecordMacError, 'ERR_BAD_RECORD_MAC'); // reorder: d before c
    expect(rx.sequence).toBe(2);
    expect(text(c)).toBe('c');
    expect(text(d)).toBe('d');
    expectError(() => rx.open(...split(f)), BadRecordMacError, 'ERR_BAD_RECORD_MAC'); // e dropped
    expectError(() => rx.open(...split(b)), BadRecordMacError, 'ERR_BAD_RECORD_MAC'); // old replay
    expect(rx.sequence).toBe(4);
    expect(text(e)).toBe('e');
  });

  it('refuses to seal at seq >= sequenceLimit', () => {
    const tx = make(3);
    for (let i = 0; i < 3; i++) tx.seal(InnerType.applicationFinal, Uint8Array.of(i));
    for (let i = 0; i < 2; i++) expectError(() => tx.seal(InnerType.applicationFinal, Uint8Array.of(9)), SequenceExhaustedError, 'ERR_SEQUENCE_EXHAUSTED');
    expect(tx.sequence).toBe(3);
    const one = make(1);
    one.seal(InnerType.keyUpdate, Uint8Array.of(0));
    expectError(() => one.seal(InnerType.keyUpdate, Uint8Array.of(0)), SequenceExhaustedError, 'ERR_SEQUENCE_EXHAUSTED');
  });

  it('refuses to open at seq >= sequenceLimit, even a genuine record', () => {
    const tx = make(10);
    const rx = make(3);
    const records = Array.from({ length: 4 }, (_, i) => tx.seal(InnerType.applicationFinal, Uint8Array.of(i)));
    for (let i = 0; i < 3; i++) expect([...rx.open(...split(records[i]!)).content]).toEqual([i]);
    expectError(() => rx.open(...split(records[3]!)), SequenceExhaustedError, 'ERR_SEQUENCE_EXHAUSTED');
    expect(rx.sequence).toBe(3);
  });

  it('refuses out-of-range sequence limits', () => {
    for (const sequenceLimit of [0, -1, 1.5, Number.NaN, 2 ** 48 + 1, Infinity]) {
      expectError(() => make(sequenceLimit), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    }
    expect(make(2 ** 48).sequence).toBe(0);
  });

  it('seals content of exactly 65536 bytes and refuses 65537 as a local error (no seq used)', () => {
    const tx = make();
    const rx = make();
    const max = new Uint8Array(MAX_CONTENT).fill(0x5a);
    const rec = tx.seal(InnerType.applicationFinal, max);
    expect(rec.length - 4).toBe(MAX_PROTECTED_BODY);
    expect(rx.open(...split(rec)).content.length).toBe(MAX_CONTENT);
    expectError(() => tx.seal(InnerType.applicationFinal, new Uint8Array(MAX_CONTENT + 1)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(tx.sequence).toBe(1);
    // The next record still lines up with the receiver.
    expect([...rx.open(...split(tx.seal(InnerType.applicationFinal, Uint8Array.of(7)))).content]).toEqual([7]);
  });

  it('refuses an unknown inner type on seal', () => {
    const tx = make();
    for (const t of [0, 7, 0x17, 255]) expectError(() => tx.seal(t as InnerTypeId, Uint8Array.of(1)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(tx.sequence).toBe(0);
  });

  it('refuses an oversize or undersize body before decrypting, without advancing seq', () => {
    const rx = make();
    const big = MAX_PROTECTED_BODY + 1;
    expectError(() => rx.open(Uint8Array.of(0x17, big >>> 16, (big >>> 8) & 0xff, big & 0xff), new Uint8Array(big)), RecordOverflowError, 'ERR_RECORD_OVERFLOW');
    // An empty inner plaintext (a bare tag), even one that authenticates.
    const header = Uint8Array.of(0x17, 0, 0, 16);
    const bareTag = backend.aead(alg, key).seal(expectedNonce(0), new Uint8Array(0), header);
    expect(bareTag.length).toBe(16);
    expectError(() => rx.open(header, bareTag), DecodeError, 'ERR_DECODE');
    expectError(() => rx.open(Uint8Array.of(0x17, 0, 0, 0), new Uint8Array(0)), DecodeError, 'ERR_DECODE');
    expect(rx.sequence).toBe(0);
    expectError(() => rx.open(new Uint8Array(3), new Uint8Array(20)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });

  it('refuses an authenticated record whose inner type is outside 0x01..0x06', () => {
    const aead = backend.aead(alg, key);
    for (const t of [0x07, 0x17, 0xff]) {
      const rx = make();
      const header = Uint8Array.of(0x17, 0, 0, 2 + 17);
      const body = aead.seal(expectedNonce(0), Uint8Array.of(1, 2, t), header);
      expectError(() => rx.open(header, body), UnexpectedMessageError, 'ERR_UNEXPECTED_MESSAGE');
      expect(rx.sequence).toBe(1); // it authenticated: the record was consumed
    }
  });

  it('padding: zeros after the type are stripped on open, any amount; the record length is content + 1 + padding + 16', () => {
    const tx = make();
    const rx = make();
    for (const [content, padding] of [[0, 0], [5, 1], [5, 1018], [1000, 65536 - 1000]] as const) {
      const record = tx.seal(InnerType.applicationFinal, new Uint8Array(content).fill(7), padding);
      expect(record.length).toBe(4 + content + 1 + padding + 16);
      const opened = rx.open(record.subarray(0, 4), record.subarray(4));
      expect(opened.innerType).toBe(InnerType.applicationFinal);
      expect(opened.content).toEqual(new Uint8Array(content).fill(7));
    }
    // A full 65536-byte fragment has no room for padding: the record limit never moves.
    expectError(() => tx.seal(InnerType.applicationFragment, new Uint8Array(65536), 1), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });

  it('an authenticated inner plaintext of zeros only (no content type) is unexpected_message', () => {
    const aead = backend.aead(alg, key);
    for (const n of [1, 2, 1024]) {
      const rx = make();
      const header = Uint8Array.of(0x17, 0, (n + 16) >> 8, (n + 16) & 0xff);
      const body = aead.seal(expectedNonce(0), new Uint8Array(n), header);
      expectError(() => rx.open(header, body), UnexpectedMessageError, 'ERR_UNEXPECTED_MESSAGE');
    }
  });

  it('keeps its own key and IV copies, and wipe() zeroes them and disables the state', () => {
    const k = key.slice();
    const v = iv.slice();
    const tx = new CipherState(backend, alg, k, v);
    k.fill(0);
    v.fill(0);
    const rec = tx.seal(InnerType.applicationFinal, Uint8Array.of(1));
    expect([...make().open(...split(rec)).content]).toEqual([1]);

    tx.wipe();
    const held = tx as unknown as { key: Uint8Array; iv: Uint8Array; nonce: Uint8Array };
    expect(held.key.every((b) => b === 0)).toBe(true);
    expect(held.iv.every((b) => b === 0)).toBe(true);
    expect(held.nonce.every((b) => b === 0)).toBe(true);
    expectError(() => tx.seal(InnerType.applicationFinal, Uint8Array.of(1)), ClosedError, 'ERR_CLOSED');
    expectError(() => tx.open(...split(rec)), ClosedError, 'ERR_CLOSED');
  });

  it('refuses a key or IV of the wrong length', () => {
    expectError(() => new CipherState(backend, alg, new Uint8Array(16), iv), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => new CipherState(backend, alg, key, new Uint8Array(8)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });
});
