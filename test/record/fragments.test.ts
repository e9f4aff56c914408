/**
 * fragmentMessage and MessageAssembler: round trips at the boundary sizes (also through
 * sealed records and the deframer), the full-fragment rule and the message-size bound.
 */
import { describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import { DecodeError, InvalidArgumentError, MessageTooLargeError } from '../../src/errors.js';
import { CipherState, DEFAULT_MAX_MESSAGE_SIZE, InnerType, MAX_CONTENT, MessageAssembler, RecordDeframer, fragmentMessage } from '../../src/record/index.js';
import { expectError, prng, randomBytes } from './_helpers.js';

const SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536 + 5];
const held = (asm: MessageAssembler) => (asm as unknown as { parts: Uint8Array[] }).parts.reduce((n, p) => n + p.length, 0);

describe('fragmentMessage', () => {
  it.each(SIZES)('splits %i bytes into full 0x04 fragments and one final 0x05, as views', (size) => {
    const msg = randomBytes(prng(size), size);
    const frags = fragmentMessage(msg);
    expect(frags).toHaveLength(Math.max(1, Math.ceil(size / MAX_CONTENT)));
    frags.forEach((f, i) => {
      const last = i === frags.length - 1;
      expect(f.innerType).toBe(last ? InnerType.applicationFinal : InnerType.applicationFragment);
      if (!last) expect(f.content.length).toBe(MAX_CONTENT);
      expect(f.content.buffer).toBe(msg.buffer); // a view, not a copy
      expect(f.content.byteOffset).toBe(i * MAX_CONTENT);
    });
  });
});

describe('MessageAssembler', () => {
  it.each(SIZES)('round-trips a message of %i bytes', (size) => {
    const msg = randomBytes(prng(size + 1), size);
    const asm = new MessageAssembler();
    expect(asm.maxMessageSize).toBe(DEFAULT_MAX_MESSAGE_SIZE);
    const frags = fragmentMessage(msg);
    let out: Uint8Array | undefined;
    frags.forEach((f, i) => {
      out = asm.add(f.innerType, f.content);
      expect(out === undefined).toBe(i < frags.length - 1);
      expect(asm.pending).toBe(i < frags.length - 1);
    });
    expect(Buffer.from(out!).equals(msg)).toBe(true);
    if (frags.length === 1) expect(out).toBe(frags[0]!.content); // a single fragment is not copied
  });

  it.each(SIZES)('round-trips %i bytes through sealed records and the deframer', (size) => {
    const backend = createNobleBackend();
    const key = new Uint8Array(32).fill(3);
    const iv = new Uint8Array(12).fill(4);
    const tx = new CipherState(backend, 'chacha20-poly1305', key, iv);
    const rx = new CipherState(backend, 'chacha20-poly1305', key, iv);
    const msg = randomBytes(prng(size + 2), size);
    const wire = new Uint8Array(Buffer.concat(fragmentMessage(msg).map((f) => tx.seal(f.innerType, f.content))));
    const d = new RecordDeframer();
    const asm = new MessageAssembler();
    let out: Uint8Array | undefined;
    for (let o = 0; o < wire.length; o += 7777) {
      d.push(wire.subarray(o, o + 7777));
      for (let r = d.next(); r; r = d.next()) {
        const { innerType, content } = rx.open(r.header, r.body);
        out = asm.add(innerType, content) ?? out;
      }
    }
    expect(Buffer.from(out!).equals(msg)).toBe(true);
  });

  it('accepts a message of exactly maxMessageSize, across fragments', () => {
    const asm = new MessageAssembler(MAX_CONTENT + 10);
    expect(asm.add(InnerType.applicationFragment, new Uint8Array(MAX_CONTENT))).toBeUndefined();
    expect(asm.add(InnerType.applicationFinal, new Uint8Array(10))!.length).toBe(MAX_CONTENT + 10);
    expect(new MessageAssembler(0).add(InnerType.applicationFinal, new Uint8Array(0))!.length).toBe(0);
  });

  it('throws MessageTooLargeError before keeping the fragment that crosses the limit, then stays failed', () => {
    const max = 100_000;
    const asm = new MessageAssembler(max);
    asm.add(InnerType.applicationFragment, new Uint8Array(MAX_CONTENT));
    expect(held(asm)).toBe(MAX_CONTENT);
    const err = expectError(() => asm.add(InnerType.applicationFragment, new Uint8Array(MAX_CONTENT)), MessageTooLargeError, 'ERR_MESSAGE_TOO_LARGE');
    expect(err.message).toContain(`${2 * MAX_CONTENT} bytes`);
    expect(held(asm)).toBe(0);
    expect(asm.pending).toBe(false);
    // The rest of that message must not start a new one.
    let again: unknown;
    try {
      asm.add(InnerType.applicationFinal, new Uint8Array(1));
    } catch (e) {
      again = e;
    }
    expect(again).toBe(err);
  });

  it('refuses a single final fragment above the limit', () => {
    const asm = new MessageAssembler(10);
    expectError(() => asm.add(InnerType.applicationFinal, new Uint8Array(11)), MessageTooLargeError, 'ERR_MESSAGE_TOO_LARGE');
    expect(held(asm)).toBe(0);
  });

  it('never holds more than maxMessageSize while a long message streams in', () => {
    const max = 5 * MAX_CONTENT + 3;
    const asm = new MessageAssembler(max);
    const frag = new Uint8Array(MAX_CONTENT);
    for (let i = 0; i < 5; i++) {
      asm.add(InnerType.applicationFragment, frag);
      expect(held(asm)).toBeLessThanOrEqual(max);
    }
    expectError(() => asm.add(InnerType.applicationFragment, frag), MessageTooLargeError, 'ERR_MESSAGE_TOO_LARGE');
    expect(held(asm)).toBe(0);
  });

  it('refuses a non-final fragment that is not exactly 65536 bytes (DecodeError), then stays failed', () => {
    for (const size of [0, 1, MAX_CONTENT - 1]) {
      const asm = new MessageAssembler();
      const err = expectError(() => asm.add(InnerType.applicationFragment, new Uint8Array(size)), DecodeError, 'ERR_DECODE');
      expect(asm.pending).toBe(false);
      expect(() => asm.add(InnerType.applicationFinal, new Uint8Array(0))).toThrow(err);
    }
  });

  it('refuses non-application inner types and bad limits as local errors', () => {
    const asm = new MessageAssembler();
    for (const t of [InnerType.handshake, InnerType.alert, InnerType.keyUpdate, 0, 6]) expectError(() => asm.add(t, new Uint8Array(1)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    for (const m of [-1, 1.5, Number.NaN, Infinity]) expectError(() => new MessageAssembler(m), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });
});
