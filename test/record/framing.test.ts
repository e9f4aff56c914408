/**
 * encodeRecord and RecordDeframer: every split of the stream gives the same records, headers
 * are judged from their 4 bytes alone, and a failed deframer stays failed.
 */
import { describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import { DecodeError, InvalidArgumentError, RecordOverflowError, UnexpectedMessageError, type PqmcpError } from '../../src/errors.js';
import { CipherState, InnerType, MAX_PLAINTEXT_HANDSHAKE, MAX_PROTECTED_BODY, RecordDeframer, RecordType, encodeRecord } from '../../src/record/index.js';
import { expectError, hex, prng, randomBytes } from './_helpers.js';

const backend = createNobleBackend();
const cipher = () => new CipherState(backend, 'chacha20-poly1305', new Uint8Array(32).fill(1), new Uint8Array(12).fill(2));
const header = (type: number, length: number) => Uint8Array.of(type, length >>> 16, (length >>> 8) & 0xff, length & 0xff);

/** A stream of records of every type and boundary size, and where each record ends. */
function makeStream(large: boolean) {
  const rand = prng(large ? 11 : 10);
  const tx = cipher();
  const records = [
    encodeRecord(RecordType.handshake, Uint8Array.of(42)),
    tx.seal(InnerType.applicationFinal, new Uint8Array(0)), // body 17, the minimum
    encodeRecord(RecordType.alert, Uint8Array.of(0, 10)),
    encodeRecord(RecordType.handshake, randomBytes(rand, large ? MAX_PLAINTEXT_HANDSHAKE : 300)),
    tx.seal(InnerType.applicationFinal, randomBytes(rand, large ? 65536 : 150)),
    tx.seal(InnerType.keyUpdate, Uint8Array.of(1)),
    encodeRecord(RecordType.alert, Uint8Array.of(0, 0)),
  ];
  const bytes = new Uint8Array(Buffer.concat(records));
  const ends: number[] = [];
  let end = 0;
  for (const r of records) ends.push((end += r.length));
  return { records, bytes, ends };
}

/** Feed `chunks` one by one, draining after each; check order, promptness and bufferedBytes. */
function feed(chunks: Uint8Array[], expected: { records: Uint8Array[]; ends: number[] }): void {
  const d = new RecordDeframer();
  let pushed = 0;
  let returned = 0;
  let got = 0;
  for (const c of chunks) {
    d.push(c);
    pushed += c.length;
    for (let r = d.next(); r; r = d.next()) {
      const want = expected.records[got++]!;
      expect(r.header.length).toBe(4);
      expect(r.type).toBe(want[0]);
      if (!(Buffer.from(r.header).equals(want.subarray(0, 4)) && Buffer.from(r.body).equals(want.subarray(4)))) {
        expect.fail(`record ${got - 1} differs`);
      }
      returned += 4 + r.body.length;
    }
    // Every record that is complete within the pushed prefix has been returned, no more.
    expect(got).toBe(expected.ends.filter((e) => e <= pushed).length);
    expect(d.bufferedBytes).toBe(pushed - returned);
  }
  expect(got).toBe(expected.records.length);
  expect(d.bufferedBytes).toBe(0);
  expect(d.next()).toBeUndefined();
}

function fixedChunks(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < bytes.length; o += size) out.push(bytes.subarray(o, o + size));
  return out;
}

function randomChunks(bytes: Uint8Array, rand: () => number, maxChunk: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < bytes.length; ) {
    // Mostly small chunks, sometimes empty ones, sometimes large.
    const n = rand() < 0.05 ? 0 : 1 + Math.floor(rand() ** 3 * maxChunk);
    out.push(bytes.subarray(o, o + n));
    o += n;
  }
  return out;
}

/** Throws the error and returns it, for identity checks. */
function thrown(fn: () => unknown): PqmcpError {
  try {
    fn();
  } catch (err) {
    return err as PqmcpError;
  }
  throw new Error('expected a throw');
}

describe('encodeRecord', () => {
  it('writes type u8 || length u24 || body', () => {
    expect(hex(encodeRecord(RecordType.handshake, Uint8Array.of(1, 2, 3)))).toBe('16000003010203');
    expect(hex(encodeRecord(RecordType.alert, Uint8Array.of(0, 50)))).toBe('150000020032');
    expect(encodeRecord(RecordType.handshake, new Uint8Array(MAX_PLAINTEXT_HANDSHAKE)).length).toBe(4 + MAX_PLAINTEXT_HANDSHAKE);
    expect(hex(encodeRecord(RecordType.protected, new Uint8Array(17)).subarray(0, 4))).toBe('17000011');
  });

  it('refuses what a receiver would refuse, as a local error', () => {
    const cases: [number, number][] = [
      [RecordType.handshake, 0],
      [RecordType.handshake, MAX_PLAINTEXT_HANDSHAKE + 1],
      [RecordType.alert, 1],
      [RecordType.alert, 3],
      [RecordType.protected, 16],
      [RecordType.protected, MAX_PROTECTED_BODY + 1],
      [0x42, 5],
    ];
    for (const [type, length] of cases) expectError(() => encodeRecord(type, new Uint8Array(length)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });
});

describe('RecordDeframer', () => {
  it('gives the same records for every fixed chunk size 1..N (N = whole stream)', () => {
    const s = makeStream(false);
    for (let size = 1; size <= s.bytes.length; size++) feed(fixedChunks(s.bytes, size), s);
  });

  it('gives the same records for seeded random splits, including empty chunks', () => {
    const s = makeStream(false);
    const rand = prng(1234);
    for (let trial = 0; trial < 300; trial++) feed(randomChunks(s.bytes, rand, 200), s);
  });

  it('handles maximum-size records split 1 byte at a time, randomly, and in one chunk', () => {
    const s = makeStream(true);
    feed([s.bytes], s);
    feed(fixedChunks(s.bytes, 1), s);
    feed(fixedChunks(s.bytes, 4093), s);
    const rand = prng(99);
    for (let trial = 0; trial < 20; trial++) feed(randomChunks(s.bytes, rand, 20000), s);
  });

  it('returns views, not copies, when a record sits inside one chunk', () => {
    const s = makeStream(false);
    const d = new RecordDeframer();
    d.push(s.bytes);
    const r = d.next()!;
    expect(r.body.buffer).toBe(s.bytes.buffer);
    expect(r.header.buffer).toBe(s.bytes.buffer);
  });

  it('stays linear with many tiny chunks', () => {
    const tx = cipher();
    const one = tx.seal(InnerType.applicationFinal, new Uint8Array(0));
    const count = 20_000;
    const bytes = new Uint8Array(one.length * count);
    for (let i = 0; i < count; i++) bytes.set(one, i * one.length); // framing only: same record repeated
    const d = new RecordDeframer();
    const t0 = performance.now();
    for (let i = 0; i < bytes.length; i++) d.push(bytes.subarray(i, i + 1));
    expect(d.bufferedBytes).toBe(bytes.length);
    let n = 0;
    while (d.next()) n++;
    expect(n).toBe(count);
    expect(d.bufferedBytes).toBe(0);
    // 420,000 one-byte chunks: linear work is milliseconds; quadratic would be minutes.
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  describe('oversize declared lengths are refused from the header alone', () => {
    const oversize: [string, number, number][] = [
      ['handshake 8193', RecordType.handshake, MAX_PLAINTEXT_HANDSHAKE + 1],
      ['handshake 2^24-1', RecordType.handshake, 0xffffff],
      ['alert 3', RecordType.alert, 3],
      ['alert 2^24-1', RecordType.alert, 0xffffff],
      ['protected 65554', RecordType.protected, MAX_PROTECTED_BODY + 1],
      ['protected 2^24-1', RecordType.protected, 0xffffff],
    ];

    it.each(oversize)('%s: thrown by the push that completes the header, nothing kept', (_, type, length) => {
      const d = new RecordDeframer();
      const h = header(type, length);
      d.push(h.subarray(0, 1));
      d.push(h.subarray(1, 3));
      expect(d.bufferedBytes).toBe(3);
      const err = expectError(() => d.push(h.subarray(3)), RecordOverflowError, 'ERR_RECORD_OVERFLOW');
      expect(d.bufferedBytes).toBe(0);
      expect((d as unknown as { chunks: Uint8Array[] }).chunks).toHaveLength(0);
      // Dead: every later call throws the same error.
      expect(thrown(() => d.next())).toBe(err);
      expect(thrown(() => d.push(new Uint8Array(10)))).toBe(err);
      expect(d.bufferedBytes).toBe(0);
    });

    it.each(oversize)('%s: a header followed by 100 KB in the same chunk keeps nothing', (_, type, length) => {
      const d = new RecordDeframer();
      const chunk = new Uint8Array(4 + 100_000);
      chunk.set(header(type, length));
      expectError(() => d.push(chunk), RecordOverflowError, 'ERR_RECORD_OVERFLOW');
      expect(d.bufferedBytes).toBe(0);
      expect((d as unknown as { chunks: Uint8Array[] }).chunks).toHaveLength(0);
    });
  });

  it('delivers the valid records before a bad header, then fails', () => {
    const good = encodeRecord(RecordType.alert, Uint8Array.of(0, 10));
    const d = new RecordDeframer();
    d.push(new Uint8Array(Buffer.concat([good, good, header(RecordType.protected, MAX_PROTECTED_BODY + 1), new Uint8Array(50)])));
    expect(d.next()!.type).toBe(RecordType.alert);
    expect(d.next()!.type).toBe(RecordType.alert);
    const err = expectError(() => d.next(), RecordOverflowError, 'ERR_RECORD_OVERFLOW');
    expect(thrown(() => d.next())).toBe(err);
    expect(d.bufferedBytes).toBe(0);
  });

  it.each([0x00, 0x14, 0x18, 0x80, 0xff])('refuses unknown record type 0x%s', (type) => {
    const d = new RecordDeframer();
    const err = expectError(() => d.push(header(type, 5)), UnexpectedMessageError, 'ERR_UNEXPECTED_MESSAGE');
    expect(err.message).toContain('unknown record type');
    expect(thrown(() => d.next())).toBe(err);
  });

  it.each([
    ['handshake 0', RecordType.handshake, 0],
    ['alert 0', RecordType.alert, 0],
    ['alert 1', RecordType.alert, 1],
    ['protected 0', RecordType.protected, 0],
    ['protected 16', RecordType.protected, 16],
  ])('refuses a zero or too-small length: %s', (_, type, length) => {
    const d = new RecordDeframer();
    const err = expectError(() => d.push(header(type, length)), DecodeError, 'ERR_DECODE');
    expect(thrown(() => d.push(new Uint8Array(1)))).toBe(err);
  });

  it.each([
    ['handshake 1', RecordType.handshake, 1],
    ['handshake 8192', RecordType.handshake, MAX_PLAINTEXT_HANDSHAKE],
    ['alert 2', RecordType.alert, 2],
    ['protected 17', RecordType.protected, 17],
    ['protected 65553', RecordType.protected, MAX_PROTECTED_BODY],
  ])('accepts the boundary header %s and waits for its body', (_, type, length) => {
    const d = new RecordDeframer();
    d.push(header(type, length));
    expect(d.next()).toBeUndefined();
    expect(d.bufferedBytes).toBe(4);
    d.push(new Uint8Array(length - 1));
    expect(d.next()).toBeUndefined();
    d.push(new Uint8Array(1));
    const r = d.next()!;
    expect(r.type).toBe(type);
    expect(r.body.length).toBe(length);
    expect(d.bufferedBytes).toBe(0);
  });
});
