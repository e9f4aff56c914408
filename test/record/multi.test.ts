/**
 * Multi-message records (docs/protocol.md section 3.6): the codec's byte layout, every
 * refusal of the decoder with its exact typed error, and what the packer coalesces.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError, MessageTooLargeError } from '../../src/errors.js';
import { MAX_COALESCED, MAX_CONTENT, MAX_MESSAGES_PER_RECORD, decodeMessages, eachPacked, encodeMessages, packMessages } from '../../src/record/index.js';
import { expectError, prng, randomBytes } from './_helpers.js';

const bytes = (...b: number[]) => Uint8Array.from(b);
const entries = (content: Uint8Array) => decodeMessages(content, 1 << 20).map((m) => [...m]);

describe('encodeMessages / decodeMessages', () => {
  it('lays out length u16 || message for each message, in order', () => {
    const enc = encodeMessages([bytes(7), bytes(1, 2, 3)], 2 + 1 + 2 + 3);
    expect([...enc]).toEqual([0, 1, 7, 0, 3, 1, 2, 3]);
    expect(entries(enc)).toEqual([[7], [1, 2, 3]]);
  });

  it('round-trips at the boundaries: 1024 one-byte messages, and two messages filling 65536 bytes', () => {
    const many = Array.from({ length: MAX_MESSAGES_PER_RECORD }, (_, i) => bytes(i & 0xff));
    expect(entries(encodeMessages(many, 3 * many.length))).toEqual(many.map((m) => [...m]));
    const a = randomBytes(prng(1), MAX_CONTENT - 2 - 2 - 3);
    const full = encodeMessages([a, bytes(9, 9, 9)], MAX_CONTENT);
    expect(full.length).toBe(MAX_CONTENT);
    const out = decodeMessages(full, 1 << 20);
    expect(out[0]).toEqual(a);
    expect(out[0]!.buffer).toBe(full.buffer); // views, not copies
  });

  it.each([
    ['an empty content', bytes(), 'carries 0 messages'],
    ['one message', bytes(0, 1, 7), 'carries 1 message'],
    ['a length prefix cut short', bytes(0, 1, 7, 0), 'inside a length prefix'],
    ['an empty message', bytes(0, 1, 7, 0, 0, 0, 1, 8), 'empty message'],
    ['an entry that runs past the record', bytes(0, 1, 7, 0, 3, 1, 2), 'runs past the record'],
    ['a length of 65535 in a short record', bytes(0, 1, 7, 0xff, 0xff, 1), 'runs past the record'],
    ['a trailing byte', bytes(0, 1, 7, 0, 1, 8, 0), 'inside a length prefix'],
  ])('refuses %s with DecodeError', (_what, content, message) => {
    expect(expectError(() => decodeMessages(content, 1 << 20), DecodeError, 'ERR_DECODE').message).toContain(message);
  });

  it('refuses more than 1024 messages with DecodeError', () => {
    const many = Array.from({ length: MAX_MESSAGES_PER_RECORD + 1 }, () => bytes(1));
    expect(expectError(() => decodeMessages(encodeMessages(many, 3 * many.length), 1 << 20), DecodeError, 'ERR_DECODE').message).toContain('more than 1024');
  });

  it('refuses a message above the receiver’s maxMessageSize with MessageTooLargeError', () => {
    const enc = encodeMessages([bytes(1, 2, 3), bytes(1, 2, 3, 4)], 11);
    expect(decodeMessages(enc, 4)).toHaveLength(2);
    expectError(() => decodeMessages(enc, 3), MessageTooLargeError, 'ERR_MESSAGE_TOO_LARGE');
  });
});

describe('packMessages', () => {
  const kinds = (messages: Uint8Array[]) => packMessages(messages).map((p) => ('multi' in p ? `multi:${p.multi.length}` : `single:${p.single.length}`));

  it('coalesces runs of small messages, keeps empty and large ones alone, and keeps order', () => {
    const m = (n: number) => new Uint8Array(n);
    expect(kinds([m(10), m(20), m(0), m(5), m(MAX_COALESCED + 1), m(1), m(MAX_COALESCED)])).toEqual([
      'multi:34',
      'single:0',
      'single:5',
      `single:${MAX_COALESCED + 1}`,
      `multi:${2 + 1 + 2 + MAX_COALESCED}`,
    ]);
  });

  it('cuts a run where the next message would overflow the record or the count', () => {
    const fourK = Array.from({ length: 17 }, () => new Uint8Array(4096));
    // 15 entries of 4098 bytes fit in 65536; the 16th starts a new record (with the 17th).
    expect(kinds(fourK)).toEqual([`multi:${15 * 4098}`, `multi:${2 * 4098}`]);
    const tiny = Array.from({ length: MAX_MESSAGES_PER_RECORD + 1 }, () => new Uint8Array(1));
    expect(kinds(tiny)).toEqual([`multi:${3 * MAX_MESSAGES_PER_RECORD}`, 'single:1']);
  });

  it('on random runs with boundary sizes: every message once, in order; runs greedy and within both caps', () => {
    const rnd = prng(11);
    const sized = (k: number, size: number) => {
      const m = new Uint8Array(size).fill(k & 0xff);
      if (size >= 2) [m[0], m[1]] = [k >> 8, k & 0xff]; // which message it is
      return m;
    };
    const edge = [0, 1, 2, MAX_COALESCED - 1, MAX_COALESCED, MAX_COALESCED + 1, MAX_CONTENT - 2, MAX_CONTENT, MAX_CONTENT + 1];
    for (let round = 0; round < 60; round++) {
      const count = round === 0 ? 0 : 1 + Math.floor(rnd() * (round % 5 === 0 ? 2100 : 40));
      const messages = Array.from({ length: count }, (_, k) => {
        const r = rnd();
        // Every fifth round: long runs of tiny messages (past MAX_MESSAGES_PER_RECORD), rare breaks.
        if (round % 5 === 0) return sized(k, r < 0.002 ? edge[Math.floor(rnd() * edge.length)]! : 1 + Math.floor(rnd() * 7));
        const size = r < 0.15 ? edge[Math.floor(rnd() * edge.length)]! : r < 0.8 ? Math.floor(rnd() * 8) : Math.floor(rnd() * 20_000);
        return sized(k, size);
      });
      const packed = packMessages(messages);
      const runs = packed.map((p) => ('multi' in p ? decodeMessages(p.multi, 1 << 20) : [p.single]));
      // Exactly once, in order.
      const flat = runs.flat();
      expect(flat.length).toBe(messages.length);
      for (let k = 0; k < flat.length; k++) if (!Buffer.from(flat[k]!).equals(Buffer.from(messages[k]!))) expect.fail(`message ${k} of ${count} differs`);
      let i = 0;
      for (let r = 0; r < packed.length; r++) {
        const p = packed[r]!;
        const run = runs[r]!;
        if ('multi' in p) {
          expect(run.length).toBeGreaterThanOrEqual(2);
          expect(run.length).toBeLessThanOrEqual(MAX_MESSAGES_PER_RECORD);
          expect(p.multi.length).toBeLessThanOrEqual(MAX_CONTENT);
          for (const m of run) expect(m.length >= 1 && m.length <= MAX_COALESCED).toBe(true);
        } else {
          expect(p.single).toBe(messages[i]);
        }
        i += run.length;
        // Greedy: a coalescible run (or lone coalescible message) ends only where the next
        // message goes alone, would overflow the record, or the count is full.
        const next = messages[i];
        const coalescible = (m: Uint8Array) => m.length >= 1 && m.length <= MAX_COALESCED;
        if (next !== undefined && coalescible(next) && run.every(coalescible)) {
          const size = run.reduce((n, m) => n + 2 + m.length, 0);
          expect(size + 2 + next.length > MAX_CONTENT || run.length === MAX_MESSAGES_PER_RECORD).toBe(true);
        }
      }
      expect(i).toBe(messages.length);
    }
  });

  it('fills a record to exactly MAX_CONTENT and exactly MAX_MESSAGES_PER_RECORD entries', () => {
    // 3 x (2 + 16384) = 49158; the fourth entry of 65536 - 49158 - 2 = 16376 bytes fills it.
    const exact = [MAX_COALESCED, MAX_COALESCED, MAX_COALESCED, MAX_CONTENT - 3 * (2 + MAX_COALESCED) - 2].map((n) => new Uint8Array(n));
    expect(kinds([...exact, new Uint8Array(1)])).toEqual([`multi:${MAX_CONTENT}`, 'single:1']);
    expect(kinds(exact.slice(0, 3).concat([new Uint8Array(exact[3]!.length + 1)]))).toEqual([`multi:${3 * (2 + MAX_COALESCED)}`, `single:${exact[3]!.length + 1}`]);
    const full = Array.from({ length: 2 * MAX_MESSAGES_PER_RECORD }, () => new Uint8Array(1));
    expect(kinds(full)).toEqual([`multi:${3 * MAX_MESSAGES_PER_RECORD}`, `multi:${3 * MAX_MESSAGES_PER_RECORD}`]);
  });

  it('eachPacked with a scratch emits the same records in order, each multi content encoded in the scratch', () => {
    const rnd = prng(11);
    const messages = Array.from({ length: 2500 }, (_, i) => randomBytes(rnd, i % 97 === 0 ? MAX_COALESCED + 5 : 1 + ((i * 131) % 3000)));
    const expected = packMessages(messages);
    const scratch = new Uint8Array(MAX_CONTENT + 3).fill(0xee);
    const got: string[] = [];
    let multis = 0;
    eachPacked(
      messages,
      (p) => {
        if ('multi' in p) {
          multis++;
          expect(p.multi.buffer).toBe(scratch.buffer);
          expect(p.multi.byteOffset).toBe(0);
          got.push(Buffer.from(p.multi).toString('hex')); // valid only until emit returns: copied here
        } else got.push(`single:${messages.indexOf(p.single)}`);
      },
      scratch,
    );
    expect(multis).toBeGreaterThan(10);
    expect(got).toEqual(expected.map((p) => ('multi' in p ? Buffer.from(p.multi).toString('hex') : `single:${messages.indexOf(p.single)}`)));
    expect(scratch.subarray(MAX_CONTENT).every((b) => b === 0xee)).toBe(true);
  });

  it('what it packs decodes to the same messages', () => {
    const rnd = prng(7);
    const messages = Array.from({ length: 300 }, (_, i) => randomBytes(rnd, 1 + ((i * 97) % 700)));
    const back = packMessages(messages).flatMap((p) => ('multi' in p ? decodeMessages(p.multi, 1 << 20) : [p.single]));
    expect(back).toEqual(messages);
  });
});
