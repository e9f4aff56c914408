/**
 * Properties of every codec (fast-check): for any valid value, decode(encode(x)) = x and
 * encode(decode(bytes)) = bytes (so the encoding is canonical: one value, one byte string).
 * Messages: ClientHello, ServerHello, Credential, CredentialVerify, Finished, alerts,
 * KeyUpdate; credentials with any fields the rules allow; records (plaintext framing and
 * AEAD protection, both suites) and application message fragmentation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat } from '../../src/bytes.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { decodeCredential, encodeCredentialTbs, type CredentialFields } from '../../src/identity/credential.js';
import { CipherState, InnerType, MessageAssembler, RecordDeframer, RecordType, encodeRecord, fragmentMessage } from '../../src/record/index.js';
import {
  decodeAlert,
  decodeClientHello,
  decodeCredentialMessage,
  decodeCredentialVerify,
  decodeFinished,
  decodeKeyUpdate,
  decodeServerHello,
  encodeAlert,
  encodeClientHello,
  encodeCredentialMessage,
  encodeCredentialVerify,
  encodeFinished,
  encodeKeyUpdate,
  encodeServerHello,
  unframeHandshake,
} from '../../src/wire/messages.js';
import { Writer } from '../../src/wire/writer.js';

const backend = createNativeBackend();
const RUNS = { numRuns: 300 };

const u16 = fc.integer({ min: 0, max: 0xffff });
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const extensions = fc.uniqueArray(u16, { maxLength: 6 }).chain((types) =>
  fc.tuple(...types.sort((a, b) => a - b).map((type) => bytes(0, 64).map((data) => ({ type, data })))),
);

const clientHello = fc.record({
  versions: fc.array(u16, { minLength: 1, maxLength: 127 }),
  random: bytes(32, 32),
  suites: fc.array(u16, { minLength: 1, maxLength: 300 }),
  kemId: u16,
  keyShare: bytes(0, 2000),
  extensions,
});

const serverHello = fc.record({ version: u16, random: bytes(32, 32), suite: u16, kemId: u16, ciphertext: bytes(0, 2000), extensions });

const body = (framed: Uint8Array) => unframeHandshake(framed).body;

describe('handshake messages round-trip and are canonical', () => {
  it('ClientHello', () => {
    fc.assert(
      fc.property(clientHello, (ch) => {
        const framed = encodeClientHello(ch);
        const decoded = decodeClientHello(body(framed));
        expect(decoded).toEqual(ch);
        expect(encodeClientHello(decoded)).toEqual(framed);
      }),
      RUNS,
    );
  });

  it('ServerHello', () => {
    fc.assert(
      fc.property(serverHello, (sh) => {
        const framed = encodeServerHello(sh);
        const decoded = decodeServerHello(body(framed));
        expect(decoded).toEqual(sh);
        expect(encodeServerHello(decoded)).toEqual(framed);
      }),
      RUNS,
    );
  });

  it('Credential message, CredentialVerify, Finished, alert, KeyUpdate', () => {
    fc.assert(
      fc.property(bytes(1, 16384), u16, bytes(3373, 3373), bytes(32, 32), u16, fc.boolean(), (credential, algorithm, signature, verifyData, alert, request) => {
        expect(decodeCredentialMessage(body(encodeCredentialMessage(credential)))).toEqual(credential);
        const cv = encodeCredentialVerify({ algorithm, signature });
        expect(decodeCredentialVerify(body(cv))).toEqual({ algorithm, signature });
        expect(encodeCredentialVerify(decodeCredentialVerify(body(cv)))).toEqual(cv);
        expect(decodeFinished(body(encodeFinished(verifyData)))).toEqual(verifyData);
        expect(decodeAlert(encodeAlert(alert))).toBe(alert);
        expect(decodeKeyUpdate(encodeKeyUpdate(request))).toBe(request);
      }),
      { numRuns: 100 },
    );
  });
});

// --- credentials ---------------------------------------------------------------------------

const idChars = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-._~/:@!$&()*+,;=%é漢'.split(''));
const uri = fc.tuple(fc.constantFrom('agent', 'issuer', 'spiffe', 'urn', 'x-y.z+w'), fc.string({ unit: idChars, minLength: 1, maxLength: 60 })).map(([s, rest]) => `${s}:${rest}`);
const scope = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz:._-/*ÄΩ'.split('')), minLength: 1, maxLength: 40 });
const attributeKey = fc.string({ unit: fc.constantFrom(...'abcXYZ019_.-'.split('')), minLength: 1, maxLength: 64 });
const attributeValue = fc.string({ unit: fc.oneof(fc.constantFrom(' ', 'a', '\n', '\u00ff', '\ufeff', '😀'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), maxLength: 80 }).filter((s) => !s.includes('\u0000'));

const fields: fc.Arbitrary<CredentialFields> = fc
  .record({
    agentId: uri,
    displayName: fc.string({ unit: 'grapheme', maxLength: 60 }).filter((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s)),
    publicKey: bytes(1984, 1984),
    usage: fc.constantFrom('client' as const, 'server' as const, 'both' as const),
    scopes: fc.uniqueArray(scope, { maxLength: 64 }),
    attributes: fc.dictionary(attributeKey, attributeValue, { maxKeys: 64 }),
    notBefore: fc.integer({ min: 0, max: 2 ** 52 }),
    span: fc.integer({ min: 1, max: 2 ** 40 }),
    serial: bytes(1, 32),
    issuerId: uri,
    issuerFingerprint: bytes(32, 32),
  })
  .map(({ span, ...f }) => ({ ...f, notAfter: f.notBefore + span }));

const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('credentials round-trip and are canonical', () => {
  it('any fields the rules allow: decode(encode) gives them back (sorted), and the bytes are canonical', () => {
    fc.assert(
      fc.property(fields, bytes(3373, 3373), (f, signature) => {
        const tbs = encodeCredentialTbs(f);
        const encoded = new Writer().bytes(tbs).u16(1).vector(2, signature).finish();
        const c = decodeCredential(encoded);
        expect(c.agentId).toBe(f.agentId);
        expect(c.displayName).toBe(f.displayName);
        expect(c.publicKey).toEqual(f.publicKey);
        expect(c.scopes).toEqual([...f.scopes].sort(utf8Order));
        expect(c.attributes).toEqual(f.attributes);
        expect([c.notBefore, c.notAfter]).toEqual([f.notBefore, f.notAfter]);
        expect(c.serial).toEqual(f.serial);
        expect(c.issuerId).toBe(f.issuerId);
        expect(c.issuerFingerprint).toEqual(f.issuerFingerprint);
        expect(c.signature).toEqual(signature);
        expect(c.tbs).toEqual(tbs);
        expect(c.encoded).toEqual(encoded);
        // Canonical: re-encoding the decoded fields gives the very same TBS.
        expect(encodeCredentialTbs(c)).toEqual(tbs);
      }),
      { numRuns: 200 },
    );
  });
});

// --- records ---------------------------------------------------------------------------------

describe('records round-trip', () => {
  it('plaintext records through the deframer, any chunking', () => {
    const record = fc.oneof(
      bytes(1, 8192).map((b) => ({ type: RecordType.handshake as number, body: b })),
      bytes(2, 2).map((b) => ({ type: RecordType.alert as number, body: b })),
    );
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 20 }), (records, cuts) => {
        const stream = concat(...records.map((r) => encodeRecord(r.type, r.body)));
        const d = new RecordDeframer();
        const out: { type: number; body: Uint8Array }[] = [];
        let o = 0;
        for (let i = 0; o < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          d.push(stream.subarray(o, o + n));
          o += n;
          for (let r = d.next(); r; r = d.next()) out.push({ type: r.type, body: r.body.slice() });
        }
        expect(out).toEqual(records);
        expect(d.bufferedBytes).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it.each(['chacha20-poly1305', 'aes-256-gcm'] as const)('protected records (%s): open(seal(x)) = x, in sequence', (aead) => {
    fc.assert(
      fc.property(bytes(32, 32), bytes(12, 12), fc.array(fc.tuple(fc.constantFrom(1, 2, 3, 4, 5), bytes(0, 3000)), { minLength: 1, maxLength: 10 }), (key, iv, items) => {
        const tx = new CipherState(backend, aead, key, iv);
        const rx = new CipherState(backend, aead, key, iv);
        for (const [type, content] of items) {
          const r = tx.seal(type as 1 | 2 | 3 | 4 | 5, content);
          expect(r.length).toBe(4 + content.length + 1 + 16);
          const opened = rx.open(r.subarray(0, 4), r.subarray(4));
          expect(opened.innerType).toBe(type);
          expect(opened.content).toEqual(content);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('application messages: fragment then assemble gives the message back, every non-final fragment full', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300_000 }), fc.integer({ min: 0, max: 255 }), (size, fill) => {
        const message = new Uint8Array(size).fill(fill);
        if (size > 0) message[size - 1] = fill ^ 0xff;
        const fragments = fragmentMessage(message);
        expect(fragments.length).toBe(Math.max(1, Math.ceil(size / 65536)));
        const a = new MessageAssembler(size);
        let out: Uint8Array | undefined;
        fragments.forEach((f, i) => {
          const last = i === fragments.length - 1;
          expect(f.innerType).toBe(last ? InnerType.applicationFinal : InnerType.applicationFragment);
          if (!last) expect(f.content.length).toBe(65536);
          out = a.add(f.innerType, f.content);
          expect(out === undefined).toBe(!last);
        });
        expect(out !== undefined && Buffer.from(out.buffer, out.byteOffset, out.length).equals(Buffer.from(message.buffer, message.byteOffset, message.length))).toBe(true);
        expect(a.pending).toBe(false);
      }),
      { numRuns: 60 },
    );
  });
});
