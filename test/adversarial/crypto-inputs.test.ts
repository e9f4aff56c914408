/**
 * Hostile cryptographic inputs, through the whole Session, on both honest backends:
 * ML-KEM keys failing the FIPS 203 modulus check, wrong share and ciphertext lengths,
 * flipped ciphertext bytes, X25519 low-order and all-zero points (every one Wycheproof
 * lists), non-canonical and small-order Ed25519 signatures, Wycheproof's ML-DSA-65 verify
 * signatures as the ML-DSA half of a CredentialVerify, composite signatures with a half
 * removed or taken from another key, signatures over another transcript or context, and
 * reflected signatures and Finished MACs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { concat } from '../../src/bytes.js';
import { compositeKeygen, compositeSign } from '../../src/crypto/composite.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { Alert } from '../../src/errors.js';
import { issueCredential } from '../../src/identity/index.js';
import { RecordType } from '../../src/record/index.js';
import { decodeClientHello, unframeHandshake } from '../../src/wire/messages.js';
import { hex, readVectorJson, vectorsAvailable } from '../helpers/vectors.js';
import { seedFrom } from '../helpers/identities.js';
import { createPair, errorOf, runPair } from '../helpers/pair.js';
import { Paused, fixtures, native, noble, setup } from './fixtures.js';
import { CLIENT_SIGNATURE_CONTEXT, SERVER_SIGNATURE_CONTEXT, expectRejected, frame, rejectionProblems, type Duel, type Role, type SignatureContext } from './harness.js';

const BACKENDS: [string, CryptoBackend][] = [
  ['noble', noble],
  ['native', native],
];

/** Set the j-th 12-bit coefficient of an ML-KEM-768 encapsulation key. */
function withCoefficient(ek: Uint8Array, j: number, value: number): Uint8Array {
  const out = ek.slice();
  const i = (j >> 1) * 3;
  if (j % 2 === 0) {
    out[i] = value & 0xff;
    out[i + 1] = (out[i + 1]! & 0xf0) | (value >> 8);
  } else {
    out[i + 1] = (out[i + 1]! & 0x0f) | ((value & 0x0f) << 4);
    out[i + 2] = value >> 4;
  }
  return out;
}

/** Every X25519 public value Wycheproof lists with an all-zero shared secret (14, with non-canonical encodings). */
function lowOrderPoints(): Uint8Array[] {
  const file = readVectorJson<{ testGroups: { tests: { public: string; shared: string }[] }[] }>('wycheproof_x25519_test.json');
  const set = new Set<string>();
  for (const g of file.testGroups) for (const t of g.tests) if (/^0+$/.test(t.shared)) set.add(t.public);
  return [...set].map(hex);
}

const L = (1n << 252n) + 27742317777372353535851937790883648493n;
function leToBig(b: Uint8Array): bigint {
  let x = 0n;
  for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
  return x;
}
function bigToLe(x: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Number((x >> BigInt(8 * i)) & 0xffn);
  return out;
}
/** The Ed25519 half of a composite signature with S replaced by S + L (the classic malleability). */
function malleate(composite: Uint8Array): Uint8Array {
  const ed = composite.subarray(3309);
  const s = leToBig(ed.subarray(32));
  return concat(composite.subarray(0, 3309), ed.subarray(0, 32), bigToLe(s + L, 32));
}

describe.each(BACKENDS)('key exchange inputs, honest side on %s', (_name, backend) => {
  it('ML-KEM encapsulation keys failing the modulus check: handshake_failure in plaintext, before any signing', () => {
    for (const j of [0, 1, 383, 766, 767]) {
      for (const value of [3329, 4095]) {
        const d = setup('server', { backend, bugs: { keyShare: (ek) => concat(withCoefficient(ek.subarray(0, 1184), j, value), ek.subarray(1184)) } }).run();
        expectRejected(d, 'ERR_INVALID_KEY', Alert.handshakeFailure, { what: `coefficient ${j} = ${value}` });
        expect(d.tap.items).toEqual([{ kind: 'alert', code: Alert.handshakeFailure, protected: false }]);
        expect(d.attacker.alerts).toEqual([Alert.handshakeFailure]);
      }
    }
  });

  it('key shares and ciphertexts of the wrong length: decode_error', () => {
    for (const n of [0, 1, 32, 1184, 1215, 1217, 2432]) {
      expectRejected(setup('server', { backend, bugs: { keyShare: () => new Uint8Array(n).fill(3) } }).run(), 'ERR_DECODE', Alert.decodeError, { what: `key share ${n}` });
    }
    for (const n of [0, 32, 1088, 1119, 1121, 2240]) {
      expectRejected(setup('client', { backend, bugs: { ciphertext: () => new Uint8Array(n).fill(3) } }).run(), 'ERR_DECODE', Alert.decodeError, { what: `ciphertext ${n}` });
    }
  });

  it.runIf(vectorsAvailable('wycheproof_x25519_test.json'))('every X25519 low-order or zero point, in the key share and in the ciphertext: handshake_failure', () => {
    const points = lowOrderPoints();
    expect(points.length).toBe(14);
    for (const point of points) {
      const share = setup('server', { backend, bugs: { keyShare: (ek) => concat(ek.subarray(0, 1184), point) } }).run();
      expectRejected(share, 'ERR_INVALID_KEY', Alert.handshakeFailure, { what: `key share point ${Buffer.from(point).toString('hex')}` });
      const ct = setup('client', { backend, bugs: { ciphertext: (c) => concat(c.subarray(0, 1088), point) } }).run();
      expectRejected(ct, 'ERR_INVALID_KEY', Alert.handshakeFailure, { what: `ciphertext point ${Buffer.from(point).toString('hex')}` });
      // The client refused before it had keys: its alert is plaintext.
      expect(ct.tap.items.at(-1)).toEqual({ kind: 'alert', code: Alert.handshakeFailure, protected: false });
    }
  });

  it('a flipped bit anywhere in the ciphertext (ML-KEM or X25519 part, even the masked top bit): bad_record_mac', () => {
    for (const [byte, bit] of [
      [0, 0],
      [544, 3],
      [1087, 7],
      [1088, 0],
      [1100, 5],
      [1119, 7], // the top bit of the X25519 u-coordinate, which X25519 itself ignores
    ] as const) {
      const d = setup('client', { backend, bugs: { ciphertext: (c) => Uint8Array.from(c, (x, i) => (i === byte ? x ^ (1 << bit) : x)) } }).run();
      // Implicit rejection (ML-KEM) or another DH value: the client derives keys the server
      // does not have, and the server's first protected record does not authenticate.
      expectRejected(d, 'ERR_BAD_RECORD_MAC', Alert.badRecordMac, { what: `ciphertext byte ${byte} bit ${bit}` });
    }
  });
});

describe('a network attacker flips the X25519 top bit in flight (X25519 ignores it; X-Wing and the transcript do not)', () => {
  it.each([
    ['client key share', 'c2s', 0, 4 + 4 + 1 + 2 + 32 + 2 + 4 + 2 + 2 + 1215],
    ['server ciphertext', 's2c', 1, 4 + 4 + 2 + 32 + 2 + 2 + 2 + 1119],
  ] as const)('%s', (_what, dir, flight, offset) => {
    const f = fixtures();
    const pair = createPair({ backend: native, identity: f.client.local, trust: f.trust }, { backend: native, identity: f.server.local, trust: f.trust });
    runPair(pair, {
      tamper: (d, records, n) => {
        if (d !== dir || n !== flight) return records;
        const r = records[0]!.slice();
        r[offset]! ^= 0x80;
        return [r, ...records.slice(1)];
      },
    });
    expect(errorOf(pair.clientEvents)?.code).toBe('ERR_BAD_RECORD_MAC');
    expect(pair.client.state).toBe('failed');
    expect(pair.server.state).not.toBe('established');
  });

  it('the offsets above are the top bits (sanity check against the decoded hello)', () => {
    const d = setup('server', { bugs: { hold: 'ClientHello' } }).run();
    const ch = d.attacker.held[0]!.framed;
    const record = concat(Uint8Array.of(RecordType.handshake, 0, ch.length >> 8, ch.length & 0xff), ch);
    const share = decodeClientHello(unframeHandshake(ch).body).keyShare;
    expect(record[4 + 4 + 1 + 2 + 32 + 2 + 4 + 2 + 2 + 1215]).toBe(share[1215]);
  });
});

describe.each(BACKENDS)('signatures, honest side on %s', (_name, backend) => {
  const roles: Role[] = ['server', 'client'];

  it.each(roles)('honest %s: the composite with one half removed, zeroed, swapped or from another key', (role) => {
    const other = compositeKeygen(backend, seedFrom('another key', 64));
    const cases: [string, (sig: Uint8Array, ctx: SignatureContext) => Uint8Array, string, number][] = [
      ['ML-DSA half only', (s) => s.subarray(0, 3309), 'ERR_DECODE', Alert.decodeError],
      ['Ed25519 half only', (s) => s.subarray(3309), 'ERR_DECODE', Alert.decodeError],
      ['one byte short', (s) => s.subarray(0, 3372), 'ERR_DECODE', Alert.decodeError],
      ['empty', () => new Uint8Array(0), 'ERR_DECODE', Alert.decodeError],
      ['ML-DSA half zeroed', (s) => concat(new Uint8Array(3309), s.subarray(3309)), 'ERR_BAD_SIGNATURE', Alert.decryptError],
      ['Ed25519 half zeroed', (s) => concat(s.subarray(0, 3309), new Uint8Array(64)), 'ERR_BAD_SIGNATURE', Alert.decryptError],
      ['halves swapped', (s) => concat(s.subarray(3309), s.subarray(0, 3309)), 'ERR_BAD_SIGNATURE', Alert.decryptError],
      [
        'ML-DSA half from another key over the same message',
        (s, ctx) => concat(compositeSign(backend, other, ctx.transcriptHash, ctx.context).subarray(0, 3309), s.subarray(3309)),
        'ERR_BAD_SIGNATURE',
        Alert.decryptError,
      ],
      [
        'Ed25519 half from another key over the same message',
        (s, ctx) => concat(s.subarray(0, 3309), compositeSign(backend, other, ctx.transcriptHash, ctx.context).subarray(3309)),
        'ERR_BAD_SIGNATURE',
        Alert.decryptError,
      ],
      ['a whole signature by another key', (_s, ctx) => compositeSign(backend, other, ctx.transcriptHash, ctx.context), 'ERR_BAD_SIGNATURE', Alert.decryptError],
      ['over another transcript hash', (_s, ctx) => ctx.sign(new Uint8Array(32).fill(9)), 'ERR_BAD_SIGNATURE', Alert.decryptError],
      ['over the transcript with the other role’s context', (_s, ctx) => ctx.sign(ctx.transcriptHash, ctx.context === CLIENT_SIGNATURE_CONTEXT ? SERVER_SIGNATURE_CONTEXT : CLIENT_SIGNATURE_CONTEXT), 'ERR_BAD_SIGNATURE', Alert.decryptError],
      ['Ed25519 S + L (non-canonical)', (s) => malleate(s), 'ERR_BAD_SIGNATURE', Alert.decryptError],
    ];
    // Control: a fresh, correct signature passes; only the Finished then fails, because the
    // attacker's Finished covers its original CredentialVerify (so the knob itself is sound).
    const control = setup(role, { backend, bugs: { signature: (_s, ctx) => ctx.sign(ctx.transcriptHash) } }).run();
    expectRejected(control, 'ERR_BAD_FINISHED', Alert.decryptError, { what: 'control' });
    for (const [what, signature, code, alert] of cases) {
      expectRejected(setup(role, { backend, bugs: { signature } }).run(), code, alert, { what });
    }
  });

  it.each(roles)('honest %s: a signature over another session’s transcript, and the honest side’s own signature reflected', (role) => {
    const earlier = setup(role, { backend }).run();
    const oldHash = (earlier.attacker.signedHash as Uint8Array).slice();
    expectRejected(setup(role, { backend, bugs: { signature: (_s, ctx) => ctx.sign(oldHash) } }).run(), 'ERR_BAD_SIGNATURE', Alert.decryptError, { what: 'old transcript' });
    // Reflection: the honest side's own CredentialVerify and Finished sent back to it, from
    // an earlier session and (server) from this very session.
    const p = new Paused(role, 'CredentialVerify', { backend });
    const fin = new Paused(role, 'Finished', { backend });
    const before = ownMessages(earlier);
    expectRejected(p.deliver(before.verify!), 'ERR_BAD_SIGNATURE', Alert.decryptError, { what: 'own CredentialVerify of an earlier session' });
    expectRejected(fin.deliver(before.finished!), 'ERR_BAD_FINISHED', Alert.decryptError, { what: 'own Finished of an earlier session' });
    if (role === 'server') {
      expectRejected(p.deliver(ownMessages(p.base).verify!), 'ERR_BAD_SIGNATURE', Alert.decryptError, { what: 'own CredentialVerify of this session' });
      expectRejected(fin.deliver(ownMessages(fin.base).finished!), 'ERR_BAD_FINISHED', Alert.decryptError, { what: 'own Finished of this session' });
    }
    expectRejected(fin.deliver(frame(20, new Uint8Array(32))), 'ERR_BAD_FINISHED', Alert.decryptError, { what: 'zero Finished' });
    // An unknown signature algorithm id.
    expectRejected(p.deliver(Uint8Array.from(p.honestMessage, (x, i) => (i === 5 ? 2 : x))), 'ERR_DECODE', Alert.decodeError, { what: 'algorithm 2' });
  });

  it('a credential whose Ed25519 half is a small-order point, with the signature that point makes trivial', () => {
    const f = fixtures();
    const attackerKey = f.client.keyPair;
    // R and A are encodings of the identity (canonical, non-canonical y = p + 1, and the
    // other small-order points); S = 0 satisfies [S]B = R + [k]A for every message unless
    // the verifier refuses small-order keys, as RFC 8032 strict verification must.
    const identityPoints = ['0100000000000000000000000000000000000000000000000000000000000000', 'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'];
    const smallOrderKeys = ['0100000000000000000000000000000000000000000000000000000000000000', 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'];
    for (const edKey of smallOrderKeys) {
      const credential = issueCredential(native, f.issuer, { agentId: 'agent://adversarial/small-order', publicKey: concat(attackerKey.mldsa.publicKey, hex(edKey)) });
      const p = new Paused('server', 'CredentialVerify', { backend, attacker: { identity: { keyPair: attackerKey, credential: credential.encoded } } });
      const cv = p.honestMessage;
      for (const r of identityPoints) {
        const sig = concat(cv.subarray(8, 8 + 3309), hex(r), new Uint8Array(32));
        expectRejected(p.deliver(concat(cv.subarray(0, 8), sig)), 'ERR_BAD_SIGNATURE', Alert.decryptError, { what: `A=${edKey.slice(0, 8)} R=${r.slice(0, 8)}` });
      }
    }
  });

  it('an issuer signature with the Ed25519 S + L: bad signature on the credential', () => {
    const f = fixtures();
    const cred = f.client.credential.encoded;
    const tampered = concat(cred.subarray(0, cred.length - 3373), malleate(cred.subarray(cred.length - 3373)));
    const d = setup('server', { backend, attacker: { identity: { keyPair: f.client.keyPair, credential: tampered } } }).run();
    expectRejected(d, 'ERR_BAD_SIGNATURE', Alert.decryptError);
  });
});

describe.runIf(vectorsAvailable('wycheproof_mldsa_65_verify_test.json'))('Wycheproof ML-DSA-65 signatures as the ML-DSA half of a CredentialVerify', () => {
  interface VerifyFile {
    testGroups: { publicKey: string; tests: { tcId: number; sig: string; result: string; flags: string[] }[] }[];
  }
  let groups: VerifyFile['testGroups'];
  beforeAll(() => {
    groups = readVectorJson<VerifyFile>('wycheproof_mldsa_65_verify_test.json').testGroups;
  });

  it.each(BACKENDS)('every one is refused under the vector’s public key, with the exact error, on %s', (_name, backend) => {
    const f = fixtures();
    const attackerKey = f.client.keyPair;
    const failures: string[] = [];
    let invalid = 0;
    let skippedGroups = 0;
    for (const g of groups) {
      const pk = hex(g.publicKey);
      if (pk.length !== 1952) {
        // A credential carries exactly a 1952-byte ML-DSA key: such keys cannot even be presented.
        skippedGroups++;
        continue;
      }
      const credential = issueCredential(native, f.issuer, { agentId: 'agent://adversarial/wycheproof', publicKey: concat(pk, attackerKey.ed25519.publicKey) });
      const p = new Paused('server', 'CredentialVerify', { backend, attacker: { identity: { keyPair: attackerKey, credential: credential.encoded } } });
      const cv = p.honestMessage;
      const edHalf = cv.subarray(8 + 3309);
      for (const t of g.tests) {
        if (t.result === 'invalid') invalid++;
        const sig = concat(hex(t.sig), edHalf);
        const body = concat(Uint8Array.of(0, 1, sig.length >> 8, sig.length & 0xff), sig);
        // Right length: the signature is checked (and must fail: wrong key, message or both).
        // Wrong length: the CredentialVerify itself is malformed.
        const [code, alert] = sig.length === 3373 ? ['ERR_BAD_SIGNATURE', Alert.decryptError] : ['ERR_DECODE', Alert.decodeError];
        const problems = rejectionProblems(p.deliver(frame(15, body)), code, alert);
        if (problems.length) failures.push(`tcId ${t.tcId} (${t.flags.join('+')}): ${problems.join('; ')}`);
      }
    }
    expect(failures).toEqual([]);
    expect(invalid).toBeGreaterThanOrEqual(120);
    expect(skippedGroups).toBe(4);
  });
});

/** The honest side's own CredentialVerify and Finished as it sent them (decrypted by the tap's keys). */
function ownMessages(d: Duel): { verify?: Uint8Array; finished?: Uint8Array } {
  const mine = d.tap.items.flatMap((i) => (i.kind === 'handshake' && i.protected ? [i.message] : []));
  const out: { verify?: Uint8Array; finished?: Uint8Array } = {};
  const verify = mine.find((m) => m[0] === 15);
  const finished = mine.find((m) => m[0] === 20);
  if (verify) out.verify = verify;
  if (finished) out.finished = finished;
  return out;
}
